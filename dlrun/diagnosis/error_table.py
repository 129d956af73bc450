"""Error analysis: what a trained run gets wrong on one split, and why, counted.

The network is rebuilt from the run (config.yaml and params.npz) and the split regenerated from
its config, so the counts here are the run's own: misclassified / examples is summary.json's
error for that split. The misclassified examples are ranked by their loss, −log p(true class),
the most confidently wrong first; the user tags them in errors.csv (a `tag` column, left empty)
and `--tags` counts the tags back into the course's table:

    share of a tag   = examples tagged with it / misclassified examples
    ceiling of a tag = error · (1 − share)

the lowest error that fixing every example of that category could reach (8% of the errors
tagged, 10% error: at best 9.2%). A row may carry several tags, so shares can add up past 100%.
A regression has no misclassified examples: its largest residuals are ranked instead.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import metrics
from ..errors import DataError, RunDirError
from ..rundir import layout

TABLE = "errors.csv"
TAG_SEPARATORS = ";|"  # a row's tags: "blurry; dark" (a comma would need CSV quoting)


@dataclass
class ErrorAnalysis:
    run_dir: Path
    split: str
    task: str
    classes: list[str]
    examples: int  # in the split
    error: float  # the misclassified fraction (or RMSE), as summary.json has it
    confusion: np.ndarray | None  # (K, K) counts: row = true class, column = predicted
    per_class: object | None  # pandas DataFrame: class, examples, errors, error, precision, ...
    ranked: object  # DataFrame: the misclassified examples by loss (regression: every example
    #                  by |residual|), with their features and an empty tag column
    image_shape: list[int] | None  # the features are an image of this shape (data.augment)
    images: np.ndarray | None = None  # then: the ranked examples' features, in data units

    @property
    def misclassified(self) -> int:
        return 0 if self.task == "regression" else len(self.ranked)

    def table_path(self) -> Path:
        return self.run_dir / (TABLE if self.split == "dev" else f"errors-{self.split}.csv")


def analyse(run_dir: str | Path, split: str = "dev") -> ErrorAnalysis:
    """The error analysis of a finished run on `split` (train, train_dev, dev or test)."""
    from ..predict import load_model
    from ..training.experiment import load_data

    model = load_model(run_dir)
    dataset = load_data(model.config)
    if split not in dataset.splits:
        raise RunDirError(f"--split: {split!r} is not a split of {run_dir}; it has "
                          f"{', '.join(dataset.splits)}")
    X, y = dataset.splits[split]
    if len(X) == 0:
        raise RunDirError(f"--split: the {split} split of {run_dir} holds no examples")
    if not isinstance(X, np.ndarray):  # memory-mapped rows gather themselves
        X = X[np.arange(len(X))]
    Z = model.network.logits(X).astype(np.float64)
    rows = dataset.rows.get(split, np.arange(len(X))) + 1  # 1: the first data row of the file
    image_shape = model.config.data.augment.image_shape
    raw = dataset.raw(X.astype(np.float64))
    features = None if image_shape else raw  # an image's pixels are drawn, not tabled
    if dataset.task == "regression":
        return _regression(Path(run_dir), split, Z, y, rows, features, dataset)
    probabilities = _probabilities(Z, model.network.output)
    predicted = probabilities.argmax(axis=1)
    k = max(len(dataset.classes), 2)
    counts = metrics.confusion(y.astype(np.int64), predicted, k)
    wrong = np.flatnonzero(predicted != y)
    loss = -np.log(np.clip(probabilities[np.arange(len(y)), y], 1e-300, None))
    order = wrong[np.argsort(-loss[wrong], kind="stable")]
    names = np.array(dataset.classes, dtype=object)
    ranked = _frame({"rank": np.arange(1, len(order) + 1), "row": rows[order],
                     "true": names[y[order]], "predicted": names[predicted[order]],
                     "probability": probabilities[order, predicted[order]],
                     "loss": loss[order]}, features, order, dataset.features)
    return ErrorAnalysis(Path(run_dir), split, dataset.task, list(dataset.classes), len(y),
                         len(wrong) / len(y), counts, _per_class(counts, dataset.classes),
                         ranked, image_shape, raw[order] if image_shape else None)


def _probabilities(Z: np.ndarray, output: str) -> np.ndarray:
    """(m, K) class probabilities from logits: σ for one sigmoid unit, softmax otherwise."""
    if output == "sigmoid":
        p = 0.5 * (1 + np.tanh(0.5 * Z[:, 0]))  # σ without overflow
        return np.column_stack([1 - p, p])
    shifted = np.exp(Z - Z.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _regression(run_dir, split, Z, y, rows, features, dataset) -> ErrorAnalysis:
    target = np.asarray(y, dtype=np.float64).reshape(Z.shape)
    residual = Z - target
    size = np.sqrt(np.mean(residual ** 2, axis=1))  # one number per example, any output count
    order = np.argsort(-size, kind="stable")
    columns = {"rank": np.arange(1, len(order) + 1), "row": rows[order]}
    suffixes = [""] if Z.shape[1] == 1 else [f"_{j + 1}" for j in range(Z.shape[1])]
    for j, suffix in enumerate(suffixes):
        columns[f"true{suffix}"] = target[order, j]
        columns[f"predicted{suffix}"] = Z[order, j]
        columns[f"residual{suffix}"] = residual[order, j]
    ranked = _frame(columns, features, order, dataset.features)
    return ErrorAnalysis(run_dir, split, "regression", [], len(Z),
                         float(np.sqrt(np.mean(residual ** 2))), None, None, ranked, None)


def _frame(columns: dict, features, order, names):
    import pandas as pd

    frame = pd.DataFrame(columns)
    if features is not None:
        frame = pd.concat([frame, pd.DataFrame(features[order], columns=list(names))], axis=1)
    frame["tag"] = ""
    return frame


def _per_class(counts: np.ndarray, classes: list[str]):
    import pandas as pd

    precision, recall, f1 = metrics.f1_scores(counts)
    actual = counts.sum(axis=1)
    errors = actual - np.diag(counts)
    return pd.DataFrame({"class": classes, "examples": actual, "errors": errors,
                         "error": np.divide(errors, actual, out=np.zeros(len(actual)),
                                            where=actual > 0),
                         "precision": precision, "recall": recall, "f1": f1})


# --- errors.csv ---------------------------------------------------------------------------------

def save_table(analysis: ErrorAnalysis) -> tuple[Path, bool]:
    """Write the ranked examples to errors.csv (errors-SPLIT.csv for another split), atomically;
    (path, written). A file that already holds tags is the user's work and is left as it is."""
    path = analysis.table_path()
    if path.is_file():
        try:
            if read_tags_column(path).str.strip().ne("").any():
                return path, False
        except DataError:
            pass  # unreadable or not ours: replaced by a good table
    buffer = io.StringIO()
    analysis.ranked.to_csv(buffer, index=False, float_format="%.6g")
    layout.write_atomic(path, buffer.getvalue().encode("utf-8"))
    return path, True


