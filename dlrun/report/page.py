"""`dlrun report`: runs and sweeps as one self-contained HTML page that opens from disk with no
network (plotly.js and the data embedded): the runs' table as `dlrun compare` shows it, sortable
and filterable; their learning curves overlaid; each run's diagnosis and figures; for a sweep,
each hyperparameter against the dev metric, parallel coordinates and an importance ranking.

Plotly is an optional extra (pip install "dlrun[report]"), imported only here, only for its
plotly.js bundle."""

from __future__ import annotations

import base64
import html
import importlib.util
import json
import time
from pathlib import Path

from ..compare import collect, terminal
from ..compare.collect import NUMERIC, Comparison
from ..compare.plot import labels
from ..compare.view import cell, plain
from ..errors import DlrunError
from ..rundir import layout
from ..sweep.run import INFO, SPACE, load_space  # the sweep's own scales: log for loguniform
from . import figures, importance, markdown

DEV_METRIC = "dev_error"  # what runs are sorted by, unless a sweep recorded its own choice
SWEEP_REPORT = "report.html"  # the page `dlrun sweep` leaves in the sweep directory
MAX_FIGURES = 30  # runs whose boundary.png is embedded (the first in the table)
ASSETS = Path(__file__).with_name("assets")
NEEDS_PLOTLY = 'dlrun report needs plotly: pip install "dlrun[report]"'


class ReportError(DlrunError):
    """A report that cannot be written (no plotly, an unusable output path)."""


def plotly_js() -> str:
    try:
        from plotly.offline import get_plotlyjs  # lazy: plotly is an optional extra
    except ImportError:
        raise ReportError(NEEDS_PLOTLY) from None
    return get_plotlyjs()


def check_output(path: Path) -> None:
    if path.suffix.lower() not in (".html", ".htm"):
        raise ReportError(f"-o {path}: expected an .html file name")
    if not path.parent.is_dir():
        raise ReportError(f"-o {path}: directory {path.parent} does not exist")
    if path.is_dir():
        raise ReportError(f"-o {path}: is a directory; give a file name such as report.html")


def write(paths: list, output: Path, runs_dir: str | Path = "runs") -> tuple[Path, Comparison]:
    """Read the runs `paths` name (as `dlrun compare` does) and write the page to `output`."""
    output = Path(output)
    check_output(output)
    script = plotly_js()  # before any work: without plotly nothing is written
    order = sweep_optimize(paths[0]) if len(paths) == 1 else None
    comparison = collect.compare(paths, runs_dir, sort_by=order)
    page = render(comparison, script, title=", ".join(str(p) for p in paths),
                  order=order or DEV_METRIC)
    layout.write_atomic(output, page.encode("utf-8"))
    return output, comparison


