import pytest

from dlrun import config
from dlrun.diagnosis.bias_variance import analyse
from dlrun.diagnosis.recipe import recommend

SUMMARY = {"status": "completed", "examples": {"train": 600, "dev": 200}}


def advice(train_error, dev_error, test=None, checks=None, summary=SUMMARY, **sections):
    cfg = config.validate(sections, "test")
    analysis = analyse({"human": 0.0, "train": train_error, "dev": dev_error, "test": test},
                       cfg.diagnose)
    return recommend(analysis, checks or {}, cfg, summary)


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
    falling = {"plateau": {"status": "ok", "flat": False, "trend": "falling"}}
    still = advice(0.15, 0.16, checks=falling)[0]
    assert still["actions"][0].startswith("train longer")
    stuck = advice(0.15, 0.16, checks={"plateau": {"status": "problem", "flat": True,
                                                   "trend": "flat"}})[0]
    assert stuck["actions"][0].startswith("a bigger network")
    assert not any(a.startswith("train longer") for a in stuck["actions"])


def test_a_rising_train_loss_asks_for_a_smaller_step_not_more_epochs():
    rising = {"plateau": {"status": "warning", "flat": False, "trend": "rising"}}
    actions = advice(0.15, 0.16, checks=rising, train={"learning_rate": 0.5})[0]["actions"]
    assert actions[0].startswith("a smaller learning rate (train.learning_rate is 0.5)")
    assert not any(a.startswith("train longer") for a in actions)


def test_more_epochs_are_advised_only_to_a_run_that_used_all_it_had():
    falling = {"plateau": {"status": "ok", "flat": False, "trend": "falling"}}
    stopped = {**SUMMARY, "epochs_run": 40}  # of 100: early stopping or a pruned trial ended it
    actions = advice(0.15, 0.16, checks=falling, summary=stopped,
                     train={"epochs": 100})[0]["actions"]
    assert not any(a.startswith("train longer") for a in actions)
    full = {**SUMMARY, "epochs_run": 100}
    actions = advice(0.15, 0.16, checks=falling, summary=full, train={"epochs": 100})[0]["actions"]
    assert actions[0] == "train longer: the train loss was still falling (train.epochs is 100)"


def test_no_advice_the_config_cannot_follow():
    oscillating = {"oscillation": {"status": "problem", "message": "it oscillates"}}
    full = advice(0.01, 0.02, checks=oscillating, train={"batch_size": "full"})[0]["actions"]
    assert not any("larger mini-batches" in a for a in full)
    small = advice(0.01, 0.02, checks=oscillating, train={"batch_size": 16})[0]["actions"]
    assert "larger mini-batches (train.batch_size is 16)" in small
    vanishing = {"gradients": {"status": "problem", "message": "vanishing", "kind": "vanishing"}}
    one = advice(0.01, 0.02, checks=vanishing, model={"hidden_layers": [8]})[0]["actions"]
    assert not any("shallower" in a for a in one)
    deep = advice(0.01, 0.02, checks=vanishing, model={"hidden_layers": [8, 8, 8]})[0]["actions"]
    assert "a shallower network (model.hidden_layers is [8, 8, 8])" in deep


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
