import pytest

from dlrun import config
from dlrun.error_analysis import analyse
from dlrun.recipe import recommend

SUMMARY = {"status": "completed", "examples": {"train": 600, "dev": 200}}


def advice(train_error, dev_error, test=None, checks=None, **sections):
    cfg = config.validate(sections, "test")
    analysis = analyse({"human": 0.0, "train": train_error, "dev": dev_error, "test": test},
                       cfg.diagnose)
    return recommend(analysis, checks or {}, cfg, SUMMARY)


def test_recommendations_follow_the_biggest_gap_first():
    assert [a["problem"] for a in advice(0.10, 0.30)] == ["high variance", "high bias"]
    assert [a["problem"] for a in advice(0.20, 0.30)] == ["high bias", "high variance"]
    assert [a["gap"] for a in advice(0.10, 0.30)] == pytest.approx([0.2, 0.1])


def test_dev_overfitting_asks_for_a_bigger_dev_set():
    (only,) = advice(0.005, 0.01, test=0.05)
    assert only["problem"] == "dev overfitting"
    assert "bigger dev set (200 examples now)" in only["actions"][0]


def test_variance_advice_starts_from_the_regularization_already_used():
    plain = advice(0.01, 0.11)[0]["actions"]
    assert any(a.startswith("L2 regularization") for a in plain)
    assert any(a.startswith("dropout (model.keep_prob: 0.8)") for a in plain)
    used = advice(0.01, 0.11, regularization={"l2": 0.5}, model={"keep_prob": 0.7})[0]["actions"]
    assert "more L2 (regularization.l2 is 0.5)" in used
    assert "more dropout (model.keep_prob is 0.7)" in used


def test_bias_advice_depends_on_whether_the_loss_still_falls():
    still = advice(0.15, 0.16, checks={"plateau": {"status": "ok", "flat": False}})[0]
    assert still["actions"][0].startswith("train longer")
    stuck = advice(0.15, 0.16, checks={"plateau": {"status": "problem", "flat": True}})[0]
    assert stuck["actions"][0].startswith("a bigger network")
    assert not any(a.startswith("train longer") for a in stuck["actions"])


def test_bias_advice_suggests_adam_only_when_it_is_not_used():
    with_gd = advice(0.15, 0.16, train={"optimizer": "gd"})[0]["actions"]
    assert any(a.startswith("Adam") for a in with_gd)
    with_adam = advice(0.15, 0.16)[0]["actions"]
    assert not any(a.startswith("Adam") for a in with_adam)


def test_optimization_problems_come_before_the_error_gaps():
    checks = {"divergence": {"status": "problem", "message": "non-finite cost at step 3"},
              "gradients": {"status": "problem", "message": "vanishing", "kind": "vanishing"}}
    problems = [a["problem"] for a in advice(0.15, 0.16, checks=checks)]
    assert problems == ["divergence", "vanishing gradients", "high bias"]
