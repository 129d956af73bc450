"""The compiled kernels (numba, the `fast` extra) give the NumPy engine's numbers bit for bit,
are used only where they repay loading them, and are never needed: without numba, or without a
writable cache, training runs as before."""

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dlrun import engine
from dlrun.engine import fused
from dlrun.engine.flat import FlatArrays
from dlrun.engine.optim import OPTIMIZERS
from dlrun.engine.registry import build
from dlrun.training import loop
from dlrun.training.experiment import prepare

OPTIONS = {  # away from the defaults, so that a swapped β or ε would show
    "gd": {}, "momentum": {"beta": 0.8}, "rmsprop": {"beta": 0.95, "epsilon": 1e-6},
    "adam": {"beta1": 0.85, "beta2": 0.99, "epsilon": 1e-7},
}


def compiled():
    pytest.importorskip("numba")
    from dlrun.engine import compiled as kernels

    return kernels


def gradients(size, steps, dtype, seed=1):
    """Gradients over twelve orders of magnitude, with exact zeros, one per step."""
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        g = rng.standard_normal(size) * 10.0 ** rng.uniform(-8, 4, size)
        g[rng.random(size) < 0.05] = 0.0
        yield g.astype(dtype)


def stepped(name, kernels, dtype, grads, lr=0.01):
    """Parameters and optimizer slots after one step per gradient, with or without kernels."""
    rng = np.random.default_rng(0)
    params = FlatArrays({"W1": rng.standard_normal((40, 30)).astype(dtype),
                         "b1": rng.standard_normal((40, 1)).astype(dtype)}, dtype)
    grad_arrays = params.zeros_like()
    optimizer = build(OPTIMIZERS, "optimizer", {"name": name, **OPTIONS[name]})
    optimizer.use_kernels(kernels)
    for g in grads:
        grad_arrays.flat[:] = g
        optimizer.step(params, grad_arrays, lr)
    slots = {key: flat.copy() for key, flat in (optimizer._flat_slots or {}).items()}
    return params.flat.copy(), slots


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(OPTIONS))
def test_each_compiled_step_equals_the_numpy_rule_bit_for_bit(name, dtype):
    kernels = compiled()
    grads = list(gradients(40 * 31, 30, dtype))
    reference, reference_slots = stepped(name, None, dtype, grads)
    params, slots = stepped(name, kernels, dtype, grads)
    assert params.dtype == dtype
    np.testing.assert_array_equal(params, reference)
    assert slots.keys() == reference_slots.keys() == set({"gd": "", "momentum": "V",
                                                           "rmsprop": "S", "adam": "VS"}[name])
    for key in slots:
        np.testing.assert_array_equal(slots[key], reference_slots[key])


@pytest.mark.parametrize("name", list(OPTIONS))
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_non_finite_gradients_spread_as_in_numpy(name):
    kernels = compiled()
    grads = list(gradients(40 * 31, 3, np.float32))
    grads[1][:3] = [np.nan, np.inf, -np.inf]
    reference, _ = stepped(name, None, np.float32, grads)
    params, _ = stepped(name, kernels, np.float32, grads)
    assert not np.isfinite(reference[:3]).any()  # something to agree on
    np.testing.assert_array_equal(params, reference)  # NaN where NumPy has NaN


def test_a_numpy_float64_learning_rate_is_left_to_numpy():
    """NumPy steps float32 parameters in float64 for a np.float64 scalar: the kernel would not."""
    kernels = compiled()
    grads = list(gradients(40 * 31, 5, np.float32))
    reference, _ = stepped("adam", None, np.float32, grads, lr=np.float64(0.01))
    params, _ = stepped("adam", kernels, np.float32, grads, lr=np.float64(0.01))
    np.testing.assert_array_equal(params, reference)


