"""`dlrun errors` for people: the confusion matrix, per-class figures, the worst examples and the
tag table, as rich tables."""

from __future__ import annotations

from rich.table import Table

from .error_table import Report

FEATURES_SHOWN = 4  # feature columns beside each example; errors.csv has them all


def _percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def confusion_table(report: Report) -> Table:
    analysis = report.analysis
    table = Table(title=f"confusion on {analysis.split}", title_justify="left")
    table.add_column("true \\ predicted")
    for name in analysis.classes:
        table.add_column(name, justify="right")
    for i, (name, row) in enumerate(zip(analysis.classes, analysis.confusion)):
        cells = [f"[bold]{n}[/bold]" if i == j else (f"[red]{n}[/red]" if n else "0")
                 for j, n in enumerate(row)]
        table.add_row(name, *cells)
    return table


def class_table(report: Report) -> Table:
    table = Table(title="per class", title_justify="left")
    for column in ("class", "examples", "errors", "error", "precision", "recall", "F1"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in report.analysis.per_class.itertuples(index=False):
        table.add_row(str(row[0]), str(row[1]), str(row[2]), _percent(row[3]),
                      f"{row[4]:.3f}", f"{row[5]:.3f}", f"{row[6]:.3f}")
    return table


def examples_table(report: Report, top: int) -> Table:
    analysis = report.analysis
    frame = analysis.ranked.head(top)
    regression = analysis.task == "regression"
    title = (f"the {len(frame)} largest residuals" if regression else
             f"the {len(frame)} misclassified examples with the largest loss")
    table = Table(title=title, title_justify="left")
    fixed = [c for c in frame.columns if c not in ("tag",)]
    named = {"rank", "row", "true", "predicted", "probability", "loss"} if not regression else \
        {c for c in fixed if c in ("rank", "row") or c.startswith(("true", "predicted", "residual"))}
    columns = [c for c in fixed if c in named]
    features = [c for c in fixed if c not in named]
    shown = features[:FEATURES_SHOWN]
    for column in columns + shown:
        table.add_column(column, justify="right", overflow="fold")
    if len(features) > len(shown):
        table.add_column(f"+{len(features) - len(shown)} features", justify="left")
    for _, row in frame.iterrows():
        cells = [_cell(row[c]) for c in columns + shown]
        if len(features) > len(shown):
            cells.append("…")
        table.add_row(*cells)
    return table


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def tags_table(report: Report) -> Table:
    analysis = report.analysis
    rows, untagged = report.tags
    total = analysis.misclassified
    table = Table(title=f"error analysis: {total} misclassified {analysis.split} examples, "
                        f"{analysis.split} error {_percent(analysis.error)}",
                  title_justify="left", caption=f"untagged: {untagged} of {total}; a row may "
                  "carry several tags", caption_justify="left")
    for column in ("tag", "examples", "share of the errors", "dev error at best"
                   if analysis.split == "dev" else f"{analysis.split} error at best"):
        table.add_column(column, justify="left" if column == "tag" else "right")
    for row in rows:
        table.add_row(row.tag, str(row.count), _percent(row.share), _percent(row.ceiling))
    return table


def render(report: Report, console, top: int) -> None:
    analysis = report.analysis
    if analysis.task == "regression":
        console.print(f"{analysis.split}: {analysis.examples} examples, RMSE {analysis.error:.4g}",
                      highlight=False)
    else:
        console.print(f"{analysis.split}: {analysis.misclassified} of {analysis.examples} "
                      f"misclassified ({_percent(analysis.error)} error)", highlight=False)
        console.print(confusion_table(report))
        console.print(class_table(report))
    if len(analysis.ranked):
        console.print(examples_table(report, top))
    if report.tags is not None:
        console.print(tags_table(report))
    if report.disagreement:
        console.print(f"[yellow]warning:[/yellow] {report.disagreement}", highlight=False)
    for path in report.written:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)
    if report.kept is not None:
        console.print(f"kept {report.kept}: it holds your tags (remove it to write a fresh one)",
                      highlight=False, soft_wrap=True)
    elif report.tags is None and analysis.misclassified:
        console.print(f"tag the examples in the tag column, then: dlrun errors {analysis.run_dir}"
                      f"{'' if analysis.split == 'dev' else ' --split ' + analysis.split} "
                      f"--tags {analysis.table_path()}", highlight=False, soft_wrap=True)
