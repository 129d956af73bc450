"""Augmentation: Gaussian input noise, image flips and shifts, on training batches only."""

import csv

import numpy as np
import pytest
from typer.testing import CliRunner

from dlrun import config
from dlrun.cli import app
from dlrun.data.augment import Augmenter, shifted
from dlrun.errors import DataError
from dlrun.training import session
from dlrun.training.experiment import prepare


@pytest.fixture(autouse=True)
def _no_figures(monkeypatch):
    """Figures have their own tests (test_plots.py); drawing them for every run here costs time."""
    monkeypatch.setattr("dlrun.plots.draw", lambda *args, **kwargs: [])


def test_noise_has_the_asked_spread_and_leaves_the_batch_alone():
    X = np.zeros((4000, 5), dtype=np.float32)
    out = Augmenter(np.random.default_rng(0), noise=0.3)(X)
    assert out.dtype == np.float32 and not X.any()
    assert out.std() == pytest.approx(0.3, rel=0.02) and abs(out.mean()) < 0.01


def test_flips_mirror_about_half_the_images_left_to_right():
    images = np.arange(400 * 2 * 3, dtype=np.float64).reshape(400, 2, 3)
    out = Augmenter(np.random.default_rng(1), flip=True, image_shape=(2, 3))(
        images.reshape(400, 6)).reshape(400, 2, 3)
    flipped = np.array([np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, images)])
    assert np.all(flipped ^ kept)
    assert 150 < flipped.sum() < 250


def test_shifted_moves_pixels_and_fills_with_zero():
    image = np.arange(1, 10, dtype=float).reshape(1, 3, 3, 1)
    down_right = shifted(image, 1, 1)[0, :, :, 0]
    assert down_right.tolist() == [[0, 0, 0], [0, 1, 2], [0, 4, 5]]
    up_left = shifted(image, -1, -2)[0, :, :, 0]
    assert up_left.tolist() == [[6, 0, 0], [9, 0, 0], [0, 0, 0]]


def test_shifts_stay_within_the_limit_and_work_on_raw_pixels():
    rng = np.random.default_rng(2)
    images = rng.uniform(1, 2, (300, 5, 5))
    mean, std = np.full(25, 1.5), np.full(25, 0.25)
    normalized = (images.reshape(300, 25) - mean) / std
    out = Augmenter(np.random.default_rng(3), shift=1, image_shape=(5, 5), mean=mean, std=std)(
        normalized)
    raw = (out * std + mean).reshape(300, 5, 5)
    candidates = [shifted(images[:, :, :, None], dy, dx)[:, :, :, 0]
                  for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    matches = [[np.allclose(raw[i], c[i]) for c in candidates] for i in range(300)]
    assert all(any(row) for row in matches)  # each image is one of the 9 allowed moves
    assert len({row.index(True) for row in matches}) == 9  # and every move happens


def _spec(tmp_path, augment: str):
    path = tmp_path / "c.yaml"
    path.write_text(f"""
seed: 5
data:
  generator: {{name: blobs, n_samples: 300, features: 4}}
  augment: {augment}
train: {{epochs: 4, learning_rate: 0.01}}
""")
    return path


def _column(run_dir, name):
    with open(run_dir / "metrics.csv", newline="") as handle:
        return [float(row[name]) for row in csv.DictReader(handle)]


def test_augmentation_changes_training_batches_only(tmp_path, monkeypatch):
    plain, _ = session.run(config.load(_spec(tmp_path, "{}")), tmp_path / "runs")
    seen = []
    original = Augmenter.__call__
    monkeypatch.setattr(Augmenter, "__call__", lambda self, X: seen.append(len(X)) or original(self, X))
    noisy, summary = session.run(config.load(_spec(tmp_path, "{noise: 3.0}")), tmp_path / "runs")
    assert len(seen) == summary["steps"] and sum(seen) == 4 * 180  # every training batch, no more
    # the cost of noisy batches is far above the loss of the clean training split
    assert _column(noisy, "train_cost")[-1] > 1.5 * _column(noisy, "train_loss")[-1]
    assert _column(plain, "train_cost")[-1] < 1.5 * _column(plain, "train_loss")[-1]
    again, _ = session.run(config.load(_spec(tmp_path, "{noise: 3.0}")), tmp_path / "runs")
    assert _column(again, "train_cost") == _column(noisy, "train_cost")  # seeded


def test_image_shape_that_does_not_fit_the_rows_is_refused(tmp_path):
    path = _spec(tmp_path, "{flip: true, image_shape: [3, 3]}")
    with pytest.raises(DataError, match=r"data.augment.image_shape: 3 x 3 = 9 values per image, "
                                        r"but the rows have 4 features"):
        prepare(config.load(path))
    result = CliRunner().invoke(app, ["train", str(path), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "image_shape" in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_shift_larger_than_the_image_is_refused(tmp_path):
    with pytest.raises(DataError, match="data.augment.shift: 2 pixels"):
        prepare(config.load(_spec(tmp_path, "{shift: 2, image_shape: [2, 2]}")))
