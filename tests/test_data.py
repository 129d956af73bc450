"""Generators, splits, train_dev, normalization and the data section of the config."""

from pathlib import Path

import numpy as np
import pytest

from dlrun import config, data
from dlrun.data.labels import infer_task
from dlrun.data.synthetic import GENERATORS
from dlrun.engine.registry import build
from dlrun.errors import ConfigError, DataError


@pytest.fixture(autouse=True)
def _no_figures(monkeypatch):
    """Figures have their own tests (test_plots.py); drawing them for every run here costs time."""
    monkeypatch.setattr("dlrun.plots.draw", lambda *args, **kwargs: [])


def _data_config(**section):
    return config.ExperimentConfig.model_validate({"data": section}).data


def _load(seed=0, dtype=np.float64, **section):
    return data.load(_data_config(**section), np.random.default_rng(seed), dtype)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_every_generator_is_seeded_and_sized(name):
    generator = build(GENERATORS, "generator", {"name": name, "n_samples": 123})
    X, y = generator.generate(np.random.default_rng(5))
    X_again, y_again = generator.generate(np.random.default_rng(5))
    X_other, _ = generator.generate(np.random.default_rng(6))
    assert X.shape[0] == y.shape[0] == 123 and X.ndim == 2
    assert np.array_equal(X, X_again) and np.array_equal(y, y_again)
    assert not np.array_equal(X, X_other)
    counts = np.bincount(y)
    assert counts.max() - counts.min() <= 1  # classes as balanced as the count allows


def test_spirals_and_blobs_take_any_number_of_classes_and_features():
    X, y = build(GENERATORS, "g", {"name": "spirals", "classes": 5, "n_samples": 500}).generate(
        np.random.default_rng(0))
    assert sorted(set(y)) == [0, 1, 2, 3, 4] and X.shape == (500, 2)
    X, y = build(GENERATORS, "g", {"name": "blobs", "classes": 3, "features": 7}).generate(
        np.random.default_rng(0))
    assert X.shape[1] == 7 and sorted(set(y)) == [0, 1, 2]


def test_blob_spread_of_each_class_is_the_noise():
    X, y = build(GENERATORS, "g", {"name": "blobs", "n_samples": 30000, "noise": 0.5,
                                   "features": 3}).generate(np.random.default_rng(1))
    for label in range(3):
        assert X[y == label].std(axis=0) == pytest.approx([0.5] * 3, rel=0.05)


def test_xor_labels_are_the_quadrant_parity_without_noise():
    X, y = build(GENERATORS, "g", {"name": "xor", "noise": 0.0}).generate(np.random.default_rng(2))
    assert np.array_equal(y, ((X[:, 0] > 0) ^ (X[:, 1] > 0)).astype(int))


def test_flower_without_noise_lies_on_the_petal_curve():
    X, y = build(GENERATORS, "g", {"name": "flower", "noise": 0.0, "radius": 4.0,
                                   "petals": 4}).generate(np.random.default_rng(0))
    theta = np.arctan2(X[:, 0], X[:, 1])  # x = r sin θ, y = r cos θ
    radius = np.hypot(X[:, 0], X[:, 1])
    assert radius == pytest.approx(np.abs(4 * np.sin(4 * theta)), abs=1e-9)
    assert set(y) == {0, 1}


def test_stretch_multiplies_the_last_feature_only_in_two_dimensions():
    plain = build(GENERATORS, "g", {"name": "moons"}).generate(np.random.default_rng(0))[0]
    stretched = build(GENERATORS, "g", {"name": "moons", "stretch": 1000.0}).generate(
        np.random.default_rng(0))[0]
    assert stretched[:, 0] == pytest.approx(plain[:, 0])
    assert stretched[:, 1] == pytest.approx(1000 * plain[:, 1])


@pytest.mark.parametrize("spec, message", [
    ({"name": "spirals", "classes": 1}, "classes"),
    ({"name": "blobs", "features": 0}, "features"),
    ({"name": "flower", "petals": 2.5}, "petals"),
    ({"name": "xor", "noise": -1}, "noise"),
    ({"name": "moons", "stretch": 0}, "stretch"),
    ({"name": "squares"}, "allowed: moons, circles, flower, spirals, blobs, xor"),
])
def test_bad_generator_options_name_the_option(tmp_path, spec, message):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  generator: " + str(spec).replace("'", "") + "\n")
    with pytest.raises(ConfigError, match=message) as error:
        config.load(path)
    assert "c.yaml:2: data.generator" in str(error.value)