def trained(config, kernels_setting, monkeypatch):
    monkeypatch.setenv(fused.ENVIRONMENT, kernels_setting)
    experiment = prepare(config)
    rows = []
    outcome = loop.fit(experiment, rows.append)
    return experiment, outcome, [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_on_the_kernels_gives_the_reference_numbers(activation, dtype, make_config,
                                                             monkeypatch):
    compiled()
    config = make_config(dtype=dtype, model={"hidden_layers": [16, 8], "activation": activation,
                                             "keep_prob": 0.9},
                         regularization={"l2": 0.05}, train={"epochs": 4, "optimizer": "adam"})
    reference, reference_outcome, reference_rows = trained(config, "0", monkeypatch)
    experiment, outcome, rows = trained(config, "1", monkeypatch)
    assert reference.network.kernels is None and experiment.network.kernels is not None
    assert rows == reference_rows
    assert outcome.steps == reference_outcome.steps > 0
    for name, array in reference.network.state().items():
        np.testing.assert_array_equal(experiment.network.state()[name], array)


def test_the_kernels_are_taken_only_where_they_repay_loading(monkeypatch):
    monkeypatch.delenv(fused.ENVIRONMENT, raising=False)
    monkeypatch.setattr(fused, "installed", lambda: True)
    monkeypatch.delitem(sys.modules, "dlrun.engine.compiled", raising=False)
    big = fused.MIN_PARAMS
    repaying = int(fused.LOAD_SECONDS / (big * fused.SAVED_SECONDS_PER_PARAM)) + 1
    assert not fused.wanted(big - 1, steps=10**9)  # too small a network, however long
    assert fused.wanted(big, steps=repaying)
    assert not fused.wanted(big, steps=repaying // 2)  # too few steps to win the load back
    assert fused.wanted(big)  # steps unknown: the size decides
    monkeypatch.setitem(sys.modules, "dlrun.engine.compiled", object())
    assert fused.wanted(big, steps=1)  # loaded already: nothing left to repay
    monkeypatch.setenv(fused.ENVIRONMENT, "0")
    assert not fused.wanted(10**9)
    monkeypatch.setenv(fused.ENVIRONMENT, "1")
    assert fused.wanted(1, steps=1)
    monkeypatch.setattr(fused, "installed", lambda: False)
    assert not fused.wanted(10**9)


def test_fit_puts_only_a_network_above_the_threshold_on_the_kernels(make_config, monkeypatch):
    compiled()
    monkeypatch.delenv(fused.ENVIRONMENT, raising=False)
    small = prepare(make_config(model={"hidden_layers": [8, 4]}, train={"epochs": 10**6}))
    large = prepare(make_config(model={"hidden_layers": [300, 200]}, train={"epochs": 10**6}))
    assert small.network.params.flat.size < fused.MIN_PARAMS <= large.network.params.flat.size
    for experiment in (small, large):
        loop.use_kernels(experiment, experiment.config.train.epochs)
    assert small.network.kernels is small.optimizer.kernels is None
    assert large.network.kernels is large.optimizer.kernels is not None


def test_without_numba_training_falls_back_to_numpy(make_config, monkeypatch):
    config = make_config(model={"hidden_layers": [16, 8]}, train={"epochs": 3})
    _, _, reference_rows = trained(config, "0", monkeypatch)
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` now raises ImportError
    monkeypatch.delitem(sys.modules, "dlrun.engine.compiled", raising=False)
    monkeypatch.delattr(engine, "compiled", raising=False)  # as if never imported
    assert not fused.installed()
    monkeypatch.setattr(fused, "installed", lambda: True)  # even if numba looked installed
    experiment, _, rows = trained(config, "1", monkeypatch)
    assert fused.kernels(10**9) is None
    assert experiment.network.kernels is experiment.optimizer.kernels is None
    assert rows == reference_rows


def test_a_copy_of_a_network_on_kernels_trains_on_numpy_alike(make_config, monkeypatch):
    kernels = compiled()
    experiment = prepare(make_config(model={"hidden_layers": [16, 8]}))
    experiment.network.use_kernels(kernels)
    experiment.optimizer.use_kernels(kernels)
    network, optimizer = pickle.loads(pickle.dumps((experiment.network, experiment.optimizer)))
    assert network.kernels is optimizer.kernels is None
    assert all(getattr(layer, "activation", None) is None for layer in network.layers)
    X, y = experiment.dataset.splits["train"]
    for model, stepper in ((experiment.network, experiment.optimizer), (network, optimizer)):
        for _ in range(3):
            model.train_step_gradients(X, y)
            stepper.step(model.params, model.grads, 0.01)
    for name, array in experiment.network.params.items():
        np.testing.assert_array_equal(network.params[name], array)


def imported_modules(args, cwd):
    """Top-level modules a fresh `python -X importtime ARGS` imported (and its exit status)."""
    done = subprocess.run([sys.executable, "-X", "importtime", *args], check=False,
                          capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, fused.ENVIRONMENT: ""})
    names = {line.rsplit("|", 1)[-1].strip().split(".")[0]
             for line in done.stderr.splitlines() if line.startswith("import time:")}
    return done.returncode, names


def test_the_command_line_never_imports_numba_for_help_or_a_small_network(tmp_path):
    compiled()  # numba is installed: the point is that it is not imported
    status, names = imported_modules(["-m", "dlrun", "--help"], tmp_path)
    assert status == 0 and "typer" in names and "numba" not in names
    config = tmp_path / "small.yaml"
    config.write_text("name: small\ndata: {generator: {name: moons, n_samples: 100}}\n"
                      "model: {hidden_layers: [8]}\ntrain: {epochs: 2}\n")
    status, names = imported_modules(["-m", "dlrun", "train", str(config), "--runs-dir",
                                      str(tmp_path / "runs")], tmp_path)
    assert status == 0 and "numpy" in names and "numba" not in names
    assert "numpy.ma" not in names  # np.unique and np.median import it: 13 ms of a short command


@pytest.mark.slow
def test_the_kernels_compile_in_memory_when_no_cache_directory_is_writable(tmp_path):
    compiled()
    script = textwrap.dedent("""
        import numpy as np
        from dlrun.engine import compiled
        from dlrun.engine.flat import FlatArrays
        from dlrun.engine.optim import Adam
        results = []
        for kernels in (None, compiled):
            params = FlatArrays({"W": np.linspace(-1, 1, 64).reshape(8, 8)}, np.float64)
            grads = params.zeros_like()
            grads.flat[:] = np.cos(np.arange(64))
            optimizer = Adam()
            optimizer.use_kernels(kernels)
            for _ in range(3):
                optimizer.step(params, grads, 0.1)
            results.append(params.flat.copy())
        print(compiled.CACHED, np.array_equal(*results))
    """)
    # No locator numba knows can place a cache outside IPython: as with no writable directory.
    env = {**os.environ, "NUMBA_CACHE_LOCATOR_CLASSES": "IPythonCacheLocator"}
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True,
                          text=True, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
