import numpy as np
import pytest

from dlrun.config import DiagnoseConfig
from dlrun.diagnosis.hidden_units import distinct_columns, measure
from dlrun.engine.init import INITIALIZERS
from dlrun.engine.network import Network


def network(activation, init="he", sizes=(2, 6, 4, 1), **options):
    rng = np.random.default_rng(0)
    return Network.build(list(sizes), activation, INITIALIZERS[init](**options), "sigmoid", rng,
                         np.random.default_rng(1), dtype=np.float64)


X = np.random.default_rng(2).standard_normal((300, 2))


def test_distinct_columns_counts_functions_up_to_rounding():
    a = np.arange(12.0).reshape(4, 3)
    assert distinct_columns(a) == 3
    assert distinct_columns(np.repeat(a[:, :1], 5, axis=1) + 1e-9) == 1
    assert distinct_columns(np.column_stack([a, a[:, 1], a[:, 1]])) == 3


def test_zeros_initialization_leaves_every_unit_of_a_layer_alike():
    report = measure(network("sigmoid", "zeros"), X, DiagnoseConfig())
    assert [layer["distinct"] for layer in report["layers"]] == [1, 1]
    assert report["checks"]["symmetry"]["status"] == "problem"
    assert report["checks"]["symmetry"]["layers"] == [1, 2]
    healthy = measure(network("sigmoid", "xavier"), X, DiagnoseConfig())
    assert healthy["checks"]["symmetry"]["status"] == "ok"
    assert [layer["distinct"] for layer in healthy["layers"]] == [6, 4]


def test_relu_units_that_never_fire_are_counted_dead():
    net = network("relu")
    b1 = net.params["b1"]
    b1[:4] = -100.0  # four of six units can never become positive on this data
    report = measure(net, X, DiagnoseConfig())
    first = report["layers"][0]
    assert first["dead"] == 4 and first["units"] == 6
    assert report["checks"]["dead_relu"]["status"] == "problem"
    assert report["checks"]["dead_relu"]["share"] == pytest.approx(4 / 6)
    # An independent count: units whose pre-activation is never positive over X.
    Z1 = X @ net.params["W1"].T + b1.T
    assert first["dead"] == int(np.sum((Z1 <= 0).all(axis=0)))


def test_large_weights_saturate_tanh_units_and_small_ones_do_not():
    saturated = measure(network("tanh", "random", scale=100.0), X, DiagnoseConfig())
    assert saturated["layers"][0]["saturated_share"] > 0.9
    assert saturated["checks"]["saturation"]["status"] == "problem"
    calm = measure(network("tanh", "random", scale=0.01), X, DiagnoseConfig())
    assert calm["layers"][0]["saturated_share"] == 0.0
    assert calm["checks"]["saturation"]["status"] == "ok"


def test_saturated_share_agrees_with_the_tanh_derivative():
    net = network("tanh", "random", scale=3.0)
    report = measure(net, X, DiagnoseConfig())
    A1 = np.tanh(X @ net.params["W1"].T + net.params["b1"].T)
    assert report["layers"][0]["saturated_share"] == pytest.approx(np.mean(1 - A1 ** 2 < 0.01))


def test_checks_that_do_not_apply_are_skipped():
    report = measure(network("leaky_relu"), X, DiagnoseConfig())
    assert report["checks"]["dead_relu"]["status"] == "skipped"
    assert report["checks"]["saturation"]["status"] == "skipped"