def test_splits_follow_the_fractions_and_are_stratified():
    dataset = _load(generator={"name": "spirals", "n_samples": 1000, "classes": 4},
                    split={"train": 0.7, "dev": 0.2, "test": 0.1})
    sizes = {name: len(X) for name, (X, _) in dataset.splits.items()}
    assert sizes == {"train": 700, "dev": 200, "test": 100}
    for _, y in dataset.splits.values():
        assert np.bincount(y, minlength=4).tolist() == [len(y) // 4] * 4


def test_same_seed_same_split_other_seed_other_split():
    first, again, other = (_load(seed=s, generator="moons") for s in (3, 3, 4))
    assert np.array_equal(first.splits["dev"][0], again.splits["dev"][0])
    assert not np.array_equal(first.splits["dev"][0], other.splits["dev"][0])


def test_train_dev_is_carved_from_the_training_split():
    whole = _load(seed=1, generator={"name": "moons", "n_samples": 1000})
    carved = _load(seed=1, generator={"name": "moons", "n_samples": 1000}, train_dev=0.25)
    assert len(carved.splits["train"][0]) == 450 and len(carved.splits["train_dev"][0]) == 150
    assert np.bincount(carved.splits["train_dev"][1]).tolist() == [75, 75]
    # dev and test are untouched; train and train_dev together are the old training split
    assert np.array_equal(whole.splits["dev"][1], carved.splits["dev"][1])
    rows = lambda d, *names: {tuple(r) for n in names for r in d.raw(d.splits[n][0]).round(9)}
    assert rows(carved, "train", "train_dev") == rows(whole, "train")
    assert not rows(carved, "train") & rows(carved, "train_dev")


def test_normalization_uses_training_statistics_only():
    dataset = _load(generator={"name": "blobs", "n_samples": 2000, "features": 3})
    X_train = dataset.splits["train"][0]
    assert X_train.mean(axis=0) == pytest.approx(np.zeros(3), abs=1e-9)
    assert X_train.std(axis=0) == pytest.approx(np.ones(3))
    assert not np.allclose(dataset.splits["dev"][0].mean(axis=0), 0, atol=1e-9)
    raw = _load(generator={"name": "blobs", "n_samples": 2000, "features": 3}, normalize=False)
    assert dataset.mean == pytest.approx(raw.splits["train"][0].mean(axis=0))
    assert dataset.std == pytest.approx(raw.splits["train"][0].std(axis=0))
    assert dataset.splits["test"][0] == pytest.approx(
        (raw.splits["test"][0] - dataset.mean) / dataset.std)


def test_normalized_arrays_have_the_run_dtype():
    dataset = _load(dtype=np.float32, generator="circles")
    assert all(X.dtype == np.float32 for X, _ in dataset.splits.values())


@pytest.mark.parametrize("labels, task", [
    (np.array([0, 1, 1, 0]), "binary"),
    (np.array(["cat", "dog", "cat"]), "binary"),
    (np.array([2, 0, 1, 2]), "multiclass"),
    (np.array([0.5, 1.25, 3.0]), "regression"),
    (np.array([1.0, 0.0, 2.0]), "multiclass"),
])
def test_task_is_inferred_from_the_labels(labels, task):
    assert infer_task(labels) == task


def test_a_split_too_small_to_hold_an_example_is_a_data_error():
    with pytest.raises(DataError, match=r"data.split.test: 0.01 of 20 examples holds no example"):
        _load(generator={"name": "moons", "n_samples": 20},
              split={"train": 0.79, "dev": 0.2, "test": 0.01})
    with pytest.raises(DataError, match="data.train_dev"):
        _load(generator={"name": "moons", "n_samples": 20}, train_dev=0.01)


@pytest.mark.parametrize("section, message", [
    ({"generator": "moons", "path": "a.csv"}, "give one source of examples, not generator and path"),
    ({"dev": "dev.csv"}, "give train"),
    ({"train": "t.csv", "target": "y"}, "give a dev file too"),
    ({"train": "t.csv", "dev": "d.csv", "target": "y", "split": {"train": 0.8, "dev": 0.2, "test": 0}},
     "leave it out"),
    ({"path": "a.csv"}, "give target"),
    ({"path": "a.txt", "target": "y"}, "unsupported file type '.txt'"),
    ({"path": "a.npz", "features": ["a"]}, "features names CSV columns"),
    ({"generator": "moons", "target": "y"}, "a generator makes its own"),
    ({"split": {"train": 0.8, "dev": 0.0, "test": 0.2}}, "dev"),
    ({"train_dev": 1.0}, "train_dev"),
    ({"task": "ranking"}, "binary"),
    ({"augment": {"flip": True}}, "give image_shape"),
    ({"augment": {"noise": -0.1}}, "noise"),
])
def test_data_section_mistakes_are_config_errors(section, message):
    with pytest.raises(ConfigError, match=message):
        config.validate({"data": section}, "c.yaml")


def test_moons_is_the_source_when_none_is_given_and_the_resolved_config_reloads(tmp_path):
    cfg = config.validate({"data": {"normalize": False}}, "c.yaml")
    assert cfg.data.generator["name"] == "moons" and cfg.data.split.train == 0.6
    path = tmp_path / "resolved.yaml"
    path.write_text(cfg.to_yaml())
    assert config.load(path) == cfg


def test_per_split_file_config_reloads_without_a_split(tmp_path):
    cfg = config.validate({"data": {"train": "t.csv", "dev": "d.csv", "target": "y"}}, "c.yaml")
    assert cfg.data.split is None and cfg.data.generator is None
    path = tmp_path / "resolved.yaml"
    path.write_text(cfg.to_yaml())
    assert config.load(path) == cfg


def test_an_override_can_swap_the_generator_for_a_file(tmp_path):
    spec = tmp_path / "c.yaml"
    spec.write_text("data:\n  generator: moons\n")
    cfg = config.load(spec, ["data.generator=null", "data.path=table.csv", "data.target=y"])
    assert cfg.data.generator is None and cfg.data.path == Path("table.csv").absolute()


def test_a_run_names_its_data_by_absolute_path(tmp_path, monkeypatch):
    """A relative path is read from the current directory, and the run directory records where
    that was, so `dlrun plot` or `--resume` from elsewhere still find the data."""
    monkeypatch.chdir(tmp_path)
    cfg = config.validate({"data": {"train": "t.csv", "dev": "sub/d.csv", "target": "y.npy"}},
                          "c.yaml")
    assert cfg.data.train == tmp_path / "t.csv" and cfg.data.dev == tmp_path / "sub" / "d.csv"
    assert cfg.data.target == "y.npy"  # a column name of the CSV files
    cfg = config.validate({"data": {"path": "x.npy", "target": "y.npy"}}, "c.yaml")
    assert cfg.data.path == tmp_path / "x.npy" and cfg.data.target == str(tmp_path / "y.npy")


@pytest.mark.parametrize("given, expected", [
    ({"train": 0.9, "dev": 0.1}, (0.9, 0.1, 0.0)),  # no test set
    ({"train": 0.8}, (0.8, 0.1, 0.1)),
    ({"dev": 0.15, "test": 0.05}, (0.8, 0.15, 0.05)),
    ({}, (0.6, 0.2, 0.2)),
])
def test_shares_left_out_of_the_split_take_what_the_others_leave(given, expected):
    split = config.validate({"data": {"split": given}}, "c.yaml").data.split
    assert (split.train, split.dev, split.test) == pytest.approx(expected)


@pytest.mark.parametrize("values", [
    [3, 1, 2, 1, 3], [0.5, float("nan"), 0.5, float("nan"), -1.0], ["b", "a", "b"],
    np.array(["x", "y", "x"], dtype=object), [True, False, True], [], [[2, 1], [1, 2]]])
def test_distinct_labels_are_what_np_unique_gives(values):
    from dlrun.data.labels import distinct

    expected, found = np.unique(np.asarray(values)), distinct(np.asarray(values))
    assert found.dtype == expected.dtype
    np.testing.assert_array_equal(found, expected)
