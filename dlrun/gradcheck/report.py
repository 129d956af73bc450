"""How `dlrun gradcheck` shows what it found: rich tables for people, JSON for scripts."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .check import (
    MAX_EPSILON,
    PASS_BELOW,
    RESOLUTION,
    TRUNCATED,
    VERDICTS,
    WARN_BELOW,
    WHOLE,
    Check,
    Report,
    Row,
    Stage,
)

STYLES = {"pass": "green", "uncheckable": "cyan", "warn": "yellow", "fail": "bold red"}
LEGEND = (f"pass below {PASS_BELOW:.0e} · warn below {WARN_BELOW:.0e} · fail above; "
          "cost = loss + penalty. "
          "rounding, truncation: the difference is what float64 rounding of J, or the step's "
          "own O(ε²) error (estimated from the difference at 2ε), makes; ε x: an array rounding "
          "hid was checked again with that larger step; uncheckable: at every step tried "
          f"rounding ({RESOLUTION}) or truncation hides differences of {WARN_BELOW:.0e}, so a "
          "wrong gradient could pass; kink: ±ε switched a ReLU on or off, those entries are "
          "left out.")
MAX_LISTED = 20  # networks listed by name in the engine sweep's table of what did not pass


@contextmanager
def progress_bar(console: Console) -> Iterator:
    """A bar over the entries (or networks) checked, shown only on a terminal and then erased."""
    progress = Progress("[bold]checking gradients", BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=True,
                        disable=not console.is_terminal)
    bar = progress.add_task("check", total=None)
    with progress:
        yield lambda completed, total: progress.update(bar, completed=completed, total=total)


def to_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2, allow_nan=False)


def show(report: Report, console: Console) -> None:
    if report.mode == "config":
        for stage in report.checks[0].stages:
            console.print(stage_table(report.checks[0], stage, report.settings))
    else:
        console.print(factor_table(report))
        found = not_passing(report)
        if found:
            console.print(not_passing_table(found))
        unchecked = not_checkable(report)
        if unchecked:
            console.print(not_checkable_table(unchecked))
    console.print(LEGEND, style="dim", highlight=False)
    console.print(conclusion(report), highlight=False)


def _verdict(row: Row) -> Text:
    text = Text(row.verdict, style=STYLES[row.verdict])
    if row.note:
        text.append(f" ({row.note})", style="dim")
    return text


def _number(value: float) -> str:
    return f"{value:.6g}"


def stage_table(check: Check, stage: Stage, settings: dict) -> Table:
    """One row per parameter array and one for the whole vector, per term of the cost."""
    several_terms = len({row.term for row in stage.rows}) > 1
    sampled = any(row.checked < row.size for row in stage.rows)
    sizes = "-".join(str(n) for n in check.network["sizes"])
    table = Table(title=f"{check.network['name']} [{sizes}] {stage.label}: "
                        f"{settings['batch']} examples, ε = {settings['epsilon']:g}, float64",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    if several_terms:
        table.add_column("term")
    table.add_column("parameter", no_wrap=True)
    if sampled:
        table.add_column("checked", justify="right")
    table.add_column("rel. diff", justify="right")
    table.add_column("worst entry", no_wrap=True)
    table.add_column("analytic", justify="right")
    table.add_column("numeric", justify="right")
    table.add_column("verdict")
    previous = None
    for row in stage.rows:
        if several_terms and previous is not None and row.term != previous:
            table.add_section()
        whole = row.name == WHOLE
        cells = [row.term if row.term != previous else ""] if several_terms else []
        shape = "×".join(str(n) for n in row.shape)
        cells.append(f"θ ({shape})" if whole else f"{row.name} ({shape})")
        if sampled:
            cells.append(f"{row.checked}/{row.size}")
        cells += [f"{row.relative_difference:.1e}", row.worst, _number(row.analytic),
                  _number(row.numeric), _verdict(row)]
        table.add_row(*cells, style="bold" if whole else None)
        previous = row.term
    return table


def _reason(row: Row) -> str:
    if row.verdict == "fail":
        return "fail"
    if "kink" in row.note:
        return "kink"
    if row.verdict == "uncheckable":
        return f"not checkable ({TRUNCATED if TRUNCATED in row.note else RESOLUTION})"
    return f"difference above {PASS_BELOW:.0e}"


def factor_table(report: Report) -> Table:
    """Verdicts of the engine sweep's networks, counted by each value of each factor."""
    settings = report.settings
    points = "at initialization" + (f" and after {settings['after_steps']} training steps"
                                    if settings["after_steps"] else "")
    table = Table(title=f"Engine sweep: {len(report.checks)} networks "
                        f"[{settings['n_features']}-{'-'.join(map(str, settings['hidden_layers']))}-k], "
                        f"{settings['batch']} examples, ε = {settings['epsilon']:g}, float64, {points}",
                  title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("factor", "value", "networks", *VERDICTS):
        table.add_column(column, justify="right" if column in ("networks", *VERDICTS) else "left")
    factors = list(report.checks[0].network) if report.checks else []
    for n, factor in enumerate(factors):
        if n:
            table.add_section()
        values = dict.fromkeys(check.network[factor] for check in report.checks)
        for k, value in enumerate(values):
            counts = Counter(check.verdict for check in report.checks
                             if check.network[factor] == value)
            shown = ("yes" if value else "no") if isinstance(value, bool) else str(value)
            table.add_row(factor.replace("_", " ") if k == 0 else "", shown,
                          str(sum(counts.values())),
                          *[Text(str(counts[v]), style=STYLES[v] if counts[v] else "dim")
                            for v in VERDICTS])
    return table


def _label(network: dict) -> str:
    return " · ".join([network["activation"], network["output"], network["init"],
                       network["penalty"], "batch norm" if network["batch_norm"] else "no bn",
                       "dropout" if network["dropout"] else "no dropout"])


def _worst_row(stage: Stage) -> Row:
    """The array the stage's verdict comes from (the whole vector when no single array does)."""
    arrays = [row for row in stage.rows if row.name != WHOLE]
    if not any(row.verdict == stage.verdict for row in arrays):
        arrays = stage.rows
    return max(arrays, key=lambda row: (VERDICTS.index(row.verdict), row.relative_difference))


def not_passing(report: Report) -> list[tuple[Check, Stage, Row]]:
    """The worst array of every network and point that did not pass, failures first; points
    that are only not checkable are counted in the conclusion instead."""
    found = [(check, stage, _worst_row(stage)) for check in report.checks
             for stage in check.stages if stage.verdict not in ("pass", "uncheckable")]
    return sorted(found, key=lambda item: (-VERDICTS.index(item[2].verdict),
                                           -item[2].relative_difference))


def not_passing_table(found: list[tuple[Check, Stage, Row]]) -> Table:
    more = len(found) - MAX_LISTED
    table = Table(title="Not passing (the worst array of each)", title_justify="left",
                  caption=f"and {more} more: --format json lists every row" if more > 0 else None,
                  caption_justify="left", box=box.SIMPLE_HEAD)
    for column in ("network", "point", "term", "parameter", "rel. diff", "verdict"):
        table.add_column(column, justify="right" if column == "rel. diff" else "left")
    for check, stage, row in found[:MAX_LISTED]:
        table.add_row(_label(check.network), stage.label, row.term, row.name,
                      f"{row.relative_difference:.1e}", _verdict(row))
    return table


def not_checkable(report: Report) -> list[tuple[Check, Stage, Row]]:
    """Every array of the sweep that could not be checked, with the network and point."""
    return [(check, stage, row) for check in report.checks for stage in check.stages
            for row in stage.rows if row.verdict == "uncheckable" and row.name != WHOLE]


def not_checkable_table(found: list[tuple[Check, Stage, Row]]) -> Table:
    """Arrays whose gradient float64 differences cannot resolve: neither passed nor failed."""
    more = len(found) - MAX_LISTED
    table = Table(title=f"Not checkable: at no step from ε to {MAX_EPSILON:g} is the tolerance "
                        f"under {WARN_BELOW:.0e}; rounding of J hides a gradient this small, or "
                        "the step's own truncation error does", title_justify="left",
                  caption=f"and {more} more: --format json lists every row" if more > 0 else None,
                  caption_justify="left", box=box.SIMPLE_HEAD)
    for column in ("network", "point", "array", "largest entry", "tolerance", "hidden by"):
        table.add_column(column, justify="right" if column == "tolerance" else "left")
    for check, stage, row in found[:MAX_LISTED]:
        table.add_row(_label(check.network), stage.label, f"{row.name} ({row.term})",
                      f"{row.worst} = {row.analytic:.2g}",
                      f"{row.rounding_floor + row.truncation:.1e} at ε {row.epsilon:g}",
                      "truncation" if TRUNCATED in row.note else "rounding")
    return table


def conclusion(report: Report) -> Text:
    """One line: the verdict, what it rests on and, on failure, which arrays are wrong."""
    verdict = report.verdict
    text = Text(verdict, style=STYLES[verdict])
    entries = sum(row.checked for check in report.checks for stage in check.stages
                  for row in stage.rows if row.name == WHOLE and row.term == stage.rows[0].term)
    points = sum(len(check.stages) for check in report.checks)
    if report.mode == "config":
        flagged = {v: [f"{row.name} ({row.term}{', ' + row.note if row.note else ''}) "
                       f"{stage.label}" for stage in report.checks[0].stages
                       for row in stage.rows if row.verdict == v and row.name != WHOLE]
                   for v in ("uncheckable", "warn", "fail")}
        if flagged["fail"]:
            text.append(f": backpropagation disagrees with J for {', '.join(flagged['fail'])}")
        elif flagged["warn"]:
            text.append(f": no gradient disagrees with J by {WARN_BELOW:.0e} or more; "
                        f"warnings for {', '.join(flagged['warn'])}")
        elif flagged["uncheckable"]:
            text.append(f": no gradient disagrees with J; not checkable in float64 (rounding or "
                        f"truncation hide {WARN_BELOW:.0e}): {', '.join(flagged['uncheckable'])}")
        else:
            text.append(": every gradient agrees with two-sided differences of J")
    else:
        counts = Counter(check.verdict for check in report.checks)
        text.append(f": {counts['pass']} of {len(report.checks)} networks pass, "
                    f"{counts['warn']} warn, {counts['fail']} fail")
        if counts["uncheckable"]:
            text.append(f", {counts['uncheckable']} not checkable even at ε {MAX_EPSILON:g}")
        reasons = Counter(_reason(_worst_row(stage)) for check in report.checks
                          for stage in check.stages if stage.verdict != "pass")
        if reasons:
            text.append("; points not passing: " + ", ".join(
                f"{count} {reason}" for reason, count in reasons.most_common()))
    text.append(f" ({entries} entries at {points} point{'s' * (points > 1)}, "
                f"{report.seconds:.2f} s)", style="default")
    return text
