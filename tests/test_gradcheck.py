"""dlrun gradcheck: it must pass the real engine everywhere and fail deliberately broken ones,
naming the parameter arrays whose gradient is wrong."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections import Counter

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from dlrun.cli import app
from dlrun.engine.init import INITIALIZERS, He
from dlrun.engine.layers import ACTIVATIONS, Activation, BatchNorm, Dense, Dropout
from dlrun.engine.losses import (
    BinaryCrossEntropy,
    MeanSquaredError,
    SoftmaxCrossEntropy,
)
from dlrun.engine.network import Network
from dlrun.gradcheck import check
from dlrun.gradcheck.report import show

runner = CliRunner()
N_OUTPUTS = {"sigmoid": 1, "softmax": 3, "linear": 2}


def small_network(activation="relu", output="sigmoid", batch_norm=False, keep_probs=None,
                  l2=0.0, l1=0.0, seed=0, m=16):
    """A float64 [3, 4, 3, k] network with biases, γ and β away from 0 and 1, and a batch."""
    rng = np.random.default_rng(seed)
    k = N_OUTPUTS[output]
    network = Network.build([3, 4, 3, k], activation, He(), output, rng, rng, dtype=np.float64,
                            batch_norm=batch_norm, keep_probs=keep_probs, l2=l2, l1=l1)
    for name, array in network.params.items():
        if name.startswith("gamma"):
            array[...] = rng.uniform(0.5, 1.5, array.shape)
        elif name.startswith("b"):
            array[...] = rng.normal(0, 0.5, array.shape)
    X = rng.standard_normal((m, 3))
    y = rng.standard_normal((m, k)) if output == "linear" else rng.integers(0, max(k, 2), m)
    return network, X, y


def verdicts(rows, term="loss"):
    return {row.name: row.verdict for row in rows if row.term == term}


def failing(rows, term="loss"):
    return {name for name, verdict in verdicts(rows, term).items()
            if verdict == "fail" and name != check.WHOLE}


def test_relative_difference_is_the_course_formula():
    analytic, numeric = np.array([1.0, -2.0, 3.0]), np.array([1.0, -2.5, 2.0])
    expected = np.sqrt(0.25 + 1.0) / (np.sqrt(1 + 4 + 9) + np.sqrt(1 + 6.25 + 4))
    assert check.relative_difference(analytic, numeric) == pytest.approx(expected, rel=1e-12)
    assert check.relative_difference(np.zeros(3), np.zeros(3)) == 0.0
    assert check.relative_difference(np.zeros(2), np.array([1e-3, 0])) == 1.0


@pytest.mark.parametrize("difference, floor, kinks, truncation, expected", [
    (5e-8, 0.0, 0, 0.0, ("pass", "")),
    (2e-6, 1e-9, 0, 0.0, ("warn", "")),
    (2e-3, 1e-9, 0, 0.0, ("fail", "")),
    (2e-6, 4e-6, 0, 0.0, ("pass", "rounding")),
    (2e-6, 1e-7, 0, 3e-6, ("pass", "truncation")),  # the step's own error explains it
    (2e-6, 1e-7, 0, 1e-7, ("warn", "")),  # ... and beyond what both explain, warn
    (2e-3, 5e-3, 0, 0.0, ("uncheckable", "below float64 resolution")),
    (2e-3, 1e-7, 0, 5e-3, ("uncheckable", "truncation at this ε")),
    (1e-9, 0.0, 2, 0.0, ("warn", "kink ×2")),
    (2e-3, 1e-9, 1, 0.0, ("fail", "kink ×1")),
    (float("nan"), 0.0, 0, 0.0, ("fail", "not finite")),
])
def test_verdict_thresholds(difference, floor, kinks, truncation, expected):
    assert check.judge(difference, floor, kinks, truncation) == expected


def test_truncation_estimate_is_the_third_derivative_term_of_a_known_cost():
    """One example through a sigmoid output: J(b) = log(1 + e^−z), z = w·x + b, y = 1, so
    J‴(b) = σ(1 − σ)(1 − 2σ) and D(ε) − J′ = ε²·J‴/6, which (D(2ε) − D(ε))/3 estimates."""
    rng = np.random.default_rng(4)
    network = Network.build([2, 1], "relu", He(), "sigmoid", rng, rng, dtype=np.float64)
    network.params["b1"][...] = -1.3
    X, y = rng.standard_normal((1, 2)), np.array([1])
    z = float((X @ network.params["W1"].T + network.params["b1"]).item())
    s = 1 / (1 + np.exp(-z))
    epsilon = 1e-3
    numeric = check.numeric_gradients(check.Probe(network, X, y), "b1", np.arange(1), epsilon)
    _, _, _, truncation = numeric.term("loss")
    assert truncation[0] == pytest.approx(epsilon ** 2 * abs(s * (1 - s) * (1 - 2 * s)) / 6,
                                          rel=1e-3)
    assert numeric.loss[0] - (s - 1) == pytest.approx(epsilon ** 2 * s * (1 - s) * (1 - 2 * s) / 6,
                                                      rel=1e-3)


def _sweep(combination, epsilon=check.EPSILON, after_steps=0):
    """One network of the engine sweep, seeded as check_engine seeds it, checked at ε."""
    n = check.combinations().index(combination)
    rng = np.random.default_rng([0, n])
    network, X, y = check.sweep_network(combination, 32, rng)
    return check.check_network(network, X, y, epsilon, None, rng)


@pytest.mark.parametrize("output, penalty, dropout", [("softmax", "none", True),
                                                      ("linear", "l2", False)])
def test_a_large_epsilon_is_not_held_against_a_correct_network(output, penalty, dropout):
    """tanh + batch norm + random 0.01: batch norm divides tiny pre-activations by their tiny
    spread, so J curves sharply and D(1e-5) is off by more than 1e-5 from truncation alone. The
    array is judged at the step that resolves it, and passes."""
    rows = _sweep(check.Combination("tanh", output, "random", penalty, True, dropout), 1e-5)
    assert {row.verdict for row in rows} == {"pass"}, [r for r in rows if r.verdict != "pass"]
    narrowed = [row for row in rows if row.epsilon < 1e-5]
    assert narrowed and all("ε 1e-06" in row.note or "ε 1e-07" in row.note for row in narrowed)


def test_a_gradient_rounding_hides_is_checked_again_with_a_larger_step():
    """sigmoid + random 0.01 at ε = 1e-7: ‖dW1‖ about 1e-6 beside J = 0.69, so rounding of J
    over 2ε hides differences of 1e-5; at a larger step it does not."""
    rows = _sweep(check.Combination("sigmoid", "softmax", "random", "none", False, False))
    w1 = next(row for row in rows if row.name == "W1")
    assert w1.verdict == "pass" and w1.epsilon > check.EPSILON
    assert w1.rounding_floor + w1.truncation < check.WARN_BELOW


def test_a_gradient_too_small_for_float64_at_any_step_is_not_checkable():
    rows = _sweep(check.Combination("sigmoid", "sigmoid", "random", "none", False, False))
    b1 = next(row for row in rows if row.name == "b1")
    assert b1.verdict == "uncheckable" and abs(b1.analytic) < 1e-7
    assert "steps tried: 1e-07, 1e-06, 1e-05, 0.0001, 0.001, 0.01" in b1.note
    assert b1.rounding_floor + b1.truncation >= check.WARN_BELOW
    report = check.Report("engine", {}, [check.Check({}, [check.Stage("x", 0, rows)])])
    assert report.verdict == "uncheckable"  # nothing else to go on
    passing = check.Check({}, [check.Stage("x", 0, [dataclasses.replace(b1, verdict="pass")])])
    assert check.Report("engine", {}, [report.checks[0], passing]).verdict == "pass"


@pytest.mark.slow
def test_the_bare_self_check_passes_every_network_or_says_why_it_cannot_check_it():
    """`dlrun gradcheck` with no config: none warns for resolution alone, none fails."""
    report = check.check_engine()
    counts = Counter(c.verdict for c in report.checks)
    assert counts["fail"] == counts["warn"] == 0 and counts["pass"] > 0.99 * len(report.checks)
    for item in report.checks:
        for stage in item.stages:
            for row in stage.rows:
                if row.verdict != "pass":
                    assert row.verdict == "uncheckable" and "steps tried" in row.note, row


def test_numeric_gradients_match_the_closed_form_of_linear_regression():
    rng = np.random.default_rng(3)
    network = Network.build([3, 2], "relu", He(), "linear", rng, rng, dtype=np.float64, l2=0.4)
    network.params["b1"][...] = rng.normal(size=(2, 1))
    X, Y = rng.standard_normal((10, 3)), rng.standard_normal((10, 2))
    W, b = network.params["W1"], network.params["b1"]
    residual = X @ W.T + b.T - Y
    dW = 2 / residual.size * residual.T @ X  # J = mean of squared residuals over m·k entries
    db = 2 / residual.size * residual.sum(axis=0)
    probe = check.Probe(network, X, Y)
    numeric_W = check.numeric_gradients(probe, "W1", np.arange(6), 1e-6)
    numeric_b = check.numeric_gradients(probe, "b1", np.arange(2), 1e-6)
    # float64 rounding of J (about 1e-16) over the step 2e-6 bounds the agreement
    np.testing.assert_allclose(numeric_W.loss, dW.reshape(-1), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(numeric_b.loss, db, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(numeric_W.penalty, 0.4 / 10 * W.reshape(-1), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(numeric_b.penalty, 0.0)


def test_correct_engine_passes_with_every_term_and_piece():
    network, X, y = small_network(batch_norm=True, keep_probs=[0.7, 0.8], l2=0.5, l1=0.2)
    rows = check.check_network(network, X, y)
    assert {row.term for row in rows} == {"cost", "loss", "penalty"}
    assert all(row.verdict == "pass" for row in rows), [r for r in rows if r.verdict != "pass"]
    names = [row.name for row in rows if row.term == "cost"]
    assert names == ["W1", "gamma1", "beta1", "W2", "gamma2", "beta2", "W3", "b3", "all"]
    whole = next(row for row in rows if row.name == "all" and row.term == "cost")
    assert whole.checked == whole.size == sum(a.size for a in network.params.values())


def test_check_leaves_parameters_buffers_and_dropout_as_they_were():
    network, X, y = small_network(batch_norm=True, keep_probs=[0.5, 0.5])
    before = {name: array.copy() for name, array in network.state().items()}
    check.check_network(network, X, y)
    for name, array in network.state().items():
        np.testing.assert_array_equal(array, before[name], err_msg=name)
    dropouts = [layer for layer in network.layers if isinstance(layer, Dropout)]
    assert dropouts and not any(layer.frozen for layer in dropouts)


def test_needs_float64():
    rng = np.random.default_rng(0)
    network = Network.build([2, 3, 1], "relu", He(), "sigmoid", rng, rng, dtype=np.float32)
    with pytest.raises(ValueError, match="float64"):
        check.check_network(network, np.zeros((4, 2), np.float32), np.zeros(4))


def test_samples_check_that_many_entries_of_each_array():
    network, X, y = small_network()
    rows = check.check_network(network, X, y, samples=3, rng=np.random.default_rng(1))
    by_name = {row.name: row for row in rows}
    for name, array in network.params.items():
        assert by_name[name].checked == min(3, array.size)
        assert by_name[name].size == array.size
    assert by_name["all"].checked == sum(min(3, a.size) for a in network.params.values())


def test_relu_kink_crossed_by_epsilon_is_a_warning_not_a_failure():
    rng = np.random.default_rng(0)
    network = Network.build([2, 3, 1], "relu", He(), "sigmoid", rng, rng, dtype=np.float64)
    X = rng.standard_normal((6, 2))
    X[0] = 0.0  # with b1 = 0 this example's pre-activations sit exactly on the kink
    rows = check.check_network(network, X, np.array([0, 1, 0, 1, 1, 0]))
    b1 = next(row for row in rows if row.name == "b1")
    assert (b1.verdict, b1.kinks) == ("warn", 3) and "kink" in b1.note
    assert b1.relative_difference > check.WARN_BELOW  # what a kink does to the differences
    assert verdicts(rows)["W1"] == "pass"  # ±ε on W1 moves the zero example's Z by ε·0
    assert "fail" not in verdicts(rows).values()


def test_wrong_relu_mask_fails_the_arrays_behind_a_relu(monkeypatch):
    original = Activation.backward

    def backward(self, dA):
        return dA * (self.Z <= 0) if self.name == "relu" else original(self, dA)

    monkeypatch.setattr(Activation, "backward", backward)
    network, X, y = small_network("relu")
    rows = check.check_network(network, X, y)
    assert failing(rows) == {"W1", "b1", "W2", "b2"}
    assert verdicts(rows)["W3"] == verdicts(rows)["b3"] == "pass"


def test_missing_relu_mask_is_caught_too(monkeypatch):
    monkeypatch.setattr(Activation, "backward", lambda self, dA: dA)
    network, X, y = small_network("relu")
    assert failing(check.check_network(network, X, y)) == {"W1", "b1", "W2", "b2"}


@pytest.mark.parametrize("loss, output", [(BinaryCrossEntropy, "sigmoid"),
                                          (SoftmaxCrossEntropy, "softmax"),
                                          (MeanSquaredError, "linear")])
def test_loss_gradient_missing_one_over_m_fails_every_array(monkeypatch, loss, output):
    original = loss.value_and_grad

    def value_and_grad(self, Z, y, need_grad=True):
        cost, grad = original(self, Z, y, need_grad)
        return cost, None if grad is None else grad * Z.shape[0]

    monkeypatch.setattr(loss, "value_and_grad", value_and_grad)
    network, X, y = small_network("tanh", output)
    rows = check.check_network(network, X, y)
    assert failing(rows) == set(network.params)


def test_wrong_bias_gradient_fails_exactly_the_biases(monkeypatch):
    original = Dense.backward

    def backward(self, dZ):
        dX = original(self, dZ)
        if f"b{self.index}" in self.params:
            self.grads[f"b{self.index}"] = dZ.mean(axis=0, keepdims=True).T  # 1/m twice
        return dX

    monkeypatch.setattr(Dense, "backward", backward)
    network, X, y = small_network("leaky_relu", "softmax")
    assert failing(check.check_network(network, X, y)) == {"b1", "b2", "b3"}


def test_missing_l2_term_is_named_as_the_penalty_of_each_weight(monkeypatch):
    original = Network.backward

    def backward(self, dZ):
        l2, self.l2 = self.l2, 0.0
        try:
            original(self, dZ)
        finally:
            self.l2 = l2

    monkeypatch.setattr(Network, "backward", backward)
    network, X, y = small_network("relu", l2=0.7)
    rows = check.check_network(network, X, y)
    assert failing(rows, "penalty") == {"W1", "W2", "W3"}
    assert failing(rows, "cost") == {"W1", "W2", "W3"}
    assert failing(rows, "loss") == set()


def test_l2_gradient_missing_one_over_m_is_named_as_the_penalty(monkeypatch):
    original = Network.backward

    def backward(self, dZ):
        original(self, dZ)
        m = self.dense[0].X.shape[0]
        for layer in self.dense:
            self.grads[f"W{layer.index}"] += (self.l2 - self.l2 / m) * layer.W

    monkeypatch.setattr(Network, "backward", backward)
    network, X, y = small_network("tanh", "linear", l2=0.7)
    rows = check.check_network(network, X, y)
    assert failing(rows, "penalty") == {"W1", "W2", "W3"}
    assert failing(rows, "loss") == set()


def test_batch_norm_without_the_variance_path_fails_what_lies_behind_it(monkeypatch):
    def backward(self, dY):
        i, m = self.index, dY.shape[0]
        self.grads[f"gamma{i}"] = (dY * self.Z_hat).sum(axis=0, keepdims=True).T
        self.grads[f"beta{i}"] = dY.sum(axis=0, keepdims=True).T
        dZ_hat = dY * self.params[f"gamma{i}"].T
        return (self.inv_std / m) * (m * dZ_hat - dZ_hat.sum(axis=0, keepdims=True))

    monkeypatch.setattr(BatchNorm, "backward", backward)
    network, X, y = small_network("relu", "softmax", batch_norm=True)
    rows = check.check_network(network, X, y)
    # γ2, β2 take their gradient before the broken step; everything that reaches Z2 through it fails
    assert failing(rows) == {"W1", "gamma1", "beta1", "W2"}
    assert {verdicts(rows)[name] for name in ("gamma2", "beta2", "W3", "b3")} == {"pass"}


def test_dropout_backward_without_the_mask_fails(monkeypatch):
    monkeypatch.setattr(Dropout, "backward", lambda self, dA: dA)
    network, X, y = small_network("tanh", keep_probs=[0.6, 0.6])
    assert failing(check.check_network(network, X, y)) == {"W1", "b1", "W2", "b2"}


def test_dropout_is_checked_with_masks_frozen_for_every_evaluation(monkeypatch):
    network, X, y = small_network("tanh", keep_probs=[0.5, 0.5])
    assert "fail" not in verdicts(check.check_network(network, X, y)).values()
    original = Dropout.forward

    def forward(self, A, training):
        self.mask = None  # a fresh mask every time: J is no longer a function of θ
        return original(self, A, training)

    monkeypatch.setattr(Dropout, "forward", forward)
    assert failing(check.check_network(network, X, y)) >= {"W1", "b1", "W2", "b2"}


def test_config_check_reports_progress_over_every_entry_of_both_points(tmp_path):
    from dlrun.config import load

    calls = []
    report = check.check_config(load(write_config(tmp_path)), after_steps=2, samples=4,
                                    progress=lambda done, total: calls.append((done, total)))
    checked = sum(row.checked for stage in report.checks[0].stages for row in stage.rows
                  if row.name == check.WHOLE)
    assert calls[-1] == (checked, checked) == (2 * (4 + 4 + 4 + 4 + 4 + 1),) * 2
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def write_config(tmp_path, text="") -> str:
    path = tmp_path / "small.yaml"
    path.write_text("name: small\nseed: 4\ndata:\n  generator: {name: moons, n_samples: 200}\n"
                    "model:\n  hidden_layers: [6, 4]\ntrain:\n  learning_rate: 0.01\n" + text,
                    encoding="utf-8")
    return str(path)


def run_json(*args):
    result = runner.invoke(app, ["gradcheck", *args, "--format", "json"])
    return result, (json.loads(result.stdout) if result.exit_code in (0, 1) else None)


def test_cli_checks_a_config_in_float64_at_initialization_and_after_training(tmp_path):
    result, report = run_json(write_config(tmp_path), "dtype=float32", "--after-steps", "3")
    assert result.exit_code == 0, result.output
    assert report["verdict"] == "pass" and report["mode"] == "config"
    assert report["settings"]["dtype"] == "float64" and report["settings"]["batch"] == 32
    stages = report["checks"][0]["stages"]
    assert [(s["label"], s["steps"]) for s in stages] == [("at initialization", 0),
                                                          ("after 3 training steps", 3)]
    assert [row["name"] for row in stages[0]["rows"]] == ["W1", "b1", "W2", "b2", "W3", "b3", "all"]
    assert stages[0]["rows"][0]["shape"] == [6, 2]
    trained = {row["name"]: row["analytic"] for row in stages[1]["rows"]}
    assert trained != {row["name"]: row["analytic"] for row in stages[0]["rows"]}


def test_cli_checks_penalty_batch_norm_and_dropout_of_a_config(tmp_path):
    config = write_config(tmp_path, "regularization: {l2: 0.5, l1: 0.1}\n")
    result, report = run_json(config, "model.batch_norm=true", "model.keep_prob=0.7",
                              "--samples", "5")
    assert result.exit_code == 0, result.output
    rows = report["checks"][0]["stages"][0]["rows"]
    assert {row["term"] for row in rows} == {"cost", "loss", "penalty"}
    assert "gamma1" in {row["name"] for row in rows}
    assert all(row["checked"] == min(5, row["size"]) for row in rows if row["name"] != "all")
    assert report["verdict"] != "fail"


def test_cli_same_config_gives_the_same_report(tmp_path):
    config = write_config(tmp_path)
    first = run_json(config, "model.keep_prob=0.6", "--samples", "3")[1]
    second = run_json(config, "model.keep_prob=0.6", "--samples", "3")[1]
    first.pop("seconds"), second.pop("seconds")
    assert first == second


def test_cli_table_names_every_parameter_and_the_verdict(tmp_path):
    result = runner.invoke(app, ["gradcheck", write_config(tmp_path), "--after-steps", "0"])
    assert result.exit_code == 0, result.output
    for name in ("W1 (6×2)", "b2 (4×1)", "W3 (1×4)", "θ (51)", "at initialization"):
        assert name in result.output
    assert "pass: every gradient agrees with two-sided differences of J" in " ".join(
        result.output.split())


def test_cli_exits_1_and_names_the_wrong_parameter(tmp_path, monkeypatch):
    original = Dense.backward

    def backward(self, dZ):
        dX = original(self, dZ)
        if self.index == 2:
            self.grads["W2"] = self.grads["W2"] * 1.01
        return dX

    monkeypatch.setattr(Dense, "backward", backward)
    result = runner.invoke(app, ["gradcheck", write_config(tmp_path), "--after-steps", "0"])
    assert result.exit_code == 1
    assert "disagrees with J for W2 (loss) at initialization" in " ".join(result.output.split())
    _, report = run_json(write_config(tmp_path), "--after-steps", "0")
    rows = report["checks"][0]["stages"][0]["rows"]
    assert [row["name"] for row in rows if row["verdict"] == "fail"] == ["W2", "all"]


@pytest.mark.parametrize("args, message", [
    (["missing.yaml"], "missing.yaml: no such config file"),
    (["{config}", "--epsilon", "0"], "--epsilon: must be a number in (0, 1), got 0.0"),
    (["{config}", "--epsilon=-1e-7"], "--epsilon: must be a number in (0, 1)"),
    (["{config}", "--epsilon", "nan"], "--epsilon"),
    (["{config}", "--samples", "0"], "--samples: must be at least 1"),
    (["{config}", "--after-steps", "-1"], "--after-steps: must be 0"),
    (["{config}", "--batch", "1"], "--batch: must be at least 2"),
    (["{config}", "model.hiden_layers=[3]"], "model.hiden_layers: unknown key"),
    (["--epsilon", "2"], "--epsilon: must be a number in (0, 1), got 2.0"),
    (["{config}", "--format", "xml"], "--format: must be one of table, json, got 'xml'"),
])
def test_cli_bad_input_exits_2_with_one_line(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path)
    before = sorted(tmp_path.iterdir())
    result = runner.invoke(app, ["gradcheck", *[a.format(config=config) for a in args]])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert sorted(tmp_path.iterdir()) == before  # nothing written


def test_cli_malformed_config_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n", encoding="utf-8")
    result = runner.invoke(app, ["gradcheck", str(bad)])
    assert result.exit_code == 2 and "bad.yaml:2: invalid YAML" in result.output


def test_cli_training_that_diverges_before_the_second_check_exits_2(tmp_path):
    config = write_config(tmp_path, "dtype: float64\n")
    result = runner.invoke(app, ["gradcheck", config, "train.optimizer=gd",
                                 "train.learning_rate=1e300", "--after-steps", "5"])
    assert result.exit_code == 2
    assert "--after-steps: the gradients became non-finite" in result.output


@pytest.fixture(scope="module")
def engine_sweep():
    """The engine checked through the command line: every combination, one entry per array."""
    return run_json("--samples", "1", "--after-steps", "1", "--batch", "8")


@pytest.mark.slow
def test_engine_sweep_covers_every_combination_at_two_points(engine_sweep):
    result, report = engine_sweep
    penalties = ("none", "l2", "l1", "l2+l1")
    expected = set(itertools.product(ACTIVATIONS, N_OUTPUTS, INITIALIZERS, penalties,
                                     (False, True), (False, True)))
    seen = [tuple(check["network"].values()) for check in report["checks"]]
    count = len(ACTIVATIONS) * len(N_OUTPUTS) * len(INITIALIZERS) * len(penalties) * 2 * 2
    assert len(seen) == len(expected) == count and set(seen) == expected
    assert all([s["steps"] for s in check["stages"]] == [0, 1] for check in report["checks"])
    assert report["mode"] == "engine" and report["settings"]["dtype"] == "float64"


@pytest.mark.slow
def test_correct_engine_never_fails(engine_sweep):
    result, report = engine_sweep
    assert result.exit_code == 0 and report["counts"]["fail"] == 0
    rows = [row for check in report["checks"] for stage in check["stages"] for row in stage["rows"]]
    # what does not pass is a gradient too small for float64 differences, never a disagreement
    assert {row["verdict"] for row in rows if row["verdict"] != "pass"} <= {"uncheckable"}
    assert sum(row["verdict"] == "pass" for row in rows) > 0.9 * len(rows)


@pytest.mark.slow
def test_cli_engine_sweep_fails_exactly_the_batch_norm_networks_when_it_is_broken(monkeypatch):
    original = BatchNorm.backward
    monkeypatch.setattr(BatchNorm, "backward", lambda self, dY: original(self, dY) * 0.5)
    result, report = run_json("--samples", "1", "--after-steps", "0", "--batch", "8")
    assert result.exit_code == 1
    failed = {tuple(check["network"].values()) for check in report["checks"]
              if check["verdict"] == "fail"}
    # zeros make every hidden unit alike: batch norm then passes no gradient for the bug to scale
    expected = {tuple(check["network"].values()) for check in report["checks"]
                if check["network"]["batch_norm"] and check["network"]["init"] != "zeros"}
    # activations × outputs × the initializers but zeros × penalties × dropout or not
    count = len(ACTIVATIONS) * len(N_OUTPUTS) * (len(INITIALIZERS) - 1) * 4 * 2
    assert failed == expected and len(failed) == count


def test_engine_tables_show_counts_by_factor_and_what_did_not_pass():
    checks = []
    for n, combination in enumerate(check.combinations()[::97]):
        rng = np.random.default_rng(n)
        network, X, y = check.sweep_network(combination, 8, rng)
        stage = check.Stage("at initialization", 0, check.check_network(network, X, y))
        checks.append(check.Check(dataclasses.asdict(combination), [stage]))
    checks[1].stages[0].rows[0].verdict = "fail"  # as a broken engine would have it
    report = check.Report("engine", {"epsilon": 1e-7, "batch": 8, "samples": None,
                                         "after_steps": 0, "dtype": "float64", "seed": 0,
                                         "hidden_layers": [3, 2], "n_features": 2}, checks)
    console = Console(record=True, width=160)
    show(report, console)
    text = console.export_text()
    assert f"Engine sweep: {len(checks)} networks [2-3-2-k]" in text
    name = checks[1].stages[0].rows[0].name
    assert f"{' · '.join(_label_parts(checks[1].network))}" in text and name in text
    counts = Counter(check.verdict for check in checks)
    assert (f"fail: {counts['pass']} of {len(checks)} networks pass, {counts['warn']} warn, 1 fail"
            in text)


def _label_parts(network):
    return [network["activation"], network["output"], network["init"], network["penalty"],
            "batch norm" if network["batch_norm"] else "no bn",
            "dropout" if network["dropout"] else "no dropout"]
