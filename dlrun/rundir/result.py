"""A run's result: what the parameters it kept (params.npz) score on each split.

summary.json's `final` holds those scores and `kept_epoch` names the epoch the parameters are
from (0: the initial ones). Every command that shows a run's train, dev or test figures takes
them from here; figures of another epoch (the one with the lowest dev loss) are shown only
under names that say so, such as `best_epoch` and `dev_loss_at_best`.
"""

from __future__ import annotations

from ..metrics import HIGHER_IS_BETTER

SPLITS = ("train", "train_dev", "dev", "test")


def _whole(value) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value) if float(value).is_integer() else None


def kept_epoch(summary: dict, early_stopping: bool | None = None) -> int | None:
    """The epoch whose parameters the run kept; for a summary written before `kept_epoch` was
    recorded, read from how the run ended (early stopping and divergence restore the best
    epoch, anything else keeps the last). None when the run has kept nothing yet."""
    if not isinstance(summary, dict) or not isinstance(summary.get("final"), dict):
        return None
    recorded = _whole(summary.get("kept_epoch"))
    if recorded is not None:
        return recorded
    restored = summary.get("status") == "diverged" or bool(early_stopping)
    return _whole(summary.get("best_epoch") or 0) if restored else _whole(summary.get("epochs_run"))


def final(summary: dict, split: str, metric: str):
    """One figure of the kept parameters (final[split][metric]), None if not recorded."""
    entry = (summary.get("final") or {}).get(split) if isinstance(summary, dict) else None
    value = entry.get(metric) if isinstance(entry, dict) else None
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def kept_label(summary: dict) -> str:
    """Where a run's figures come from, in words: "restored epoch 49 of 60 (lowest dev loss)",
    "last epoch 60 of 60", "initial weights (no epoch improved on them)"."""
    kept, epochs = kept_epoch(summary), _whole(summary.get("epochs_run"))
    if kept is None:
        return "no kept weights yet"
    planned = f" of {epochs}" if epochs is not None else ""
    if kept == 0:
        return "initial weights (no epoch improved on them)"
    if summary.get("restored") or (kept != epochs and epochs is not None):
        monitor = (summary.get("best_dev_metric") or {}).get("name") or "loss"
        best = "highest" if monitor in HIGHER_IS_BETTER else "lowest"
        return f"restored epoch {kept}{planned} ({best} dev {monitor})"
    return f"last epoch {kept}{planned}"
