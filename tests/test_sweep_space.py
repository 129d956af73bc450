"""Search-space distributions: the right scales, strict validation, grids and narrowing."""

import math

import numpy as np
import pytest
from typer.testing import CliRunner

from dlrun.cli import app
from dlrun.errors import ConfigError
from dlrun.sweep.space import (
    Choice,
    LogUniform,
    OneMinusLogUniform,
    RandInt,
    SearchSpace,
    Uniform,
)
from dlrun.yamlio import parse

runner = CliRunner()


def space_of(text: str, source="space.yaml") -> SearchSpace:
    data, lines = parse(text, source)
    return SearchSpace.from_data(data, source, lines)


def test_loguniform_gives_every_decade_the_same_share():
    rng = np.random.default_rng(0)
    values = np.array([LogUniform(1e-4, 1.0).sample(rng) for _ in range(8000)])
    assert values.min() >= 1e-4 and values.max() <= 1.0
    shares = np.histogram(np.log10(values), bins=[-4, -3, -2, -1, 0])[0] / len(values)
    np.testing.assert_allclose(shares, 0.25, atol=0.025)


def test_one_minus_loguniform_spends_half_its_draws_above_0_99():
    rng = np.random.default_rng(1)
    betas = np.array([OneMinusLogUniform(0.9, 0.999).sample(rng) for _ in range(8000)])
    assert betas.min() >= 0.9 and betas.max() <= 0.999
    assert abs(np.mean(betas > 0.99) - 0.5) < 0.025
    # a uniform draw would put only a tenth of them there
    assert np.mean(betas > 0.99) > 4 * 0.099


def test_randint_includes_both_ends_evenly():
    rng = np.random.default_rng(2)
    values = [RandInt(3, 6).sample(rng) for _ in range(4000)]
    assert all(isinstance(v, int) for v in values)
    counts = np.bincount(values, minlength=7)[3:]
    assert len(counts) == 4 and counts.min() > 900


def test_uniform_and_choice_of_lists():
    rng = np.random.default_rng(3)
    values = np.array([Uniform(2.0, 4.0).sample(rng) for _ in range(4000)])
    assert 2 <= values.min() and values.max() <= 4 and abs(values.mean() - 3) < 0.05
    options = [[10, 5], [20, 10, 5]]
    choice = Choice(options)
    drawn = [choice.sample(rng) for _ in range(200)]
    assert {tuple(d) for d in drawn} == {(10, 5), (20, 10, 5)}
    drawn[0].append(99)  # a trial's value is its own copy
    assert options == [[10, 5], [20, 10, 5]]


def test_distributions_are_found_in_nested_keys_and_list_items():
    space = space_of("""
model:
  hidden_layers: [{randint: [4, 16]}, 4]
train:
  optimizer: {name: adam, beta2: {one_minus_loguniform: [0.99, 0.9999]}}
  learning_rate: {loguniform: [1e-4, 1e-1]}
""")
    assert [p.key for p in space.parameters] == [
        "model.hidden_layers.0", "train.optimizer.beta2", "train.learning_rate"]
    data = space.instantiate({"model.hidden_layers.0": 7, "train.optimizer.beta2": 0.995,
                              "train.learning_rate": 0.01})
    assert data["model"]["hidden_layers"] == [7, 4]
    assert data["train"]["optimizer"] == {"name": "adam", "beta2": 0.995}
    assert space.template["train"]["learning_rate"] == {"loguniform": [1e-4, 1e-1]}


@pytest.mark.parametrize("value, message", [
    ("{loguniform: [0, 1]}", "loguniform needs bounds > 0"),
    ("{loguniform: [1e-2, 1e-4]}", "loguniform needs low < high"),
    ("{loguniform: 0.1}", "loguniform takes [low, high]"),
    ("{uniform: [1, 1]}", "uniform needs low < high"),
    ("{uniform: [0, .nan]}", "two finite numbers"),
    ("{randint: [1.5, 3]}", "randint takes two whole numbers"),
    ("{one_minus_loguniform: [0.9, 1]}", "0 < low < high < 1"),
    ("{choice: []}", "choice takes a non-empty list"),
    ("{choice: [0.1, 0.1]}", "choice options must differ"),
    ("{choice: [0.1, {uniform: [0, 1]}]}", "choice options must be fixed values"),
])
def test_bad_distribution_names_file_line_and_key(value, message):
    with pytest.raises(ConfigError) as error:
        space_of(f"name: x\ntrain:\n  learning_rate: {value}\n")
    assert str(error.value).startswith("space.yaml:3: train.learning_rate: ")
    assert message in str(error.value)


