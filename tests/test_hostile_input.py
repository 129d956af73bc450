"""Property-based tests: mutated configs, random overrides and random CSV files never give a
traceback. Each is either a valid run or one line naming what is wrong, with exit status 2."""

import json
import math
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import event, example, given
from hypothesis import strategies as st
from typer.testing import CliRunner

from dlrun import config
from dlrun.cli import app
from dlrun.data.synthetic import GENERATORS
from dlrun.engine.init import INITIALIZERS
from dlrun.engine.layers import ACTIVATIONS
from dlrun.engine.optim import OPTIMIZERS
from dlrun.engine.schedules import SCHEDULES
from dlrun.rundir import layout, reader
from dlrun.training import session

runner = CliRunner()
BASE = {"name": "h", "seed": 0,
        "data": {"generator": {"name": "moons", "n_samples": 40, "noise": 0.2}},
        "model": {"hidden_layers": [3]},
        "train": {"epochs": 2, "batch_size": 16, "learning_rate": 0.01, "checkpoint_every": 1}}
# Every key of the spec and the options of its registry choices, plus a few that do not exist.
KEYS = [
    "name", "seed", "dtype", "data.generator", "data.generator.name", "data.generator.n_samples",
    "data.generator.noise", "data.generator.classes", "data.generator.features",
    "data.generator.stretch", "data.path", "data.train", "data.dev", "data.target",
    "data.features", "data.split", "data.split.train", "data.split.dev", "data.split.test",
    "data.train_dev", "data.task", "data.normalize", "data.augment.noise", "data.augment.flip",
    "data.augment.shift", "data.augment.image_shape", "model.hidden_layers", "model.activation",
    "model.output", "model.init", "model.init.name", "model.init.scale", "model.batch_norm",
    "model.keep_prob", "model.init_from", "regularization.l2", "regularization.l1",
    "train.optimizer", "train.optimizer.name", "train.optimizer.beta1", "train.optimizer.beta",
    "train.optimizer.epsilon", "train.learning_rate", "train.batch_size", "train.shuffle",
    "train.epochs", "train.decay", "train.decay.name", "train.decay.rate",
    "train.decay.interval", "train.early_stopping", "train.early_stopping.patience",
    "train.early_stopping.metric", "train.record_steps", "train.checkpoint_every",
    "diagnose.human_error", "diagnose.min_gap", "diagnose.min_share", "train.lr", "modle",
    "data.generator.bogus", "",
]
NAMES = ["adam", "gd", "momentum", "rmsprop", "relu", "tanh", "sigmoid", "leaky_relu", "softmax",
         "linear", "auto", "float32", "float64", "moons", "circles", "spirals", "blobs", "xor",
         "flower", "full", "he", "zeros", "random", "xavier", "exponential", "staircase",
         "inverse_sqrt_step", "loss", "f1", "regression", "multiclass", "../../etc", "a/b", "",
         "!!python/object/apply:os.system ['true']"]
# Numbers stay small: a valid `epochs: 1e16` or `hidden_layers: [1e9]` is a run that takes
# forever or a network that cannot fit in memory, not a mistake dlrun could point out.
numbers = st.one_of(st.integers(-3, 60), st.floats(-100, 100),
                    st.sampled_from([math.nan, math.inf, -math.inf, 5e-324, 1e-12]))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.sampled_from(NAMES),
                    st.text(st.characters(blacklist_categories=["Nd"]), max_size=8))
values = st.one_of(
    scalars, st.lists(st.integers(-2, 12), max_size=4), st.lists(scalars, max_size=3),
    st.fixed_dictionaries({"name": st.sampled_from(NAMES)}),
    st.dictionaries(st.sampled_from(["name", "rate", "beta1", "scale", "patience", "x"]), scalars,
                    max_size=3))