def sweep_optimize(directory) -> str | None:
    """The metric a sweep directory ranked its trials by (its --optimize, in sweep.json); None
    for anything else, or a sweep that recorded none."""
    try:
        info = json.loads((Path(directory) / INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    optimize = info.get("optimize") if isinstance(info, dict) else None
    return optimize if isinstance(optimize, str) and optimize.lstrip("-") else None


def sweep_report_problem() -> str | None:
    """Why a sweep cannot get its report page (plotly missing), or None; cheap: plotly is not
    imported."""
    if importlib.util.find_spec("plotly.offline") is None:  # imports only plotly/__init__
        return f"no {SWEEP_REPORT} written: {NEEDS_PLOTLY}"
    return None


def for_sweep(directory: Path) -> tuple[Path | None, str | None]:
    """The report a sweep writes into its directory when it ends: (its path, None), or (None,
    why not) when plotly is missing or the page cannot be written; the sweep stands either way."""
    target = Path(directory) / SWEEP_REPORT
    try:
        write([directory], target, Path(directory).parent)
    except ReportError as error:
        return None, f"no {SWEEP_REPORT} written: {error}"
    except (DlrunError, OSError) as error:
        return None, f"could not write {target}: {error}"
    return target, None


def render(comparison: Comparison, script: str, title: str, order: str = DEV_METRIC) -> str:
    runs = run_views(comparison)
    sweeps = sweep_views(comparison)
    data = {"curves": figures.curves_figure(runs),
            "runs": [{"name": r["name"], "curves": r["curves"],
                      "log": figures.spans_decades([r["curves"]])} for r in runs],
            "sweeps": [{"params": figures.parameter_figure(s), "parallel":
                        figures.parallel_figure(s), "importance":
                        figures.importance_figure(s["importance"])} for s in sweeps]}
    body = [_header(comparison, title, len(sweeps), order), _table(comparison, runs), _curves_section()]
    body += [_sweep_section(i, s) for i, s in enumerate(sweeps)]
    body.append(_details(runs))
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>dlrun report: {html.escape(title)}</title>"
            f"<style>{(ASSETS / 'report.css').read_text()}</style>"
            f"<script>{script}</script></head>\n<body>\n" + "\n".join(body)
            + f"\n<script type=\"application/json\" id=\"report-data\">{payload}</script>"
            f"\n<script>{(ASSETS / 'report.js').read_text()}</script>\n</body></html>\n")


def run_views(comparison: Comparison) -> list[dict]:
    """Per row: name, legend label, thinned curves, diagnosis (HTML) and embedded figures."""
    found = []
    for number, (row, label) in enumerate(zip(comparison.table.to_dict("records"),
                                              labels(comparison))):
        paths = row["path"] if isinstance(row["path"], list) else [row["path"]]
        record = comparison.records[paths[0]]
        found.append({"name": row["run"], "label": label, "path": paths[0],
                      "status": row["status"], "curves": figures.curve_data(record.metrics),
                      "diagnosis": _diagnosis(record),
                      "images": _images(record.path) if number < MAX_FIGURES else []})
    return found


def _diagnosis(record) -> str:
    text = _read(record.path / "diagnosis.md")
    if text:
        return markdown.to_html(text)
    verdict = collect._dig(record.summary, "bias_variance", "verdict")
    if verdict:
        return (f"<p><b>Verdict: {html.escape(str(verdict))}</b> (from summary.json; "
                "<code>dlrun diagnose</code> writes the full diagnosis)</p>")
    return "<p>No diagnosis: <code>dlrun diagnose RUN</code> writes one.</p>"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _images(run_dir: Path) -> list[tuple[str, str]]:
    """boundary.png as a data URI; curves.png is left out, since the page redraws its curves
    from metrics.csv (a sweep's trials may have no figures at all)."""
    found = []
    for name in (layout.BOUNDARY,):
        try:
            data = (run_dir / name).read_bytes()
        except OSError:
            continue
        if data.startswith(b"\x89PNG"):
            found.append((name, "data:image/png;base64," + base64.b64encode(data).decode()))
    return found


def sweep_views(comparison: Comparison) -> list[dict]:
    """One entry per sweep with at least two trials among the rows: the trials' sampled values,
    the space's distributions, the dev metric and the importance ranking."""
    by_sweep: dict[Path, list] = {}
    for row in comparison.table.to_dict("records"):
        paths = row["path"] if isinstance(row["path"], list) else [row["path"]]
        record = comparison.records[paths[0]]
        values = collect._dig(record.summary, "sweep", "values")
        if isinstance(values, dict):
            by_sweep.setdefault(record.path.parent, []).append((row, values))
    return [_sweep(directory, trials) for directory, trials in by_sweep.items()
            if len(trials) >= 2]


def _sweep(directory: Path, trials: list) -> dict:
    distributions = _distributions(directory)
    keys = list(dict.fromkeys(k for _, values in trials for k in values))
    chosen = (sweep_optimize(directory) or DEV_METRIC).lstrip("-")  # what the sweep optimized
    metric = [plain(row.get(chosen)) for row, _ in trials]
    metric = [v if isinstance(v, (int, float)) and v == v and abs(v) != float("inf") else None
              for v in metric]
    complete = [i for i, (_, values) in enumerate(trials) if all(k in values for k in keys)]
    values = {k: [trials[i][1][k] for i in complete] for k in keys}
    metric = [metric[i] for i in complete]
    ranked = importance.rank(values, distributions,
                             [float("nan") if m is None else m for m in metric])
    return {"name": directory.name, "directory": str(directory), "values": values,
            "distributions": distributions, "metric": chosen, "metric_values": metric,
            "trials": [trials[i][0]["run"] for i in complete], "importance": ranked}


def _distributions(directory: Path) -> dict:
    try:
        space = load_space(directory / SPACE)
    except DlrunError:
        return {}
    return {p.key: p.distribution for p in space.parameters}


def _header(comparison: Comparison, title: str, sweeps: int, order: str) -> str:
    descending = " (highest first)" if order.startswith("-") else ""
    return (f"<header><h1>dlrun report</h1><p>{len(comparison.table)} runs from "
            f"<code>{html.escape(title)}</code>, written {time.strftime('%Y-%m-%d %H:%M')}. "
            f"Sorted by {html.escape(order.lstrip('-').replace('_', ' '))}{descending}; click a "
            "column to sort, type to filter.</p>"
            "<nav><a href=\"#runs\">runs</a> · <a href=\"#curves\">learning curves</a>"
            + "".join(f" · <a href=\"#sweep-{i}\">sweep {i + 1}</a>" for i in range(sweeps))
            + " · <a href=\"#details\">each run</a></nav></header>")


def _table(comparison: Comparison, runs: list[dict]) -> str:
    """The runs' table: compare's columns (name, status, results, differing config, the rest)
    with a number that is the run's label in every figure."""
    first, config, rest = terminal.ordered_columns(comparison)
    columns = [*first, *config, *rest]
    head = "<th data-type=\"number\">#</th>" + "".join(
        f"<th data-type=\"{'number' if c in NUMERIC else 'text'}\" title=\"{html.escape(c)}\">"
        f"{html.escape(h.replace('_', ' ') if c in collect.RESULTS else h)}</th>"
        for c, h in columns)
    rows = []
    for number, row in enumerate(comparison.table.to_dict("records")):
        cells = [f"<td data-v=\"{number + 1}\">{number + 1}</td>"]
        for column, _ in columns:
            text = html.escape(cell(comparison, row, column))
            value = plain(row.get(column))
            sort = f" data-v=\"{value}\"" if column in NUMERIC and value is not None else ""
            if column == "run":
                text = f"<a href=\"#run-{number + 1}\">{text}</a>"
            elif column == "status":
                text = f"<span class=\"status {html.escape(str(value))}\">{text}</span>"
            cells.append(f"<td{sort}>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return ("<section id=\"runs\"><h2>Runs</h2><p class=\"tools\"><input id=\"filter\" "
            "type=\"search\" placeholder=\"filter: words every shown row contains, e.g. adam "
            "completed\"> <span id=\"shown\"></span></p><div class=\"scroll\"><table "
            f"id=\"runs-table\"><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
            "</table></div><p class=\"note\">train/dev figures at the best epoch; config "
            "columns are the keys that differ between the runs.</p></section>")


def _curves_section() -> str:
    return ("<section id=\"curves\"><h2>Learning curves</h2><p class=\"note\">Hover for values; "
            f"click a run in the legend to hide or show it (the first {figures.VISIBLE} are "
            "shown); the buttons switch the axes between linear and log.</p>"
            "<div id=\"curves-plot\" class=\"plot\"></div></section>")


def _sweep_section(index: int, sweep: dict) -> str:
    method = html.escape(importance.METHOD)
    ranking = "".join(f"<tr><td>{html.escape(r['key'])}</td><td>{r['share']:.3f}</td>"
                      f"<td>{r['eta2']:.3f}</td><td>{r['groups']}</td></tr>"
                      for r in sweep["importance"])
    trials = sweep["importance"][0]["trials"] if sweep["importance"] else 0
    return (f"<section id=\"sweep-{index}\" class=\"sweep\"><h2>Sweep {html.escape(sweep['name'])}</h2>"
            f"<p>{len(sweep['trials'])} trials; each hyperparameter on the sweep's own scale "
            "(log axes for log-uniform ranges).</p>"
            f"<h3>Each hyperparameter against {sweep['metric'].replace('_', ' ')}</h3>"
            f"<div id=\"sweep{index}-params\" class=\"plot\"></div>"
            "<h3>Parallel coordinates</h3><p class=\"note\">Drag along an axis to select a range."
            f"</p><div id=\"sweep{index}-parallel\" class=\"plot\"></div>"
            f"<h3>Which hyperparameters matter</h3><p class=\"note\">Method: {method}, over "
            f"{trials} trials with a finite {sweep['metric'].replace('_', ' ')}.</p>"
            f"<div id=\"sweep{index}-importance\" class=\"plot\"></div>"
            "<table class=\"small\"><thead><tr><th>hyperparameter</th><th>share (ε²)</th>"
            f"<th>η²</th><th>groups</th></tr></thead><tbody>{ranking}</tbody></table></section>")


def _details(runs: list[dict]) -> str:
    parts = ["<section id=\"details\"><h2>Each run</h2><p class=\"note\">Open a run for its "
             "diagnosis, its curves and its figures.</p>"]
    for number, run in enumerate(runs, start=1):
        images = "".join(f"<figure><img alt=\"{name}\" src=\"{uri}\"><figcaption>{name}"
                         "</figcaption></figure>" for name, uri in run["images"])
        if not run["images"] and number > MAX_FIGURES:
            images = f"<p class=\"note\">boundary.png left out past the first {MAX_FIGURES} " \
                     f"runs: see {html.escape(run['path'])}.</p>"
        status = html.escape(str(run["status"]))
        parts.append(f"<details class=\"run\" id=\"run-{number}\" data-run=\"{number - 1}\">"
                     f"<summary><b>{number}</b> {html.escape(run['name'])} <span class=\"status "
                     f"{status}\">{status}</span></summary><p class=\"path\">"
                     f"<code>{html.escape(run['path'])}</code></p>"
                     f"<div class=\"run-plot plot\"></div>{images}"
                     f"<div class=\"diagnosis\">{run['diagnosis']}</div></details>")
    parts.append("</section>")
    return "\n".join(parts)