def test_grid_uses_cell_centres_on_each_scale():
    space = space_of("a: {uniform: [0, 1]}\nb: {loguniform: [1e-4, 1]}\n")
    points = space.grid(9)
    assert len(points) == 9
    assert sorted({p["a"] for p in points}) == pytest.approx([1 / 6, 3 / 6, 5 / 6])
    assert sorted({p["b"] for p in points}) == pytest.approx([10 ** (-4 + 4 * c)
                                                             for c in (1 / 6, 3 / 6, 5 / 6)])


def test_grid_takes_every_choice_and_stays_within_the_budget():
    space = space_of("a: {choice: [x, y]}\nb: {uniform: [0, 1]}\nc: {randint: [1, 2]}\n")
    points = space.grid(13)
    # every choice (2) × both integers (2) × 3 points of b = 12 ≤ 13 < 2 × 2 × 4
    assert len(points) == 12
    assert {p["a"] for p in points} == {"x", "y"} and {p["c"] for p in points} == {1, 2}
    assert len(space.grid(3)) == 2  # one point of b and of c: the middle of their ranges
    with pytest.raises(ConfigError, match="--trials must be at least 2"):
        space.grid(1)


def test_narrow_loguniform_in_log_space_with_a_margin():
    narrowed = LogUniform(1e-4, 1.0).narrow([1e-3, 1e-2])
    # the best values sit at 1/4 and 1/2 of the log range; a tenth of it is added each side
    assert narrowed.low == pytest.approx(10 ** (-4 + 4 * 0.15))
    assert narrowed.high == pytest.approx(10 ** (-4 + 4 * 0.6))


def test_narrow_one_minus_works_on_log_of_one_minus_beta():
    narrowed = OneMinusLogUniform(0.9, 0.9999).narrow([0.99])
    # 1 - 0.99 = 1e-2 sits a third of the way from 1e-1 to 1e-4
    assert 1 - narrowed.low == pytest.approx(10 ** (-1 - 3 * (1 / 3 - 0.1)))
    assert 1 - narrowed.high == pytest.approx(10 ** (-1 - 3 * (1 / 3 + 0.1)))


def test_narrow_clips_to_the_old_range_and_keeps_integer_and_choice_types():
    narrowed = Uniform(0.0, 1.0).narrow([0.95, 0.99])
    assert narrowed.low == pytest.approx(0.85) and narrowed.high == 1.0
    ints = RandInt(1, 100).narrow([40, 45])
    assert isinstance(ints.low, int) and ints.low <= 40 and ints.high >= 45
    assert ints.high - ints.low < 40
    assert RandInt(1, 2).narrow([2]).low < RandInt(1, 2).narrow([2]).high
    assert Choice([[4], [8], [16]]).narrow([[16], [4]]).options == [[4], [16]]


def test_extremes_put_each_parameter_at_each_end():
    space = space_of("a: {uniform: [0, 1]}\nb: {choice: [p, q, r]}\n")
    seen = [(p.key, value, values) for p, value, values in space.extremes()]
    assert [(key, value) for key, value, _ in seen] == [
        ("a", 0.0), ("a", 1.0), ("b", "p"), ("b", "q"), ("b", "r")]
    assert seen[0][2] == {"a": 0.0, "b": "p"}
    assert math.isclose(seen[2][2]["a"], 0.5)


def test_train_refuses_a_config_with_distributions_and_points_to_sweep(tmp_path):
    config = tmp_path / "space.yaml"
    config.write_text("name: x\ntrain:\n  epochs: 2\n  learning_rate: {loguniform: [1e-4, 1]}\n")
    result = runner.invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert f"{config}:4: train.learning_rate: loguniform is a search-space distribution" in result.output
    assert "dlrun sweep" in result.output
    assert not (tmp_path / "runs").exists()


def test_a_grid_says_when_it_cannot_use_every_trial():
    from dlrun.sweep.space import SearchSpace

    space = SearchSpace.from_data({"model": {"hidden_layers": {"choice": [[4], [8], [2, 2]]}},
                                   "train": {"learning_rate": {"loguniform": [1e-4, 1e-1]},
                                             "batch_size": {"randint": [8, 64]}}}, "s.yaml")
    assert len(space.grid(27)) == 27 and space.grid_note(27) is None  # 3 × 3 × 3
    assert len(space.grid(20)) == 12
    assert space.grid_note(20) == "grid: 12 trials, 2 points on each range; 3 on each would need --trials 27"
    assert space.grid_note(5) == "grid: 3 trials, 1 point on each range; 2 on each would need --trials 12"
