"""Data augmentation, the course's cheap regularizer: random changes to each training mini-batch.

Gaussian input noise works on any data. Horizontal flips and small shifts work on rows that are
flattened images of `image_shape` ([height, width] or [height, width, channels], C order); they
act on the raw pixels, so normalized rows are mapped back, changed and normalized again.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError


class Augmenter:
    def __init__(self, rng: np.random.Generator, noise: float = 0.0, flip: bool = False,
                 shift: int = 0, image_shape: tuple[int, ...] | None = None,
                 mean: np.ndarray | None = None, std: np.ndarray | None = None):
        self.rng, self.noise, self.flip, self.shift = rng, noise, flip, shift
        self.image_shape = None if image_shape is None else tuple(image_shape)
        self.mean, self.std = mean, std

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """A changed copy of the mini-batch X (m, n); X itself is left alone."""
        if self.image_shape and (self.flip or self.shift):
            X = self._move_images(X)
        if self.noise:
            X = X + self.noise * self.rng.standard_normal(X.shape, dtype=X.dtype)
        return X

    def _move_images(self, X: np.ndarray) -> np.ndarray:
        dtype = X.dtype
        normalized = self.mean is not None
        raw = X * self.std.astype(dtype) + self.mean.astype(dtype) if normalized else X.copy()
        height, width = self.image_shape[:2]
        images = raw.reshape(len(X), height, width, -1)
        if self.flip:
            flipped = self.rng.random(len(X)) < 0.5
            images[flipped] = images[flipped, :, ::-1]
        if self.shift:
            offsets = self.rng.integers(-self.shift, self.shift + 1, size=(len(X), 2))
            for dy, dx in np.unique(offsets, axis=0):
                rows = np.flatnonzero((offsets[:, 0] == dy) & (offsets[:, 1] == dx))
                images[rows] = shifted(images[rows], int(dy), int(dx))
        raw = images.reshape(len(X), -1)
        return (raw - self.mean.astype(dtype)) / self.std.astype(dtype) if normalized else raw


def shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """images (k, h, w, c) moved dy rows down and dx columns right; uncovered pixels are 0."""
    height, width = images.shape[1:3]
    out = np.zeros_like(images)
    out[:, max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
        images[:, max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
    return out


def build_augmenter(config, n_features: int, mean, std,
                    rng: np.random.Generator) -> Augmenter | None:
    """The Augmenter that `config` (data.augment) asks for, or None when it asks for nothing."""
    if not (config.noise or config.flip or config.shift):
        return None
    shape = config.image_shape
    if shape is not None and int(np.prod(shape)) != n_features:
        raise DataError(f"data.augment.image_shape: {' x '.join(map(str, shape))} = "
                        f"{int(np.prod(shape))} values per image, but the rows have {n_features} "
                        "features")
    if shape is not None and config.shift >= min(shape[:2]):
        raise DataError(f"data.augment.shift: {config.shift} pixels would move a "
                        f"{shape[0]} x {shape[1]} image out of sight; use less than "
                        f"{min(shape[:2])}")
    return Augmenter(rng, config.noise, config.flip, config.shift, shape, mean, std)
