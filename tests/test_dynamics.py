import numpy as np
import pytest

from dlrun import config
from dlrun.diagnosis import training_checks


def make_config(**sections):
    return config.validate(sections, "test")


def curves(train_loss, dev_loss=None, grads=((1.0, 1.0),), train_cost=None):
    """metrics.csv columns for len(train_loss) epochs; grads: per epoch (‖dW1‖, ..., ‖dWL‖)."""
    train_loss = np.asarray(train_loss, dtype=float)
    epochs = len(train_loss)
    grads = np.broadcast_to(np.asarray(grads, dtype=float), (epochs, len(grads[0])))
    metrics = {"epoch": np.arange(1.0, epochs + 1), "train_loss": train_loss,
               "train_cost": train_loss if train_cost is None else np.asarray(train_cost, float),
               "dev_loss": train_loss if dev_loss is None else np.asarray(dev_loss, float)}
    metrics.update({f"grad_norm_{l + 1}": grads[:, l] for l in range(grads.shape[1])})
    return metrics


FULL_BATCH_GD = dict(train={"optimizer": "gd", "batch_size": "full"})
SUMMARY = {"status": "completed", "examples": {"train": 100}}


def test_full_batch_gradient_descent_whose_cost_always_falls_passes():
    found = training_checks.cost_decrease(curves(np.linspace(1, 0.1, 30)), SUMMARY,
                                   make_config(**FULL_BATCH_GD))
    assert found["status"] == "ok" and found["steps"] == 29


def test_one_rise_of_the_full_batch_cost_is_a_problem_naming_the_step():
    cost = np.linspace(1, 0.1, 30)
    cost[12] = cost[11] * 1.2
    found = training_checks.cost_decrease(curves(cost), SUMMARY, make_config(**FULL_BATCH_GD))
    assert found["status"] == "problem"
    assert found["rises"] == 1 and found["first"] == 13
    assert found["largest_rise"] == pytest.approx(0.2)


def test_rises_of_a_fraction_of_a_percent_are_only_a_warning():
    cost = np.linspace(1, 0.1, 30)
    cost[20] = cost[19] * 1.001
    found = training_checks.cost_decrease(curves(cost), SUMMARY, make_config(**FULL_BATCH_GD))
    assert found["status"] == "warning" and "edge of stability" in found["message"]


def test_a_batch_size_covering_the_training_set_counts_as_full_batch():
    cost = np.linspace(1, 0.1, 30)
    cost[5] = 2.0
    found = training_checks.cost_decrease(curves(cost), SUMMARY,
                                   make_config(train={"optimizer": "gd", "batch_size": 128}))
    assert found["status"] == "problem"


@pytest.mark.parametrize("sections, reason", [
    ({"train": {"optimizer": "adam", "batch_size": "full"}}, "optimizer adam"),
    ({"train": {"optimizer": "gd", "batch_size": 16}}, "mini-batches of 16"),
    ({"train": {"optimizer": "gd", "batch_size": "full"}, "model": {"keep_prob": 0.5}}, "dropout"),
])
def test_noisy_set_ups_are_not_judged_on_every_step(sections, reason):
    cost = np.linspace(1, 0.1, 30)
    cost[5] = 2.0
    found = training_checks.cost_decrease(curves(cost), SUMMARY, make_config(**sections))
    assert found["status"] == "skipped" and reason in found["message"]


def test_a_recorded_divergence_is_reported_with_where_it_happened():
    summary = {"divergence": {"step": 7, "epoch": 2, "learning_rate": 10.0, "where": "dW1",
                              "message": "non-finite gradient dW1 at step 7"}}
    found = training_checks.divergence(curves([1.0]), summary, make_config().diagnose)
    assert found["status"] == "problem"
    assert (found["step"], found["epoch"], found["where"]) == (7, 2, "dW1")


