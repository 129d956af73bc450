"""A diagnosis for people: rich tables in the terminal and the same content as diagnosis.md."""

from __future__ import annotations

from .bias_variance import ERROR_LABELS, format_bayes, format_error

GAP_LABELS = {"avoidable_bias": "avoidable bias", "variance": "variance",
              "data_mismatch": "data mismatch", "dev_overfitting": "dev overfitting"}
CHECK_LABELS = {"divergence": "divergence", "cost_decrease": "cost decrease (full-batch GD)",
                "oscillation": "oscillation", "plateau": "plateau",
                "gradients": "vanishing/exploding gradients", "early_stopping": "early stopping",
                "symmetry": "symmetry", "dead_relu": "dead ReLU units",
                "saturation": "saturated units"}
STATUS_STYLE = {"ok": "green", "warning": "yellow", "problem": "bold red", "skipped": "dim"}


def _auto(diagnosis: dict) -> bool:
    return diagnosis.get("human_error") == "auto"


def _labels(diagnosis: dict) -> dict[str, str]:
    """The split labels, with the estimated Bayes error in place of a human-level error."""
    if not _auto(diagnosis):
        return ERROR_LABELS
    bounds = (diagnosis["bayes_error"] or {}).get("lower") is not None
    return {**ERROR_LABELS, "human": "Bayes upper bound" if bounds else "Bayes"}


def error_rows(diagnosis: dict) -> list[tuple[str, str]]:
    task, rows = diagnosis["task"], []
    for name, value in diagnosis["errors"].items():
        if name == "human" and _auto(diagnosis):
            rows.append(("Bayes (estimated)", format_bayes(diagnosis["bayes_error"] or {}, task)))
        elif value is not None:
            rows.append((ERROR_LABELS[name], format_error(value, task)))
    return rows


def bayes_line(diagnosis: dict) -> str | None:
    """How the Bayes error of `human_error: auto` was estimated, or why it was not."""
    if not _auto(diagnosis):
        return None
    bayes = diagnosis["bayes_error"] or {}
    how = bayes.get("method") or bayes.get("reason") or "not estimated"
    return f"Bayes error {format_bayes(bayes, diagnosis['task'])}: {how}"


def gap_rows(diagnosis: dict) -> list[tuple[str, str, str, str]]:
    """(gap with its formula, value, threshold, judgement) for every gap that could be computed."""
    task, rows, labels = diagnosis["task"], [], _labels(diagnosis)
    for name, gap in diagnosis["gaps"].items():
        if gap is None:
            continue
        larger, smaller = (labels[split] for split in gap["from"])
        if name == "dev_overfitting":
            judged = "reported only" + (" (significant)" if gap["significant"] else "")
        elif gap["limiting"]:
            judged = "limiting"
        else:
            judged = "significant, not limiting" if gap["significant"] else "small"
        rows.append((f"{GAP_LABELS[name]} ({larger} − {smaller})", format_error(gap["value"], task),
                     format_error(gap["threshold"], task), judged))
    return rows


def check_rows(diagnosis: dict) -> list[tuple[str, str, str]]:
    checks = {**diagnosis["dynamics"], **diagnosis["units"]["checks"]}
    return [(CHECK_LABELS.get(name, name), found["status"], found["message"])
            for name, found in checks.items()]


def unit_rows(diagnosis: dict) -> list[tuple[str, ...]]:
    rows = []
    for layer in diagnosis["units"]["layers"]:
        saturated = layer.get("saturated_share")
        rows.append((str(layer["layer"]), layer["activation"], str(layer["units"]),
                     str(layer["distinct"]),
                     "-" if layer.get("dead") is None else str(layer["dead"]),
                     "-" if saturated is None else f"{100 * saturated:.3g}%"))
    return rows


def headline(diagnosis: dict) -> str:
    verdict = diagnosis["verdict"] or "no verdict"
    if len(diagnosis["problems"]) > 1:
        verdict += f" (the largest gap: {GAP_LABELS[diagnosis['limiting']]})"
    if diagnosis.get("caveat") and diagnosis["verdict"]:
        verdict += f"; {diagnosis['caveat']}"
    return verdict


def units_title(diagnosis: dict) -> str:
    measured = diagnosis["units"]
    if not measured["source"]:
        return f"Hidden units: not measured ({measured['reason']})"
    return (f"Hidden units over the {measured['split']} data ({measured['examples']} examples; "
            f"{measured['source']})")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """A markdown table; a | inside a cell would end it early."""
    cells = [[str(cell).replace("|", "\\|") for cell in row] for row in rows]
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(row) + " |" for row in cells] + [""])


