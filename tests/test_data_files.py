"""Examples from the user's files: CSV, memory-mapped .npy, .npz, one file per split; and the
clear errors bad files get."""

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dlrun import config, data
from dlrun.cli import app
from dlrun.data.rows import MappedRows
from dlrun.errors import DataError
from dlrun.training import session


@pytest.fixture(autouse=True)
def _no_figures(monkeypatch):
    """Figures have their own tests (test_plots.py); drawing them for every run here costs time."""
    monkeypatch.setattr("dlrun.plots.draw", lambda *args, **kwargs: [])


def _section(**section):
    return config.ExperimentConfig.model_validate({"data": section}).data


def _load(dtype=np.float32, seed=0, **section):
    return data.load(_section(**section), np.random.default_rng(seed), dtype)


def _table(rng, m=200):
    x1, x2 = rng.normal(0, 1, m), rng.normal(10, 3, m)
    label = np.where(x1 + (x2 - 10) / 3 > 0, "yes", "no")
    return pd.DataFrame({"x1": x1, "x2": x2, "noise": rng.normal(size=m), "label": label})


@pytest.fixture
def csv_path(tmp_path):
    path = tmp_path / "table.csv"
    _table(np.random.default_rng(0)).to_csv(path, index=False)
    return path


def test_csv_text_labels_become_sorted_classes(csv_path):
    dataset = _load(path=csv_path, target="label")
    assert dataset.task == "binary" and dataset.classes == ["no", "yes"]
    assert dataset.features == ["x1", "x2", "noise"]
    assert sum(len(X) for X, _ in dataset.splits.values()) == 200
    frame = pd.read_csv(csv_path)
    X_train, y_train = dataset.splits["train"]
    raw = dataset.raw(X_train.astype(np.float64))
    # every training row is a row of the file, with its own label
    for row, label in zip(raw[:20], y_train[:20]):
        match = frame[np.isclose(frame.x1, row[0], atol=1e-5)]
        assert len(match) == 1 and match.label.iloc[0] == ["no", "yes"][label]


def test_the_row_index_pandas_writes_is_not_a_feature(tmp_path):
    frame = _table(np.random.default_rng(0))
    frame.to_csv(tmp_path / "indexed.csv")  # a first column with no name: 0, 1, 2, ...
    assert (tmp_path / "indexed.csv").read_text().startswith(",x1,x2,noise,label\n0,")
    dataset = _load(path=tmp_path / "indexed.csv", target="label")
    assert dataset.features == ["x1", "x2", "noise"]
    frame.sample(frac=1, random_state=0).to_csv(tmp_path / "shuffled.csv")
    assert _load(path=tmp_path / "shuffled.csv", target="label").features == ["x1", "x2", "noise"]
    frame[:150].to_csv(tmp_path / "train.csv")  # the dev file's index runs from 150 to 199
    frame[150:].to_csv(tmp_path / "dev.csv")
    split = _load(train=tmp_path / "train.csv", dev=tmp_path / "dev.csv", target="label")
    assert split.features == ["x1", "x2", "noise"] and len(split.splits["dev"][0]) == 50
    frame.set_axis(frame.index % 7).to_csv(tmp_path / "kept.csv")  # repeats: not an index
    assert _load(path=tmp_path / "kept.csv", target="label").features[0] == "Unnamed: 0"


def test_csv_feature_list_picks_and_orders_columns(csv_path):
    dataset = _load(path=csv_path, target="label", features=["x2", "x1"])
    assert dataset.features == ["x2", "x1"] and dataset.n_features == 2
    assert dataset.mean[0] == pytest.approx(10, abs=1)  # x2 is centred near 10


def test_csv_real_valued_target_is_regression(tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=50), "price": rng.normal(size=50) * 3.3})
    frame.to_csv(tmp_path / "r.csv", index=False)
    dataset = _load(path=tmp_path / "r.csv", target="price")
    assert dataset.task == "regression" and dataset.classes == [] and dataset.n_outputs == 1
    assert dataset.splits["train"][1].dtype == np.float32


def test_task_override_makes_integer_targets_regression(tmp_path):
    frame = pd.DataFrame({"a": np.arange(30.0), "age": np.arange(30) % 7})
    frame.to_csv(tmp_path / "ages.csv", index=False)
    assert _load(path=tmp_path / "ages.csv", target="age").task == "multiclass"
    assert _load(path=tmp_path / "ages.csv", target="age", task="regression").task == "regression"