def test_a_first_epoch_whose_steps_blew_up_is_divergence_though_its_loss_settled():
    # The quickstart with learning rate 5: the first epoch's mean cost was 106, then the network
    # predicted one class at a loss near chance and the loss curve looked calm.
    untrained = {"first_step": {"cost": 0.69, "examples": 64}}
    loss, cost = [2.2, 0.72, 0.72, 0.69, 0.71], [106.5, 1.3, 0.76, 0.71, 0.71]
    found = training_checks.divergence(curves(loss, train_cost=cost), untrained, make_config().diagnose)
    assert found["status"] == "problem" and found["epoch"] == 1
    assert found["factor"] == pytest.approx(106.5 / 0.69)
    assert "mean train cost of epoch 1 was 106.5, 154x that of its first step (0.69" in \
        found["message"]
    calm = training_checks.divergence(curves(loss, train_cost=[0.9, *cost[1:]]), untrained,
                               make_config().diagnose)
    assert calm["status"] == "ok"
    # Unnormalized inputs: the untrained network's cost is already 126; nothing blew up.
    high = training_checks.divergence(curves([126.4] * 5, train_cost=[124.7] * 5),
                               {"first_step": {"cost": 126.0, "examples": 64}},
                               make_config().diagnose)
    assert high["status"] == "ok"
    unknown = training_checks.divergence(curves(loss, train_cost=cost), {}, make_config().diagnose)
    assert unknown["status"] == "ok"  # a run that did not record where it started
    # One example's cost is no baseline: a regression target can be met almost exactly by luck.
    single = training_checks.divergence(curves(loss, train_cost=cost),
                                 {"first_step": {"cost": 0.69, "examples": 1}},
                                 make_config().diagnose)
    assert single["status"] == "ok"


def test_a_non_finite_loss_in_the_metrics_is_divergence():
    found = training_checks.divergence(curves([1.0, 0.5, np.inf]), {}, make_config().diagnose)
    assert found["status"] == "problem" and found["epoch"] == 3


def test_a_loss_rising_by_orders_of_magnitude_is_divergence():
    found = training_checks.divergence(curves([1.0, 0.5, 0.4, 80.0]), {}, make_config().diagnose)
    assert found["status"] == "problem"
    assert found["factor"] == pytest.approx(200) and found["epoch"] == 4
    calm = training_checks.divergence(curves([1.0, 0.5, 0.4, 30.0]), {}, make_config().diagnose)
    assert calm["status"] == "ok"


def test_a_zigzagging_loss_oscillates_and_a_falling_one_does_not():
    zigzag = 1 + 0.2 * (np.arange(20) % 2)
    assert training_checks.oscillation(curves(zigzag), make_config().diagnose)["status"] == "problem"
    falling = training_checks.oscillation(curves(np.linspace(1, 0.2, 20)), make_config().diagnose)
    assert falling["status"] == "ok" and falling["rises"] == 0


def test_a_flat_loss_is_a_plateau_problem_only_while_the_bias_is_high():
    loss = np.concatenate([np.linspace(1, 0.5, 30), np.full(20, 0.5)])
    stuck = training_checks.plateau(curves(loss), make_config().diagnose, high_bias=True)
    assert stuck["status"] == "problem" and stuck["flat"]
    converged = training_checks.plateau(curves(loss), make_config().diagnose, high_bias=False)
    assert converged["status"] == "ok" and "converged" in converged["message"]
    learning = training_checks.plateau(curves(np.linspace(1, 0.5, 50)), make_config().diagnose, True)
    assert learning["status"] == "ok" and not learning["flat"]
    assert [stuck["trend"], learning["trend"]] == ["flat", "falling"]
    rising = training_checks.plateau(curves(np.linspace(0.5, 1, 50)), make_config().diagnose, True)
    assert rising["status"] == "warning" and rising["trend"] == "rising"
    assert "not learning" in rising["message"]


def test_vanishing_and_exploding_gradients_come_from_the_first_to_last_layer_ratio():
    settings = make_config().diagnose
    vanishing = training_checks.gradients(curves([1.0] * 4, grads=((1e-6, 1.0, 1.0),)), settings)
    assert vanishing["status"] == "problem" and vanishing["kind"] == "vanishing"
    assert vanishing["ratio_median"] == pytest.approx(1e-6)
    exploding = training_checks.gradients(curves([1.0] * 4, grads=((1e4, 1.0, 1.0),)), settings)
    assert exploding["kind"] == "exploding"
    healthy = training_checks.gradients(curves([1.0] * 4, grads=((0.5, 2.0, 1.0),)), settings)
    assert healthy["status"] == "ok" and healthy["ratio_median"] == pytest.approx(0.5)


