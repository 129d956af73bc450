"""A new entry is one class and one registry line: an initializer, an optimizer, two activations,
a schedule and a generator, registered for these tests only, are validated, trained, checked
and diagnosed like the built-in ones, each by its traits."""

import json
import math

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dlrun import config
from dlrun.cli import app
from dlrun.data.synthetic import GENERATORS, Generator
from dlrun.diagnosis.bias_variance import analyse
from dlrun.diagnosis.diagnose import DIAGNOSIS_JSON
from dlrun.diagnosis.recipe import recommend
from dlrun.engine.init import INITIALIZERS, Initializer
from dlrun.engine.layers import ACTIVATIONS, Activation
from dlrun.engine.network import Network
from dlrun.engine.optim import OPTIMIZERS, Adam
from dlrun.engine.registry import check
from dlrun.engine.schedules import SCHEDULES, Schedule
from dlrun.gradcheck import check as gradcheck
from dlrun.rundir import layout
from dlrun.training import session

runner = CliRunner()


class LeCun(Initializer):
    """Var(W) = 1/n_in: Xavier's scheme under another name."""

    name = "throwaway_lecun"
    fan_scaled, fan_in_gain = True, 1.0

    def std(self, n_out, n_in):
        return math.sqrt(1.0 / n_in)


class AdamW(Adam):
    """Adam with decoupled weight decay: θ ← (1 − αλ)·θ, then Adam's step."""

    name, title = "throwaway_adamw", "AdamW"

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8,
                 weight_decay: float = 0.01):
        super().__init__(beta1, beta2, epsilon)
        check(weight_decay >= 0, "Argument `weight_decay` must be >= 0. Received: "
                                 f"weight_decay={weight_decay}")
        self.weight_decay = weight_decay

    def update(self, param, grad, lr, state):
        param *= 1 - lr * self.weight_decay
        super().update(param, grad, lr, state)


class Softsign(Activation):
    """g(Z) = Z/(1 + |Z|);  g'(Z) = 1/(1 + |Z|)²: smooth, with slowly flattening tails."""

    name, title = "throwaway_softsign", "softsign"
    saturates = True

    @staticmethod
    def function(Z):
        return Z / (1 + np.abs(Z))

    @staticmethod
    def derivative(Z, A):
        return 1 / (1 + np.abs(Z)) ** 2


class HardTanh(Activation):
    """g(Z) = clip(Z, −1, 1);  g'(Z) = 1 inside (−1, 1), else 0: kinked at ±1, not at 0."""

    name, title = "throwaway_hard_tanh", "hard tanh"
    kinks, saturates = (-1.0, 1.0), True

    @staticmethod
    def function(Z):
        return np.clip(Z, -1, 1)

    @staticmethod
    def derivative(Z, A):
        return (np.abs(Z) < 1).astype(Z.dtype)


class Linear(Schedule):
    """α = α₀·(1 − (1 − end)·t/T): a straight line from α₀ to end·α₀ over the run's T steps."""

    name = "throwaway_linear"

    def __init__(self, end: float = 0.0):
        check(0 <= end < 1, f"Argument `end` must be in [0, 1). Received: end={end}")
        self.end = end

    def lr(self, lr0, epoch, step):
        return lr0 * (1 - (1 - self.end) * min(step / self.total_steps, 1.0))


class Stripes(Generator):
    """Points uniform on [−1, 1]², class 1 where sin(π·waves·x₁) > 0, moved by N(0, noise²)."""

    name = "throwaway_stripes"

    def __init__(self, n_samples: int = 300, noise: float = 0.05, waves: float = 1.0,
                 stretch: float = 1.0):
        super().__init__(n_samples, noise, stretch)
        check(waves > 0, f"Argument `waves` must be > 0. Received: waves={waves}")
        self.waves = waves

    def sample(self, rng):
        X = rng.uniform(-1, 1, (self.n_samples, 2))
        y = (np.sin(np.pi * self.waves * X[:, 0]) > 0).astype(np.int64)
        return X + rng.normal(0, self.noise, X.shape), y


ENTRIES = [(INITIALIZERS, LeCun), (OPTIMIZERS, AdamW), (ACTIVATIONS, Softsign),
           (ACTIVATIONS, HardTanh), (SCHEDULES, Linear), (GENERATORS, Stripes)]


@pytest.fixture
def registered(monkeypatch):
    """The throwaway entries in their registries for one test, gone again after it."""
    for registry, cls in ENTRIES:
        assert cls.name not in registry
        monkeypatch.setitem(registry, cls.name, cls)