def test_many_whole_numbers_with_few_examples_each_are_not_taken_for_classes(tmp_path):
    rng = np.random.default_rng(3)
    prices = pd.DataFrame({"a": rng.normal(size=3000), "price": 100 + np.arange(3000) % 600})
    prices.to_csv(tmp_path / "prices.csv", index=False)
    with pytest.raises(DataError, match=r"prices.csv: the target holds 600 different whole "
                       r"numbers in 3000 examples, .* set data.task to regression"):
        _load(path=tmp_path / "prices.csv", target="price")
    assert _load(path=tmp_path / "prices.csv", target="price", task="regression").task == \
        "regression"
    assert _load(path=tmp_path / "prices.csv", target="price", task="multiclass").n_outputs == 600
    digits = pd.DataFrame({"a": rng.normal(size=3000), "digit": rng.integers(0, 10, 3000)})
    digits.to_csv(tmp_path / "digits.csv", index=False)
    assert _load(path=tmp_path / "digits.csv", target="digit").task == "multiclass"


def test_text_targets_cannot_be_regressed(tmp_path):
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "size": ["big", "small", "big"]}).to_csv(
        tmp_path / "t.csv", index=False)
    with pytest.raises(DataError) as error:
        _load(path=tmp_path / "t.csv", target="size", task="regression")
    assert str(error.value).endswith("t.csv: regression needs numeric targets, got values such "
                                     "as 'big' (set data.task to binary or multiclass)")


def _error(tmp_path, text, **section) -> str:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError) as error:
        _load(path=path, **{"target": "y", **section})
    return str(error.value)


def test_missing_file_names_the_file_and_key(tmp_path):
    with pytest.raises(DataError, match=r"nowhere.csv: no such data file \(data.path\)"):
        _load(path=tmp_path / "nowhere.csv", target="y")


def test_missing_target_column_lists_the_columns(tmp_path):
    message = _error(tmp_path, "a,b\n1,2\n3,4\n")
    assert "no target column 'y' (data.target); columns: a, b" in message


def test_missing_feature_column_is_named(tmp_path):
    message = _error(tmp_path, "a,y\n1,0\n3,1\n", features=["a", "c"])
    assert "no feature column 'c' (data.features)" in message


def test_non_numeric_feature_names_column_line_and_value(tmp_path):
    message = _error(tmp_path, "a,colour,y\n1,2,0\n3,red,1\n4,5,0\n")
    assert "feature column 'colour' is not numeric (line 3: 'red')" in message


def test_nan_feature_names_column_count_and_first_line(tmp_path):
    message = _error(tmp_path, "a,b,y\n1,2,0\n3,,1\n4,5,0\n6,nan,1\n7,inf,0\n")
    assert "feature 'b' is missing, NaN or infinite in 3 rows (first at line 3)" in message


def test_empty_labels_are_counted(tmp_path):
    message = _error(tmp_path, "a,y\n1,0\n2,\n3,1\n")
    assert "target column 'y' is empty or NaN in 1 rows (first on line 3)" in message


def test_one_class_only_is_refused(tmp_path):
    message = _error(tmp_path, "a,y\n1,cat\n2,cat\n3,cat\n")
    assert "only one class ('cat')" in message


def test_binary_task_with_three_classes_is_refused(tmp_path):
    message = _error(tmp_path, "a,y\n1,0\n2,1\n3,2\n", task="binary")
    assert "data.task is binary but the labels hold 3 classes" in message


def test_empty_and_malformed_csv_files(tmp_path):
    assert "the file is empty" in _error(tmp_path, "")
    assert "holds no examples" in _error(tmp_path, "a,y\n")
    assert "not a readable CSV file" in _error(tmp_path, 'a,y\n1,"2\n')


def test_target_listed_as_a_feature_is_refused(tmp_path):
    assert "also listed in data.features" in _error(tmp_path, "a,y\n1,0\n2,1\n",
                                                     features=["a", "y"])


