"""The flat-buffer engine: views by course names, whole-buffer optimizer steps that agree with
array-by-array ones, fallbacks when the views are detached, and float32 kept end to end."""

import copy
import pickle

import numpy as np
import pytest

from dlrun.engine.flat import FlatArrays
from dlrun.engine.init import Random
from dlrun.engine.network import Network
from dlrun.engine.optim import OPTIMIZERS
from dlrun.engine.registry import build

OPTIMIZER_SPECS = ["gd", "momentum", "rmsprop", "adam"]


def network(sizes=(3, 4, 2, 1), output="sigmoid", dtype=np.float64, **options):
    return Network.build(list(sizes), "tanh", Random(0.5), output, np.random.default_rng(0),
                         np.random.default_rng(1), dtype=dtype, **options)


def batch(n_in=3, m=10, seed=2):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, n_in)), np.array([0, 1] * (m // 2))


def test_params_and_grads_are_named_views_of_one_buffer():
    net = network()
    assert isinstance(net.params, FlatArrays) and isinstance(net.grads, FlatArrays)
    assert list(net.params) == list(net.grads) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert net.params["W1"].shape == (4, 3) and net.params["b1"].shape == (4, 1)
    for name, array in net.params.items():
        assert np.shares_memory(array, net.params.flat)
        assert np.shares_memory(net.grads[name], net.grads.flat)
    assert net.params.flat.size == 4 * 3 + 4 + 2 * 4 + 2 + 1 * 2 + 1
    net.params["W2"] += 1.0  # in place on the view: the layer sees it
    assert net.layers[2].W is net.params["W2"]


def test_gradients_match_an_independent_backprop():
    net = network(sizes=(3, 4, 1))
    X, y = batch()
    net.train_step_gradients(X, y)
    W1, b1, W2, b2 = (net.params[k] for k in ("W1", "b1", "W2", "b2"))
    A1 = np.tanh(X @ W1.T + b1.T)
    P = 1 / (1 + np.exp(-(A1 @ W2.T + b2.T)))
    dZ2 = (P - y[:, None]) / len(X)
    dZ1 = (dZ2 @ W2) * (1 - A1 ** 2)
    expected = {"W2": dZ2.T @ A1, "b2": dZ2.sum(0)[:, None], "W1": dZ1.T @ X,
                "b1": dZ1.sum(0)[:, None]}
    for name, grad in expected.items():
        assert np.allclose(net.grads[name], grad, rtol=1e-12, atol=1e-15)


def test_grads_keep_their_arrays_across_steps():
    net = network()
    X, y = batch()
    before = {name: grad for name, grad in net.grads.items()}
    net.train_step_gradients(X, y)
    net.train_step_gradients(X[:4], y[:4])
    assert all(net.grads[name] is grad for name, grad in before.items())
    assert net.grads.whole() is net.grads.flat


def test_first_layer_skips_the_unused_input_gradient():
    net = network()
    X, y = batch()
    net.forward(X, training=True)
    assert net.layers[0].backward(np.ones((10, 4))) is None


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-15), (np.float32, 1e-6)])
def test_grad_norms_are_the_linalg_norms(dtype, rtol):
    net = network(dtype=dtype)
    X, y = batch()
    net.train_step_gradients(X.astype(dtype), y)
    expected = [float(np.linalg.norm(net.grads[f"W{l}"].astype(np.float64))) for l in (1, 2, 3)]
    assert net.grad_norms() == pytest.approx(expected, rel=rtol)


def steps_on(params, grads_per_step, spec, lr=0.05):
    optimizer = build(OPTIMIZERS, "optimizer", spec)
    for grads in grads_per_step:
        optimizer.step(params, grads, lr)
    return optimizer


def random_grads(net, steps, seed=3):
    rng = np.random.default_rng(seed)
    return [{name: rng.normal(size=array.shape) for name, array in net.params.items()}
            for _ in range(steps)]


@pytest.mark.parametrize("spec", OPTIMIZER_SPECS)
def test_whole_buffer_steps_agree_with_array_by_array_steps(spec):
    net = network()
    plain = {name: array.copy() for name, array in net.params.items()}
    per_step = random_grads(net, 6)
    optimizer = build(OPTIMIZERS, "optimizer", spec)
    for grads in per_step:
        for name, grad in grads.items():
            net.grads[name][...] = grad
        optimizer.step(net.params, net.grads, 0.05)
    reference = steps_on(plain, per_step, spec)
    for name in plain:
        assert np.allclose(net.params[name], plain[name], rtol=1e-12, atol=1e-15)
        for key, slot in reference.state[name].items():
            assert np.allclose(optimizer.state[name][key], slot, rtol=1e-12, atol=1e-15)
    assert optimizer.t == reference.t == 6


def test_rebinding_an_entry_detaches_it_and_steps_still_reach_every_array():
    net = network()
    net.params["b1"] = np.full((4, 1), 2.0)
    grads = {name: np.ones(array.shape) for name, array in net.params.items()}
    before = {name: array.copy() for name, array in net.params.items()}
    steps_on(net.params, [grads], "gd", lr=0.5)
    for name in net.params:
        assert np.allclose(net.params[name], before[name] - 0.5)