def read_tags_column(path: Path):
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a readable CSV file ({type(error).__name__})") from None
    if "tag" not in frame.columns:
        raise DataError(f"{path}: no 'tag' column")
    return frame["tag"]


# --- the tags table -----------------------------------------------------------------------------

@dataclass
class TagRow:
    tag: str
    count: int  # misclassified examples carrying the tag
    share: float  # of the misclassified examples
    ceiling: float  # the split's error once every example of the tag is fixed, at best


def ceiling(error: float, share: float) -> float:
    """The lowest error fixing a category can reach: it removes at most its share of the errors."""
    return error * (1 - share)


def split_tags(cell: str) -> list[str]:
    """The tags of one cell, "blurry; dark" or "blurry|dark", without blanks or repeats."""
    for separator in TAG_SEPARATORS[1:]:
        cell = cell.replace(separator, TAG_SEPARATORS[0])
    return list(dict.fromkeys(t.strip() for t in cell.split(TAG_SEPARATORS[0]) if t.strip()))


def tag_table(analysis: ErrorAnalysis, path: str | Path) -> tuple[list[TagRow], int]:
    """(one row per tag, largest share first; the number of untagged misclassified examples)
    from a tags file, which must be this analysis's errors.csv with its tag column filled in."""
    import pandas as pd

    path = Path(path)
    if analysis.task == "regression":
        raise DataError(f"--tags: {analysis.run_dir} is a regression run; tags count "
                        "misclassified examples, and a regression has residuals instead")
    if not path.is_file():
        raise DataError(f"--tags: {path}: no such file")
    read_tags_column(path)  # a readable CSV with a tag column
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    expected = list(analysis.ranked.columns)
    if sorted(frame.columns) != sorted(expected):
        extra = [c for c in frame.columns if c not in expected]
        missing = [c for c in expected if c not in frame.columns]
        detail = "; ".join(part for part in (
            f"unexpected {', '.join(map(repr, extra))}" if extra else "",
            f"missing {', '.join(map(repr, missing))}" if missing else "") if part)
        raise DataError(f"--tags: {path}: not the columns of this run's errors table ({detail}); "
                        f"tag the file `dlrun errors {analysis.run_dir}` wrote")
    ours = {(str(r), t, p) for r, t, p in analysis.ranked[["row", "true", "predicted"]]
            .astype(str).itertuples(index=False)}
    theirs = [(r.strip(), t.strip(), p.strip()) for r, t, p in
              frame[["row", "true", "predicted"]].itertuples(index=False)]
    unknown = next((row for row in theirs if row not in ours), None)
    if unknown is not None or len(set(theirs)) != len(theirs) or set(theirs) != ours:
        what = (f"row {unknown[0]} (true {unknown[1]}, predicted {unknown[2]}) is not one of "
                "its misclassified examples" if unknown is not None else
                f"it has {len(set(theirs))} distinct rows of the {len(ours)} misclassified "
                "examples")
        raise DataError(f"--tags: {path}: {what} on the {analysis.split} split; tag the file "
                        f"`dlrun errors {analysis.run_dir} --split {analysis.split}` wrote")
    counts: dict[str, int] = {}
    untagged = 0
    for cell in frame["tag"]:
        tags = split_tags(cell)
        untagged += not tags
        for tag in tags:
            counts[tag] = counts.get(tag, 0) + 1
    total = max(len(ours), 1)
    rows = [TagRow(tag, n, n / total, ceiling(analysis.error, n / total))
            for tag, n in counts.items()]
    return sorted(rows, key=lambda row: (-row.count, row.tag)), untagged