# Values a user could well mean, so that a fair share of the examples really train (the hostile
# values above are nearly always refused, which alone would leave the "valid run" side untested).
PLAUSIBLE = {
    "seed": st.integers(0, 2**32 - 1),
    "dtype": st.sampled_from(["float32", "float64"]),
    "data.generator.name": st.sampled_from(list(GENERATORS)),
    "data.generator.n_samples": st.integers(10, 80),
    "data.generator.noise": st.floats(0, 1),
    "data.split": st.sampled_from([{"train": 0.5, "dev": 0.25, "test": 0.25},
                                   {"train": 0.8, "dev": 0.2, "test": 0.0}]),
    "data.train_dev": st.floats(0, 0.3),
    "data.normalize": st.booleans(),
    "data.augment.noise": st.floats(0, 1),
    "model.hidden_layers": st.lists(st.integers(1, 8), max_size=3),
    "model.activation": st.sampled_from(list(ACTIVATIONS)),
    "model.init": st.sampled_from(list(INITIALIZERS)),
    "model.batch_norm": st.booleans(),
    "model.keep_prob": st.floats(0.05, 1),
    "regularization.l2": st.floats(0, 10),
    "regularization.l1": st.floats(0, 10),
    "train.optimizer": st.sampled_from(list(OPTIMIZERS)),
    "train.learning_rate": st.floats(1e-6, 50),
    "train.batch_size": st.one_of(st.integers(1, 64), st.just("full")),
    "train.epochs": st.integers(1, 3),
    "train.decay": st.sampled_from(list(SCHEDULES)),
    "train.early_stopping": st.booleans(),
    "train.record_steps": st.booleans(),
    "train.checkpoint_every": st.integers(0, 3),
}
mutation = st.one_of(st.tuples(st.sampled_from(KEYS), values),
                     st.sampled_from(sorted(PLAUSIBLE)).flatmap(
                         lambda key: st.tuples(st.just(key), PLAUSIBLE[key])))


def set_path(data: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {} if not isinstance(node.get(key), str) else {"name": node[key]}
        node = node[key]
    node[keys[-1]] = value


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    """Figures take most of a tiny run's time; drawing is tested in test_plots, and here every
    valid config still trains, is diagnosed and is saved."""
    from dlrun import plots
    monkeypatch.setattr(plots, "draw", lambda *args, **kwargs: [])


def check_train(config_path: Path, runs_dir: Path, *overrides: str, drawn: bool = True):
    """`dlrun train`: a finished run directory, or one error line and no directory at all."""
    result = runner.invoke(app, ["train", str(config_path), "-q", "--runs-dir", str(runs_dir),
                                 "--", *overrides])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"traceback: {result.exception!r}"
    made = sorted(runs_dir.iterdir()) if runs_dir.exists() else []
    if drawn:  # --hypothesis-show-statistics: how many examples trained
        event(f"exit status {result.exit_code}")
    if result.exit_code == 2:
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.output
        assert made == [], "a refused run left a directory behind"
    else:
        assert result.exit_code in (0, 1), result.output  # 1: a run that diverged
        (run_dir,) = made
        assert reader.read_summary(run_dir)["status"] in ("completed", "diverged")
        layout.load_params(run_dir / layout.PARAMS)
    return result


@given(mutations=st.lists(mutation, min_size=1, max_size=3))
def test_a_mutated_config_trains_or_is_refused_in_one_line(tmp_path, mutations):
    data = json.loads(json.dumps(BASE))
    for key, value in mutations:
        if not key:
            data = value  # the whole document replaced by a scalar, a list or a mapping
            break
        set_path(data, key, value)
    with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
        path = Path(scratch) / "config.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        check_train(path, Path(scratch) / "runs")


def as_override(key: str, value) -> str:
    """KEY=VALUE with the value in YAML flow style, as a user would type it."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True)
    return f"{key}={text.removesuffix(chr(10)).removesuffix('...').strip()}"


override_text = st.one_of(
    mutation.map(lambda pair: as_override(*pair)),
    st.builds(lambda key, value: f"{key}={value}", st.sampled_from(KEYS),
              st.one_of(st.text(st.characters(blacklist_categories=["Nd"]), max_size=12),
                        numbers.map(repr), st.sampled_from(
                  ["[1, 2", "{name: adam, beta1: 2}", "!!python/object/apply:os.system [true]",
                   "1e-3", ".nan", "-.inf", "null", "full", "[]", "{}", "&a [*a]", "'", "\x00"]))),
    st.text(st.characters(blacklist_categories=["Nd"]), max_size=20))


@given(overrides=st.lists(override_text, min_size=1, max_size=3))
def test_random_overrides_train_or_are_refused_in_one_line(tmp_path, overrides):
    with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
        path = Path(scratch) / "config.yaml"
        path.write_text(yaml.safe_dump(BASE))
        check_train(path, Path(scratch) / "runs", *overrides)


header_names = st.lists(st.one_of(st.sampled_from(["x1", "x2", "y", "label", "ünïcødé", "🙂",
                                                   "", " spaced ", "a,b", '"q"']),
                                  st.text(max_size=6)), min_size=1, max_size=4)
cells = st.one_of(st.integers(-5, 5).map(str), st.sampled_from(
    ["1e308", "-1e308", "1e309", "nan", "inf", "-inf", "", "NaN", "0x1F", "1,5", "é", "\"", "🙂",
     "9" * 400]), st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text(max_size=5))


@st.composite
def csv_files(draw) -> bytes:
    """Random bytes; text that looks more or less like a CSV table; or a good table of
    x1, ünïcødé, label with a few of its cells replaced by hostile ones."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=200))
    if kind < 5:
        header = ["x1", "ünïcødé", "label"]
        rows = [[str(i % 7 - 3), f"{(i * 3) % 5 * 0.5:g}", "pq"[i % 2]] for i in range(30)]
        for _ in range(draw(st.integers(0, 3))):
            rows[draw(st.integers(0, 29))][draw(st.integers(0, 2))] = draw(cells)
    else:
        header = draw(header_names)
        width = len(header)
        rows = draw(st.lists(st.lists(cells, min_size=max(width - 1, 1), max_size=width + 1),
                             max_size=12))
    text = "\n".join([",".join(header)] + [",".join(row) for row in rows])
    if draw(st.booleans()):
        text += "\n"
    return (("\ufeff" if draw(st.booleans()) else "") + text).encode("utf-8")


@given(content=csv_files(), target=st.one_of(st.just("label"), st.sampled_from(["x1", "ünïcødé"]),
                                              st.text(min_size=1, max_size=4)))
def test_a_random_csv_file_trains_or_is_refused_in_one_line(tmp_path, content, target):
    with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
        data_path = Path(scratch) / "data.csv"
        data_path.write_bytes(content)
        spec = {**BASE, "data": {"path": str(data_path), "target": target}}
        path = Path(scratch) / "config.yaml"
        path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
        check_train(path, Path(scratch) / "runs")


def huge_csv(tmp_path: Path, big: float, **data) -> Path:
    """Unicode headers and a feature whose odd rows are `big`; the config that trains on it."""
    rows = ["ünïcødé,🙂,label"] + [f"{i * big if i % 2 else i},{-i},{'ab'[i % 2]}"
                                    for i in range(30)]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    spec = {**BASE, "data": {"path": str(tmp_path / "data.csv"), "target": "label", **data}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True),
                                          encoding="utf-8")
    return tmp_path / "config.yaml"