def test_optimizer_state_carries_over_between_plain_and_flat_steps():
    net = network()
    per_step = random_grads(net, 6)
    reference = {name: array.copy() for name, array in net.params.items()}
    steps_on(reference, per_step, "adam")
    optimizer = build(OPTIMIZERS, "optimizer", "adam")
    plain = {name: array.copy() for name, array in net.params.items()}
    for grads in per_step[:3]:
        optimizer.step(plain, grads, 0.05)
    net.load_state(plain)
    for grads in per_step[3:]:
        for name, grad in grads.items():
            net.grads[name][...] = grad
        optimizer.step(net.params, net.grads, 0.05)
    for name in reference:
        assert np.allclose(net.params[name], reference[name], rtol=1e-12, atol=1e-15)


def test_replacing_the_optimizer_state_takes_effect():
    net = network()
    (grads,) = random_grads(net, 1)
    for name, grad in grads.items():
        net.grads[name][...] = grad
    optimizer = build(OPTIMIZERS, "optimizer", "momentum")
    optimizer.step(net.params, net.grads, 0.1)
    optimizer.state = {name: {"V": np.zeros(array.shape)} for name, array in net.params.items()}
    optimizer.state["W1"] = {"V": np.ones((4, 3))}
    before = net.params["W1"].copy()
    optimizer.step(net.params, net.grads, 0.1)
    expected_V = 0.9 * np.ones((4, 3)) + 0.1 * grads["W1"]
    assert np.allclose(optimizer.state["W1"]["V"], expected_V)
    assert np.allclose(net.params["W1"], before - 0.1 * expected_V)


@pytest.mark.parametrize("clone", [pickle.loads, copy.deepcopy], ids=["pickle", "deepcopy"])
def test_a_copied_network_trains_like_the_original(clone):
    net = network()
    X, y = batch()
    if clone is pickle.loads:
        twin = pickle.loads(pickle.dumps(net))
    else:
        twin = copy.deepcopy(net)
    for model in (net, twin):
        optimizer = build(OPTIMIZERS, "optimizer", "adam")
        for _ in range(5):
            model.train_step_gradients(X, y)
            optimizer.step(model.params, model.grads, 0.05)
    assert twin.layers[0].params["W1"] is twin.params["W1"]  # the layers still share them
    for name in net.params:
        assert np.allclose(twin.params[name], net.params[name], rtol=1e-12)


@pytest.mark.parametrize("output, labels", [
    ("sigmoid", np.array([0, 1] * 5)),
    ("softmax", np.array([0, 1, 2, 1, 0] * 2)),
    ("linear", np.linspace(-1, 1, 10)),
])
def test_float32_stays_float32_from_inputs_to_optimizer_state(output, labels):
    n_out = 3 if output == "softmax" else 1
    net = network(sizes=(3, 4, n_out), output=output, dtype=np.float32, l2=0.1)
    X, _ = batch()
    X = X.astype(np.float32)
    Z = net.forward(X, training=True)
    _, dZ = net.loss.value_and_grad(Z, labels)
    assert Z.dtype == dZ.dtype == np.float32
    net.backward(dZ)
    optimizer = build(OPTIMIZERS, "optimizer", "adam")
    optimizer.step(net.params, net.grads, 0.01)
    arrays = [*net.params.values(), *net.grads.values(),
              *(slot for slots in optimizer.state.values() for slot in slots.values())]
    assert all(array.dtype == np.float32 for array in arrays)
    assert net.logits(X).dtype == np.float32


def test_training_from_a_memory_mapped_array_gives_the_same_numbers(tmp_path, make_config):
    from dlrun.training import loop
    from dlrun.training.experiment import prepare

    config = make_config(train={"epochs": 3, "batch_size": 16})
    in_memory, mapped = prepare(config), prepare(config)
    X, y = mapped.dataset.splits["train"]
    np.save(tmp_path / "X.npy", X)
    mapped.dataset.splits["train"] = (np.load(tmp_path / "X.npy", mmap_mode="r"), y)
    rows = {"memory": [], "mapped": []}
    loop.fit(in_memory, rows["memory"].append)
    loop.fit(mapped, rows["mapped"].append)
    without_time = [[{k: v for k, v in row.items() if k != "seconds"} for row in rows[key]]
                    for key in ("memory", "mapped")]
    assert without_time[0] == without_time[1]
    for name, array in in_memory.network.params.items():
        assert np.array_equal(array, mapped.network.params[name])
        assert mapped.network.params[name].dtype == np.float32


def test_a_layer_that_stores_a_new_gradient_array_is_still_heard(monkeypatch):
    from dlrun.engine.layers import Dense

    original = Dense.backward

    def backward(self, dZ):
        dX = original(self, dZ)
        self.grads[self.b_name] = np.full(self.params[self.b_name].shape, 7.0)  # rebinds
        return dX

    monkeypatch.setattr(Dense, "backward", backward)
    net = network()
    net.train_step_gradients(*batch())
    assert all(np.all(net.grads[f"b{l}"] == 7.0) for l in (1, 2, 3))
    assert net.grads.whole() is net.grads.flat and net.layers[0].grads["b1"] is net.grads["b1"]
