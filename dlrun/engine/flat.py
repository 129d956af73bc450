"""Arrays by name that are views into one flat buffer, so an update of all of them is one call.

The network keeps its parameters and gradients this way: W1 (n1, n0), b1 (n1, 1), ... stay in a
dict by their course names and shapes, while an optimizer steps the whole 1-D buffer at once.
"""

from __future__ import annotations

import operator

import numpy as np


class FlatArrays(dict):
    """{name: array} whose arrays tile `self.flat` in order; change them in place, never rebind.

    Rebinding an entry (d[name] = other) is allowed but detaches it: `whole()` then returns None
    and callers fall back to array-by-array work.
    """

    def __init__(self, arrays: dict[str, np.ndarray], dtype, layout: tuple | None = None,
                 fill: bool = True):
        super().__init__()
        self.layout = layout or self._layout(arrays)  # ((name, start, shape), ...)
        size = self.layout[-1][1] + int(np.prod(self.layout[-1][2])) if self.layout else 0
        self.flat = np.zeros(size, dtype=dtype)
        for name, start, shape in self.layout:
            view = self.flat[start:start + int(np.prod(shape))].reshape(shape)
            if fill:
                view[...] = arrays[name]
            dict.__setitem__(self, name, view)
        self.views = tuple(self.values())

    @staticmethod
    def _layout(arrays: dict[str, np.ndarray]) -> tuple:
        layout, start = [], 0
        for name, array in arrays.items():
            layout.append((name, start, tuple(array.shape)))
            start += array.size
        return tuple(layout)

    def zeros_like(self) -> FlatArrays:
        """Zeros with the same names, shapes and layout (gradients for these parameters)."""
        return FlatArrays({}, self.flat.dtype, self.layout, fill=False)

    def whole(self) -> np.ndarray | None:
        """The flat buffer if every entry is still its original view, else None."""
        if len(self) == len(self.views) and all(map(operator.is_, self.values(), self.views)):
            return self.flat
        return None

    def __reduce__(self):
        # A copy or a pickle cannot keep views of one buffer: it becomes a plain dict.
        return dict, (dict(self),)


def flat_pair(params: dict, grads: dict) -> tuple[np.ndarray, np.ndarray, tuple] | None:
    """(flat params, flat grads, layout) when both dicts tile one buffer each the same way."""
    if not (isinstance(params, FlatArrays) and isinstance(grads, FlatArrays)
            and params.layout is grads.layout):
        return None
    flat_params, flat_grads = params.whole(), grads.whole()
    if flat_params is None or flat_grads is None:
        return None
    return flat_params, flat_grads, params.layout
