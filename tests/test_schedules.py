"""Learning-rate decay schedules against their formulas."""

import math

import pytest

from dlrun.engine.registry import build, describe
from dlrun.engine.schedules import SCHEDULES


def lr(spec, epoch, step=0, lr0=0.2):
    return build(SCHEDULES, "decay schedule", spec).lr(lr0, epoch, step)


def test_inverse_time_matches_the_course_example():
    rates = [lr({"name": "inverse_time", "rate": 1}, epoch) for epoch in range(5)]
    assert rates == pytest.approx([0.2, 0.1, 0.2 / 3, 0.05, 0.04])


def test_inverse_time_with_an_interval_decays_once_per_interval():
    spec = {"name": "inverse_time", "rate": 1, "interval": 3}
    assert [lr(spec, e) for e in range(7)] == pytest.approx([0.2] * 3 + [0.1] * 3 + [0.2 / 3])


def test_exponential_multiplies_by_base_each_epoch():
    assert lr({"name": "exponential", "base": 0.95}, 3) == pytest.approx(0.2 * 0.95**3)
    assert lr({"name": "exponential", "base": 0.5, "interval": 2}, 1) == pytest.approx(0.2 * 0.5**0.5)


def test_staircase_drops_by_factor_every_interval():
    spec = {"name": "staircase", "factor": 0.5, "interval": 10}
    assert [lr(spec, e) for e in (0, 9, 10, 25)] == pytest.approx([0.2, 0.2, 0.1, 0.05])


def test_inverse_sqrt_schedules():
    assert lr({"name": "inverse_sqrt_epoch", "k": 1}, 3) == pytest.approx(0.2 / 2)
    assert lr({"name": "inverse_sqrt_step", "k": 2}, 0, step=8) == pytest.approx(0.4 / 3)
    assert lr("none", 50, 1000) == 0.2


def test_describe_rebuilds_the_same_schedule():
    schedule = build(SCHEDULES, "decay schedule", {"name": "staircase", "interval": 4})
    assert describe(schedule) == {"name": "staircase", "factor": 0.5, "interval": 4}
    again = build(SCHEDULES, "decay schedule", describe(schedule))
    assert all(math.isclose(again.lr(1, e, 0), schedule.lr(1, e, 0)) for e in range(20))


@pytest.mark.parametrize("spec, message", [
    ({"name": "inverse_time", "interval": 0}, "interval"),
    ({"name": "inverse_time", "interval": 1.5}, "interval"),
    ({"name": "exponential", "base": 1.5}, "base"),
    ({"name": "inverse_time", "rate": -1}, "rate"),
    ({"name": "cosine", "floor": 1}, "floor"),
])
def test_bad_schedules_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        build(SCHEDULES, "decay schedule", spec)


def test_an_unknown_schedule_lists_every_registered_one(unregistered):
    name = unregistered(SCHEDULES)
    with pytest.raises(ValueError) as error:
        build(SCHEDULES, "decay schedule", name)
    assert str(error.value) == f"unknown decay schedule {name!r}; allowed: {', '.join(SCHEDULES)}"


def cosine(spec="cosine", epochs=4, steps_per_epoch=5):
    return build(SCHEDULES, "decay schedule", spec).bind(epochs, steps_per_epoch)


def test_cosine_falls_from_lr0_to_zero_over_the_run():
    schedule = cosine()  # T = 20 steps
    assert schedule.lr(0.2, 0, 0) == 0.2
    assert schedule.lr(0.2, 1, 5) == pytest.approx(0.1 * (1 + math.cos(math.pi / 4)))
    assert schedule.lr(0.2, 2, 10) == pytest.approx(0.1)
    assert schedule.lr(0.2, 3, 19) == pytest.approx(0.1 * (1 - math.cos(math.pi / 20)))
    assert schedule.lr(0.2, 4, 20) == pytest.approx(0.0, abs=1e-18)
    assert schedule.lr(0.2, 5, 27) == pytest.approx(0.0, abs=1e-18)  # past the end: stays there


def test_cosine_with_a_floor_ends_at_that_share_of_lr0():
    schedule = cosine({"name": "cosine", "floor": 0.1})
    assert schedule.lr(0.2, 0, 0) == pytest.approx(0.2)
    assert schedule.lr(0.2, 2, 10) == pytest.approx((0.2 + 0.02) / 2)
    assert schedule.lr(0.2, 4, 20) == pytest.approx(0.02)


def test_cosine_follows_the_length_it_is_bound_to():
    short, long = cosine(epochs=2), cosine(epochs=8)
    assert short.lr(1.0, 1, 5) == pytest.approx(0.5) and long.lr(1.0, 4, 20) == pytest.approx(0.5)
    with pytest.raises(RuntimeError, match="bind"):
        build(SCHEDULES, "decay schedule", "cosine").lr(1.0, 0, 0)