def test_values_far_beyond_float32_train_a_float32_network(tmp_path):
    """The properties could pass by refusing everything: this must train. Normalizing in
    float64 brings 1e150 back into float32's range."""
    result = check_train(huge_csv(tmp_path, 1e150), tmp_path / "runs", drawn=False)
    assert result.exit_code == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = reader.read_summary(run_dir)
    assert summary["classes"] == ["a", "b"] and summary["n_features"] == 2
    assert summary["status"] == "completed"


@pytest.mark.parametrize("big, data, message", [
    (1e300, {}, "feature 'ünïcødé' is spread too wide to normalize in float64"),
    (1e150, {"normalize": False}, "is beyond the range of float32 (±3.4e+38); use dtype: float64"),
])
def test_values_no_float_can_hold_are_refused_by_name(tmp_path, big, data, message):
    result = check_train(huge_csv(tmp_path, big, **data), tmp_path / "runs", drawn=False)
    assert result.exit_code == 2 and message in result.output


def test_an_integer_too_long_for_any_float_is_refused_by_name(tmp_path):
    rows = ["x1,x2,label", f"{'9' * 400},0,p"] + [f"{i},{-i},{'pq'[i % 2]}" for i in range(30)]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    spec = {**BASE, "data": {"path": str(tmp_path / "data.csv"), "target": "label"}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(spec))
    result = check_train(tmp_path / "config.yaml", tmp_path / "runs", drawn=False)
    assert result.exit_code == 2
    assert "feature 'x1' is missing, NaN or infinite in 1 rows (first at line 2)" in result.output


@pytest.fixture(scope="module")
def trained_on_three_columns(tmp_path_factory) -> Path:
    """A run trained on a CSV with the columns x1, ünïcødé and label."""
    root = tmp_path_factory.mktemp("csv")
    rows = ["x1,ünïcødé,label"] + [f"{i % 7 - 3},{(i * 3) % 5 - 2},{'pq'[i % 2]}"
                                   for i in range(40)]
    (root / "data.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    cfg = config.validate({**BASE, "data": {"path": str(root / "data.csv"), "target": "label"}},
                          "test")
    from dlrun import plots
    draw, plots.draw = plots.draw, lambda *args, **kwargs: []
    try:
        return session.run(cfg, root / "runs")[0]
    finally:
        plots.draw = draw