def test_the_gradient_ratio_trend_is_counted_in_decades():
    grads = [(1e-1, 1.0), (1e-2, 1.0), (1e-3, 1.0), (1e-4, 1.0)]
    found = training_checks.gradients(curves([1.0] * 4, grads=grads), make_config().diagnose)
    assert found["trend_decades"] == pytest.approx(-3)
    assert "falling 3 decades" in found["message"]


def test_gradients_that_are_all_zero_mean_the_network_stopped_learning():
    found = training_checks.gradients(curves([1.0] * 3, grads=((0.0, 0.0),)), make_config().diagnose)
    assert found["status"] == "problem" and found["kind"] == "zero"


def test_training_far_past_the_dev_minimum_without_early_stopping_is_a_problem():
    train = np.linspace(1, 0.01, 50)
    dev = np.concatenate([np.linspace(1, 0.3, 10), np.linspace(0.31, 0.6, 40)])
    found = training_checks.early_stopping(curves(train, dev), SUMMARY, make_config())
    assert found["status"] == "problem"
    assert found["best_epoch"] == 10 and found["epochs"] == 50
    assert found["rise"] == pytest.approx(1.0)
    restored = training_checks.early_stopping(curves(train, dev), SUMMARY,
                                       make_config(train={"early_stopping": {"patience": 100}}))
    assert restored["status"] == "ok" and "best weights were kept" in restored["message"]


def test_dev_and_train_loss_rising_together_is_not_called_overfitting():
    loss = np.concatenate([np.linspace(1, 0.3, 10), np.linspace(0.31, 0.6, 10)])
    found = training_checks.early_stopping(curves(loss, loss), SUMMARY, make_config())
    assert found["status"] == "ok" and not found["train_fell"]


def test_vanishing_gradients_are_judged_over_the_first_half_of_the_epochs():
    """The ratio of a run that vanishing gradients held back rises once its first layers catch
    up (batchnorm_softmax.yaml without batch norm: 0.003 for 40 epochs, then 0.1 by epoch 80);
    the early epochs are the ones that show what stalled it."""
    grads = [(3e-3, 1.0)] * 10 + [(0.1, 1.0)] * 10
    found = training_checks.gradients(curves([1.0] * 20, grads=grads), make_config().diagnose)
    assert found["kind"] == "vanishing" and found["ratio_median"] == pytest.approx(3e-3)
    assert "median over the first 10 of 20 epochs" in found["message"]
    assert training_checks.gradients(curves([1.0] * 20, grads=[(0.1, 1.0)] * 20),
                                     make_config().diagnose)["status"] == "ok"


def test_activations_growing_with_depth_before_any_update_are_exploding_gradients():
    """A ReLU network with too large weights: ‖dW‖ alike in every layer (ratio 1), but the
    activations' RMS at the first step grows layer after layer."""
    settings = make_config().diagnose
    metrics = curves([1.0] * 4, grads=((1.0, 1.0, 1.0),))
    first_step = {"cost": 4903.0, "examples": 64, "activation_rms": [0.9, 18.0, 2.4e3]}
    found = training_checks.gradients(metrics, settings, first_step)
    assert found["status"] == "problem" and found["kind"] == "exploding"
    assert found["activation_growth"] == pytest.approx(2.4e3 / 0.9)
    assert "activations grow 2.67e+03-fold from hidden layer 1 to 3" in found["message"]
    overflowed = training_checks.gradients(metrics, settings,
                                           {"activation_rms": [0.9, 1e300, None]})
    assert overflowed["kind"] == "exploding" and "overflow" in overflowed["message"]
    steady = training_checks.gradients(metrics, settings, {"activation_rms": [0.9, 0.8, 0.8]})
    assert steady["status"] == "ok" and steady["activation_growth"] == pytest.approx(0.8 / 0.9)
    # nothing recorded (runs from before it was), or a hand-edited value: the ratio alone
    for recorded in (None, {}, {"activation_rms": "big"}, {"activation_rms": [0.0, 5.0]}):
        assert training_checks.gradients(metrics, settings, recorded)["status"] == "ok"