def test_npy_is_memory_mapped_and_never_upcast(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    dataset = _load(path=tmp_path / "X.npy", target=str(tmp_path / "y.npy"))
    X_train, y_train = dataset.splits["train"]
    assert isinstance(X_train, MappedRows) and isinstance(X_train.base, np.memmap)
    batch = X_train[np.array([3, 1, 2])]
    assert batch.dtype == np.float32 and batch.shape == (3, 5)
    expected = (X[X_train.index[[3, 1, 2]]] - dataset.mean) / dataset.std
    assert batch == pytest.approx(expected, abs=1e-5)
    assert y_train == pytest.approx(y[X_train.index])
    whole = np.concatenate([X_train.index, dataset.splits["dev"][0].index,
                            dataset.splits["test"][0].index])
    assert sorted(whole) == list(range(400))
    assert dataset.mean == pytest.approx(X[X_train.index].mean(axis=0), abs=1e-6)
    assert dataset.std == pytest.approx(X[X_train.index].std(axis=0), rel=1e-5)


def test_npy_statistics_are_computed_block_by_block_without_a_copy(tmp_path, monkeypatch):
    import dlrun.data.rows as rows

    monkeypatch.setattr(rows, "BLOCK_VALUES", 50_000)  # 400 kB of float64 scratch per block
    m, n = 4000, 250  # 4 MB of float32: twenty blocks
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32, shape=(m, n))
    X[:] = np.random.default_rng(0).normal(3.0, 2.0, (m, n))
    X.flush()
    np.save(tmp_path / "y.npy", np.arange(m) % 2)
    _load(path=tmp_path / "X.npy", target=str(tmp_path / "y.npy"))  # one-time imports and caches
    tracemalloc.start()
    baseline, _ = tracemalloc.get_traced_memory()
    dataset = _load(path=tmp_path / "X.npy", target=str(tmp_path / "y.npy"))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # One block as float32 and float64 (600 kB) plus labels and indices, measured at 0.9 MB: far
    # below the 4 MB of the file, let alone 8 MB as float64.
    assert peak - baseline < 1_500_000
    train_rows = np.asarray(X)[dataset.splits["train"][0].index].astype(np.float64)
    assert dataset.mean == pytest.approx(train_rows.mean(axis=0))
    assert dataset.std == pytest.approx(train_rows.std(axis=0))