# --- figures ------------------------------------------------------------------------------------

def draw_confusion(analysis: ErrorAnalysis, path: Path) -> Path:
    """The confusion matrix, each cell with its count and its share of the true class (the row)."""
    from matplotlib.figure import Figure

    counts = analysis.confusion
    k = len(counts)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = min(max(3.2, 0.6 * k + 1.8), 14)
    fig = Figure(figsize=(side + 1.2, side), dpi=100)
    axis = fig.add_subplot()
    image = axis.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label="share of the true class")
    size = "medium" if k <= 6 else "small" if k <= 12 else "x-small"
    for i in range(k):
        for j in range(k):
            text = f"{counts[i, j]}\n{100 * rates[i, j]:.0f}%" if counts[i, j] else "0"
            axis.text(j, i, text, ha="center", va="center", fontsize=size,
                      color="white" if rates[i, j] > 0.5 else "black" if counts[i, j] else "0.6")
    axis.set_xticks(range(k), analysis.classes, rotation=45 if k > 6 else 0)
    axis.set_yticks(range(k), analysis.classes)
    axis.set(xlabel="predicted class", ylabel="true class",
             title=f"{analysis.split}: {analysis.misclassified} of {analysis.examples} wrong "
                   f"({100 * analysis.error:.2f}%)")
    fig.tight_layout()
    return _save(fig, path)


def draw_examples(analysis: ErrorAnalysis, path: Path, top: int) -> Path:
    """The `top` worst examples as images (features reshaped to data.augment.image_shape)."""
    from matplotlib.figure import Figure

    shown = min(top, len(analysis.ranked))
    columns = min(shown, 8)
    lines = -(-shown // columns)
    fig = Figure(figsize=(1.5 * columns, 1.75 * lines + 0.4), dpi=100)
    shape = analysis.image_shape
    for index in range(shown):
        axis = fig.add_subplot(lines, columns, index + 1)
        image = analysis.images[index].reshape(shape)
        low, high = float(image.min()), float(image.max())
        image = (image - low) / (high - low) if high > low else np.zeros_like(image)
        axis.imshow(image, cmap="gray" if len(shape) == 2 else None, interpolation="nearest")
        row = analysis.ranked.iloc[index]
        axis.set_title(f"#{row['row']} {row['true']}→{row['predicted']}\n"
                       f"p={row['probability']:.2f}", fontsize="x-small")
        axis.axis("off")
    fig.suptitle(f"{analysis.split}: the {shown} misclassified examples with the largest loss",
                 fontsize="small")
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    layout.write_atomic(path, buffer.getvalue())
    return path


# --- the command --------------------------------------------------------------------------------

@dataclass
class Report:
    analysis: ErrorAnalysis
    written: list[Path]  # files written into the run directory
    kept: Path | None  # errors.csv left alone: it already holds the user's tags
    tags: tuple[list[TagRow], int] | None  # tag_table() of --tags
    disagreement: str | None = None  # why the counts differ from summary.json's, if they do


def report(run_dir: str | Path, split: str = "dev", top: int = 10,
           tags: str | Path | None = None) -> Report:
    """`dlrun errors`: analyse, write errors.csv and the figures, and count the tags if given."""
    analysis = analyse(run_dir, split)
    counted = tag_table(analysis, tags) if tags is not None else None
    path, saved = save_table(analysis)
    written, kept = ([path], None) if saved else ([], path)
    suffix = "" if split == "dev" else f"-{split}"
    if analysis.confusion is not None:
        written.append(draw_confusion(analysis, analysis.run_dir / f"confusion{suffix}.png"))
    if analysis.images is not None and analysis.misclassified:
        written.append(draw_examples(analysis, analysis.run_dir / f"errors{suffix}.png", top))
    return Report(analysis, written, kept, counted, disagreement(analysis))


def disagreement(analysis: ErrorAnalysis) -> str | None:
    """A note when the error found here is not the one the run recorded: its data file or its
    parameters changed after training, so the examples listed are not the ones it scored."""
    from ..rundir import reader

    try:
        recorded = (reader.read_summary(analysis.run_dir).get("final") or {}) \
            .get(analysis.split, {}).get("error")
    except RunDirError:
        return None
    if not isinstance(recorded, (int, float)) or abs(recorded - analysis.error) <= 1e-6:
        return None
    return (f"the {analysis.split} error here, {analysis.error:.4g}, is not the {recorded:.4g} in "
            f"{layout.SUMMARY}: the data or the parameters changed after training")