def markdown(diagnosis: dict) -> str:
    """diagnosis.md: the verdict, its evidence and what to try next."""
    lines = [f"# Diagnosis of {diagnosis['run']} ({diagnosis['status']})", "",
             f"**Verdict: {headline(diagnosis)}**", "",
             *[f"Note: {note}\n" for note in diagnosis.get("notes", [])], "## Error analysis", "",
             f"Errors from {diagnosis['errors_from']}.", ""]
    lines += _table(("split", "error"), error_rows(diagnosis))
    lines += [f"{bayes_line(diagnosis)}.", ""] if bayes_line(diagnosis) else []
    lines += _table(("gap", "value", "threshold", "judgement"), gap_rows(diagnosis))
    lines += [f"- {reason}" for reason in diagnosis["reasons"]] + ["", "## Training", ""]
    lines += _table(("check", "result", "finding"), check_rows(diagnosis))
    lines += [f"## {units_title(diagnosis)}", ""]
    if diagnosis["units"]["layers"]:
        lines += _table(("layer", "activation", "units", "distinct", "dead", "saturated"),
                        unit_rows(diagnosis))
    lines += ["## What to try next", ""]
    if not diagnosis["recommendations"]:
        lines += ["Nothing stands out: the run fits as well as its thresholds ask.", ""]
    for number, advice in enumerate(diagnosis["recommendations"], start=1):
        gap = ("" if advice["gap"] is None
               else f" (gap {format_error(advice['gap'], diagnosis['task'])})")
        lines.append(f"{number}. **{advice['problem']}**{gap}: {advice['evidence']}")
        lines += [f"   - {action}" for action in advice["actions"]]
    settings = ", ".join(f"{key} {value:g}" if isinstance(value, (int, float)) else
                         f"{key} {value}" for key, value in diagnosis["settings"].items())
    lines += ["", f"Thresholds (the diagnose section of config.yaml): {settings}.", ""]
    return "\n".join(lines)


def render(diagnosis: dict, console) -> None:
    """The diagnosis as rich tables on `console`."""
    from rich.markup import escape
    from rich.table import Table

    def table(title, header, rows, styles=None):
        grid = Table(title=escape(title), title_justify="left")
        for i, column in enumerate(header):
            grid.add_column(column, justify="right" if i and column in ("error", "value",
                            "threshold", "units", "distinct", "dead", "saturated") else "left",
                            overflow="fold")
        for i, row in enumerate(rows):
            grid.add_row(*(escape(cell) for cell in row), style=styles[i] if styles else None)
        return grid

    console.print(f"[bold]{escape(diagnosis['run'])}[/bold] \\[{diagnosis['status']}]  verdict: "
                  f"[bold magenta]{headline(diagnosis)}[/bold magenta]", highlight=False)
    for note in diagnosis.get("notes", []):
        console.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False)
    console.print(table("Errors", ("split", "error"), error_rows(diagnosis)))
    if bayes_line(diagnosis):
        console.print(bayes_line(diagnosis), style="dim", markup=False, highlight=False)
    console.print(table("Gaps", ("gap", "value", "threshold", "judgement"), gap_rows(diagnosis)))
    for reason in diagnosis["reasons"]:
        console.print(f"  • {reason}", highlight=False, markup=False)
    checks = check_rows(diagnosis)
    console.print(table("Training", ("check", "result", "finding"), checks,
                        [STATUS_STYLE.get(status, "") for _, status, _ in checks]))
    if diagnosis["units"]["layers"]:
        console.print(table(units_title(diagnosis), ("layer", "activation", "units", "distinct",
                                                     "dead", "saturated"), unit_rows(diagnosis)))
    else:
        console.print(units_title(diagnosis), style="dim", markup=False)
    console.print("[bold]What to try next[/bold]")
    if not diagnosis["recommendations"]:
        console.print("  Nothing stands out: the run fits as well as its thresholds ask.")
    for number, advice in enumerate(diagnosis["recommendations"], start=1):
        gap = ("" if advice["gap"] is None
               else f" (gap {format_error(advice['gap'], diagnosis['task'])})")
        console.print(f"  {number}. [bold]{advice['problem']}[/bold]{gap}: "
                      f"{escape(advice['evidence'])}",
                      highlight=False)
        for action in advice["actions"]:
            console.print(f"       - {action}", highlight=False, markup=False)