def test_training_on_a_memory_mapped_file_matches_training_in_memory(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    np.savez(tmp_path / "all.npz", X=X, y=y)
    results = []
    for source in ({"path": str(tmp_path / "X.npy"), "target": str(tmp_path / "y.npy")},
                   {"path": str(tmp_path / "all.npz")}):
        cfg = config.validate({"seed": 4, "dtype": "float64", "data": source,
                               "train": {"epochs": 5, "learning_rate": 0.01}}, "c.yaml")
        _, summary = session.run(cfg, tmp_path / "runs")
        results.append(summary["final"])
    for split in ("train", "dev", "test"):
        assert results[0][split] == pytest.approx(results[1][split])


def test_npz_needs_X_and_y(tmp_path):
    np.savez(tmp_path / "a.npz", X=np.zeros((4, 2)), labels=np.zeros(4))
    with pytest.raises(DataError, match=r"no array 'y'; a .npz needs arrays X and y \(it holds X, labels\)"):
        _load(path=tmp_path / "a.npz")


def test_mismatched_lengths_of_X_and_y(tmp_path):
    np.savez(tmp_path / "a.npz", X=np.zeros((4, 2)), y=np.array([0, 1, 0]))
    with pytest.raises(DataError, match="3 labels for 4 examples"):
        _load(path=tmp_path / "a.npz")
    np.save(tmp_path / "X.npy", np.zeros((5, 2)))
    np.save(tmp_path / "y.npy", np.array([0, 1]))
    with pytest.raises(DataError, match="2 labels for 5 examples"):
        _load(path=tmp_path / "X.npy", target=str(tmp_path / "y.npy"))


def test_npy_nan_names_feature_and_row(tmp_path):
    X = np.ones((10, 3))
    X[[4, 7], 1] = np.nan
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", np.arange(10) % 2)
    with pytest.raises(DataError, match=r"feature 'x2' is missing, NaN or infinite in 2 rows \(first at row 4\)"):
        _load(path=tmp_path / "X.npy", target=str(tmp_path / "y.npy"))


def test_image_arrays_become_rows(tmp_path):
    np.save(tmp_path / "X.npy", np.zeros((20, 4, 4, 3), dtype=np.uint8))
    np.save(tmp_path / "y.npy", np.arange(20) % 2)
    dataset = _load(path=tmp_path / "X.npy", target=str(tmp_path / "y.npy"), normalize=False)
    assert dataset.n_features == 48 and dataset.splits["train"][0][:2].dtype == np.float32


def test_not_an_array_file(tmp_path):
    (tmp_path / "X.npy").write_text("hello")
    np.save(tmp_path / "y.npy", np.zeros(3))
    with pytest.raises(DataError, match="X.npy: not a readable .npy array"):
        _load(path=tmp_path / "X.npy", target=str(tmp_path / "y.npy"))


def _split_files(tmp_path, shift=0.0):
    rng = np.random.default_rng(3)
    paths = {}
    for name, offset in (("train", 0.0), ("dev", shift), ("test", shift)):
        frame = _table(rng, 120)
        frame["x1"] += offset
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


def test_a_file_per_split_is_used_as_given(tmp_path):
    paths = _split_files(tmp_path, shift=5.0)
    dataset = _load(train=paths["train"], dev=paths["dev"], test=paths["test"], target="label",
                    train_dev=0.2)
    assert {name: len(X) for name, (X, _) in dataset.splits.items()} == {
        "train": 96, "train_dev": 24, "dev": 120, "test": 120}
    # statistics come from training data: the shifted dev set is far from zero mean
    assert dataset.splits["dev"][0][:, 0].mean() > 3


def test_per_split_files_without_test_leave_test_empty(tmp_path):
    paths = _split_files(tmp_path)
    dataset = _load(train=paths["train"], dev=paths["dev"], target="label")
    assert len(dataset.splits["test"][0]) == 0


def test_dev_label_unseen_in_training_is_refused(tmp_path):
    paths = _split_files(tmp_path)
    frame = pd.read_csv(paths["dev"])
    frame.loc[3, "label"] = "maybe"
    frame.to_csv(paths["dev"], index=False)
    with pytest.raises(DataError, match="dev.csv: label 'maybe' does not occur in the training data"):
        _load(train=paths["train"], dev=paths["dev"], target="label")


def test_split_files_may_order_their_columns_differently(tmp_path):
    paths = _split_files(tmp_path)
    frame = pd.read_csv(paths["dev"])
    frame[["label", "noise", "x2", "x1"]].to_csv(paths["dev"], index=False)
    dataset = _load(train=paths["train"], dev=paths["dev"], target="label", dtype=np.float64)
    X_dev = dataset.raw(dataset.splits["dev"][0])
    assert X_dev[:, 0] == pytest.approx(frame["x1"].to_numpy())
    assert X_dev[:, 2] == pytest.approx(frame["noise"].to_numpy())


def test_split_files_with_different_features_are_refused(tmp_path):
    paths = _split_files(tmp_path)
    pd.read_csv(paths["dev"]).drop(columns="noise").to_csv(paths["dev"], index=False)
    with pytest.raises(DataError, match=r"dev.csv: 2 features, the training file has 3 \(only "
                       r"the training file has noise\) \(data.dev\)"):
        _load(train=paths["train"], dev=paths["dev"], target="label")


def test_cli_reports_data_errors_in_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "bad.csv").write_text("a,y\n1,0\n2,\n3,1\n")
    spec = tmp_path / "c.yaml"
    spec.write_text(f"data:\n  path: {tmp_path / 'bad.csv'}\n  target: y\n")
    runs_dir = tmp_path / "runs"
    result = CliRunner().invoke(app, ["train", str(spec), "--runs-dir", str(runs_dir)])
    assert result.exit_code == 2
    assert "error:" in result.output and "empty or NaN in 1 rows" in result.output
    assert "Traceback" not in result.output
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_csv_run_saves_feature_names_for_prediction(tmp_path, csv_path):
    from dlrun.rundir.layout import load_params

    cfg = config.validate({"data": {"path": str(csv_path), "target": "label"},
                           "train": {"epochs": 3}}, "c.yaml")
    run_dir, summary = session.run(cfg, tmp_path / "runs")
    _, meta = load_params(run_dir / "params.npz")
    assert meta["features"].tolist() == ["x1", "x2", "noise"]
    assert meta["classes"].tolist() == ["no", "yes"] and str(meta["task"]) == "binary"
    assert summary["classes"] == ["no", "yes"]