@given(content=csv_files())
def test_predicting_on_a_random_csv_file_works_or_is_refused_in_one_line(
        trained_on_three_columns, tmp_path, content):
    with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
        rows = Path(scratch) / "rows.csv"
        rows.write_bytes(content)
        result = runner.invoke(app, ["predict", str(trained_on_three_columns), str(rows)])
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            f"traceback: {result.exception!r}"
        assert result.exit_code in (0, 2), result.output
        if result.exit_code == 2:
            lines = result.output.strip().splitlines()
            assert len(lines) == 1 and str(rows) in lines[0], result.output
        else:
            header = result.stdout.splitlines()[0]
            assert header == "prediction,probability_p,probability_q"


@pytest.mark.parametrize("values, message", [
    (["1e30", "-1e30"], None),  # beyond anything seen in training, but representable
    (["1e308", "1"], "feature 'x1' in row 1 is beyond the range of the model's float32"),
    (["1e309", "0"], "feature 'x1' is missing, NaN or infinite in 1 rows"),
    (["9" * 400, "0"], "feature 'x1' is missing, NaN or infinite in 1 rows"),  # an int, to pandas
    (["1", "nan"], "feature 'ünïcødé' is missing, NaN or infinite in 1 rows"),
])
def test_huge_and_non_finite_values_to_predict_on(trained_on_three_columns, tmp_path, values,
                                                  message):
    rows = tmp_path / "rows.csv"
    rows.write_text(f"x1,ünïcødé\n{values[0]},{values[1]}\n", encoding="utf-8")
    result = runner.invoke(app, ["predict", str(trained_on_three_columns), str(rows)])
    if message is None:
        assert result.exit_code == 0, result.output
        probabilities = [float(v) for v in result.stdout.splitlines()[1].split(",")[1:]]
        assert all(math.isfinite(p) for p in probabilities)
        assert sum(probabilities) == pytest.approx(1, abs=1e-5)
    else:
        assert result.exit_code == 2 and message in result.output


# Sweep spaces: a distribution with random arguments at a random key.
DISTRIBUTIONS = ["loguniform", "uniform", "randint", "choice", "one_minus_loguniform", "normal"]
bounds = st.lists(st.one_of(numbers, st.sampled_from(NAMES), st.lists(st.integers(-1, 9),
                                                                     max_size=3)), max_size=4)
SWEPT = ["train.learning_rate", "regularization.l2", "model.keep_prob", "model.hidden_layers",
         "train.batch_size", "train.optimizer", "train.optimizer.beta1", "model.activation",
         "data.generator.noise", "seed", "train.epochs", "name", "train.lr"]


SENSIBLE = [  # spaces a user would write, so that sweeps really run
    ("train.learning_rate", "loguniform", [1e-4, 1e-1]), ("model.keep_prob", "uniform", [0.5, 1]),
    ("model.hidden_layers", "choice", [[3], [4, 2]]), ("train.batch_size", "randint", [4, 32]),
    ("train.optimizer", "choice", ["adam", "gd"]),
    ("train.optimizer.beta1", "one_minus_loguniform", [0.8, 0.999]),
    ("regularization.l2", "loguniform", [1e-3, 10]), ("seed", "randint", [0, 100]),
]
dimension = st.one_of(st.tuples(st.sampled_from(SWEPT), st.sampled_from(DISTRIBUTIONS), bounds),
                      st.sampled_from(SENSIBLE))


@given(swept=st.lists(dimension, min_size=1, max_size=2),
       grid=st.booleans())
@example(swept=[SENSIBLE[0], SENSIBLE[5]], grid=True)  # a grid note once preceded the refusal
def test_a_random_sweep_space_sweeps_or_is_refused_in_one_line(tmp_path, swept, grid):
    data = json.loads(json.dumps(BASE))
    for key, distribution, arguments in swept:
        set_path(data, key, {distribution: arguments})
    with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
        path, runs_dir = Path(scratch) / "space.yaml", Path(scratch) / "runs"
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        result = runner.invoke(app, ["sweep", str(path), "--trials", "2", "--workers", "1",
                                     "-q", "--runs-dir", str(runs_dir),
                                     *(["--grid"] if grid else [])])
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            f"traceback: {result.exception!r}"
        made = sorted(runs_dir.iterdir()) if runs_dir.exists() else []
        event(f"exit status {result.exit_code}")
        if result.exit_code == 2:
            lines = result.output.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), result.output
            assert made == [], "a refused sweep left a directory behind"
        else:
            assert result.exit_code in (0, 1), result.output  # 1: no trial completed
            (sweep_dir,) = made
            trials = sorted(sweep_dir.glob("trial-*"))
            assert 1 <= len(trials) <= 2
            for trial in trials:
                assert reader.read_summary(trial)["status"] in ("completed", "diverged", "failed")