def spec(activation="throwaway_softsign", **train):
    return {"name": "throwaway", "seed": 0,
            "data": {"generator": {"name": "throwaway_stripes", "n_samples": 200}},
            "model": {"hidden_layers": [6, 4], "activation": activation,
                      "init": "throwaway_lecun"},
            "train": {"optimizer": {"name": "throwaway_adamw", "weight_decay": 0.05},
                      "learning_rate": 0.02, "epochs": 5, "batch_size": 32,
                      "decay": "throwaway_linear", **train}}


def test_validation_fills_in_the_new_entries_options(registered):
    cfg = config.validate(spec(), "test")
    assert cfg.model.init == {"name": "throwaway_lecun"}
    assert cfg.model.activation == "throwaway_softsign"
    assert cfg.train.optimizer == {"name": "throwaway_adamw", "beta1": 0.9, "beta2": 0.999,
                                   "epsilon": 1e-8, "weight_decay": 0.05}
    assert cfg.train.decay == {"name": "throwaway_linear", "end": 0.0}
    assert cfg.data.generator == {"name": "throwaway_stripes", "n_samples": 200, "noise": 0.05,
                                  "waves": 1.0, "stretch": 1.0}


@pytest.mark.parametrize("override, message", [
    ("train.optimizer.weight_decay=-1", "train.optimizer: Argument `weight_decay` must be >= 0"),
    ("train.optimizer.decay=0.1", "train.optimizer: unknown option 'decay' for optimizer 'throwaway_adamw'; "
                                  "allowed: beta1, beta2, epsilon, weight_decay"),
    ("model.init.scale=2", "model.init: unknown option 'scale' for init 'throwaway_lecun'; allowed: none"),
    ("train.decay.end=1", "train.decay: Argument `end` must be in [0, 1)"),
    ("data.generator.waves=0", "data.generator: Argument `waves` must be > 0"),
    ("model.activation=softsign", "model.activation: must be 'relu', "),
])
def test_bad_arguments_of_new_entries_are_one_line_exit_2(registered, tmp_path, override,
                                                          message):
    path = tmp_path / "new.yaml"
    path.write_text(yaml.safe_dump(spec()))
    result = runner.invoke(app, ["train", str(path), override, "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert f"new.yaml: override {override!r}: {message}" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_an_unknown_name_lists_the_new_entries_with_the_old(registered, tmp_path):
    path = tmp_path / "new.yaml"
    path.write_text(yaml.safe_dump(spec()))
    result = runner.invoke(app, ["train", str(path), "train.decay=no_such_schedule",
                                 "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and f"allowed: {', '.join(SCHEDULES)}" in result.output
    assert "throwaway_linear" in result.output


def test_a_run_trains_with_every_new_entry(registered, tmp_path):
    run_dir, summary = session.run(config.validate(spec(), "test"), tmp_path)
    assert summary["status"] == "completed"
    lrs = [float(row.split(",")[1]) for row in
           (run_dir / layout.METRICS).read_text().splitlines()[1:]]
    steps = summary["steps"] // 5  # the schedule was bound to the run's 5 epochs of 4 steps
    assert steps == 4
    assert lrs == pytest.approx([0.02 * (1 - e * steps / summary["steps"]) for e in range(5)])


def test_the_new_optimizer_is_adam_when_it_does_not_decay(registered, tmp_path):
    """AdamW with λ = 0 takes Adam's steps exactly, and with λ > 0 ends elsewhere."""
    params = {}
    for label, optimizer in [("adam", "adam"), ("no decay", {"name": "throwaway_adamw",
                                                           "weight_decay": 0.0}),
                             ("decay", {"name": "throwaway_adamw", "weight_decay": 0.5})]:
        cfg = config.validate(spec(optimizer=optimizer, decay="none"), "test")
        run_dir, _ = session.run(cfg, tmp_path / label.replace(" ", "-"))
        params[label], _ = layout.load_params(run_dir / layout.PARAMS)
    assert all(np.array_equal(params["adam"][k], params["no decay"][k]) for k in params["adam"])
    assert np.linalg.norm(params["decay"]["W1"]) < np.linalg.norm(params["adam"]["W1"])


@pytest.mark.parametrize("activation", ["throwaway_softsign", "throwaway_hard_tanh"])
def test_gradcheck_passes_a_config_using_the_new_entries(registered, tmp_path, activation):
    path = tmp_path / "new.yaml"
    path.write_text(yaml.safe_dump(spec(activation)))
    result = runner.invoke(app, ["gradcheck", str(path), "--samples", "4", "--format", "json"])
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["verdict"] in ("pass", "warn") and report["counts"]["fail"] == 0
    assert report["checks"][0]["network"]["activation"] == activation


def hard_tanh_on_its_kink():
    """A network whose first example sits exactly on hard tanh's kink at Z = 1 (X = 0, b1 = 1)."""
    rng = np.random.default_rng(0)
    network = Network.build([2, 3, 1], "throwaway_hard_tanh", LeCun(), "sigmoid", rng, rng,
                            dtype=np.float64)
    network.params["b1"][...] = 1.0
    X = rng.standard_normal((6, 2)) * 0.1
    X[0] = 0.0
    return gradcheck.check_network(network, X, np.array([0, 1, 0, 1, 1, 0]))


def test_gradcheck_steps_around_the_kinks_the_new_activation_declares(registered, monkeypatch):
    b1 = next(row for row in hard_tanh_on_its_kink() if row.name == "b1")
    assert (b1.verdict, b1.kinks) == ("warn", 3) and "kink" in b1.note
    monkeypatch.setattr(HardTanh, "kinks", ())  # not told: the kink reads as a wrong gradient
    b1 = next(row for row in hard_tanh_on_its_kink() if row.name == "b1")
    assert (b1.verdict, b1.kinks) == ("fail", 0)


def test_the_engine_sweep_takes_in_the_new_entries(registered):
    combinations = gradcheck.combinations()
    new = [c for c in combinations if c.activation in (Softsign.name, HardTanh.name)
           and c.init == LeCun.name and not c.batch_norm and c.penalty in ("none", "l2+l1")]
    assert len(combinations) == len(ACTIVATIONS) * len(INITIALIZERS) * 3 * 4 * 2 * 2
    assert len(new) == 2 * 3 * 2 * 2
    for n, combination in enumerate(new):
        rng = np.random.default_rng(n)
        network, X, y = gradcheck.sweep_network(combination, 8, rng)
        rows = gradcheck.check_network(network, X, y)
        assert "fail" not in {row.verdict for row in rows}


def test_the_diagnosis_measures_new_activations_by_their_traits(registered, tmp_path):
    run_dir, _ = session.run(config.validate(spec("throwaway_hard_tanh"), "test"), tmp_path)
    diagnosis = json.loads((run_dir / DIAGNOSIS_JSON).read_text())
    layers = diagnosis["units"]["layers"]
    assert [layer["activation"] for layer in layers] == ["throwaway_hard_tanh"] * 2
    assert all(layer["dead"] is None and layer["saturated_share"] is not None for layer in layers)
    assert diagnosis["units"]["checks"]["saturation"]["status"] != "skipped"
    assert diagnosis["units"]["checks"]["dead_relu"]["status"] == "skipped"
    # only plain gradient descent must descend every step
    assert diagnosis["dynamics"]["cost_decrease"]["status"] == "skipped"


SUMMARY = {"status": "completed", "examples": {"train": 600, "dev": 200}}


def actions(checks, **sections):
    cfg = config.validate(sections, "test")
    analysis = analyse({"human": 0.0, "train": 0.15, "dev": 0.16, "test": None}, cfg.diagnose)
    return [a for advice in recommend(analysis, checks, cfg, SUMMARY) for a in advice["actions"]]


VANISHING = {"gradients": {"status": "problem", "message": "vanishing", "kind": "vanishing"}}
OSCILLATING = {"oscillation": {"status": "problem", "message": "it oscillates"}}


def test_advice_never_suggests_the_scheme_a_run_already_uses(registered):
    told = actions(VANISHING, model={"init": "throwaway_lecun", "activation": "tanh"})
    assert not any("model.init" in action for action in told)
    unscaled = actions(VANISHING, model={"init": "random", "activation": "throwaway_softsign"})
    assert ("initialization scaled to each layer's fan-in (model.init: xavier; it is random)"
            in unscaled)
    assert "ReLU units (model.activation: relu), whose slope does not shrink" in unscaled


def test_advice_counts_the_new_optimizer_as_adam_like(registered):
    told = actions(OSCILLATING, train={"optimizer": "throwaway_adamw", "batch_size": "full"})
    assert not any("train.optimizer" in action for action in told)
    assert "tune the learning rate on a log scale (train.learning_rate is 0.001)" in told
    plain = actions(OSCILLATING, train={"optimizer": "gd", "batch_size": "full"})
    assert "momentum or Adam to average the steps (train.optimizer)" in plain
    assert "Adam (train.optimizer: adam; it is gd)" in plain
