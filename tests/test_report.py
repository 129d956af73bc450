"""`dlrun report`: the page's contents, its figures (checked by Plotly's own validation), the
hyperparameter importance, and every sweep leaving its report behind."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dlrun import config, detach
from dlrun.cli import app
from dlrun.report import figures, importance, markdown, page
from dlrun.sweep.space import Choice, LogUniform, Uniform
from dlrun.training import session

SPACE = """\
name: tiny
seed: 4
data:
  generator: {name: moons, n_samples: 200, noise: 0.2}
model:
  hidden_layers: {choice: [[8, 4], [6]]}
train:
  optimizer: {name: adam, beta1: {one_minus_loguniform: [0.8, 0.99]}}
  learning_rate: {loguniform: [1e-3, 1e-1]}
  batch_size: {randint: [16, 64]}
  epochs: 3
"""


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    """A sweep of 6 trials (its report written by the sweep itself) and two standalone runs."""
    root = tmp_path_factory.mktemp("report")
    space = root / "space.yaml"
    space.write_text(SPACE)
    result = invoke("sweep", space, "-q", "--trials", 6, "--workers", 1, "--runs-dir",
                    root / "runs")
    assert result.exit_code == 0, result.output
    assert detach.wait_until_free(Path(result.stdout.strip()))  # the page comes after the figures
    for name, init in (("init-he", "he"), ("init-random", {"name": "random", "scale": 10})):
        experiment = config.validate({"name": name, "data": {"generator": {
            "name": "circles", "n_samples": 200}}, "model": {"init": init},
            "train": {"epochs": 5}}, "test")
        session.run(experiment, runs_dir=root / "runs")
    return root / "runs"


def embedded(path: Path) -> dict:
    text = path.read_text()
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>',
                      text, re.S)
    return json.loads(found[1])


def test_report_is_one_page_with_plotly_inside_and_one_row_per_run(runs_dir, tmp_path):
    target = tmp_path / "report.html"
    result = invoke("report", runs_dir, "-o", target)
    assert result.exit_code == 0, result.output
    assert "8 runs in" in result.output
    text = target.read_text()
    from plotly.offline import get_plotlyjs
    assert text.count(get_plotlyjs()) == 1  # embedded once, whole
    own = text.replace(get_plotlyjs(), "")
    assert not re.search(r"<(script|link|img)[^>]*\b(src|href)=\"(?!data:)", own)
    assert not re.search(r"https?://", own)  # no address to fetch anything from
    body = text[text.index('id="runs-table"'):text.index("</table>")]
    assert body.count("<tr>") == 1 + 8  # the header and one row per run
    assert "random(scale=10)" in body
    assert re.search(r"tiny-\d{8}-\d{6}-\w{6}/trial-0005", body)


def test_every_figure_is_valid_for_plotly(runs_dir, tmp_path):
    import plotly.graph_objects as go

    target = tmp_path / "report.html"
    assert invoke("report", runs_dir, "-o", target).exit_code == 0
    data = embedded(target)
    shown = [data["curves"], *(f for sweep in data["sweeps"] for f in sweep.values())]
    assert len(shown) == 4
    for figure in shown:
        go.Figure(data=figure["data"], layout=figure["layout"])  # raises on a wrong property
    curves = data["curves"]["data"]
    assert len({trace["legendgroup"] for trace in curves}) == 8
    assert sum(trace["showlegend"] for trace in curves) == 8  # one legend entry per run


def test_curves_come_from_metrics_csv_thinned_to_their_first_and_last_epochs():
    epochs = np.arange(1, 2001, dtype=float)
    metrics = {"epoch": epochs, "dev_loss": 1 / epochs, "train_loss": 1 / epochs}
    curves = figures.curve_data(metrics)
    assert len(curves["epoch"]) <= figures.POINTS
    assert curves["epoch"][0] == 1 and curves["epoch"][-1] == 2000
    assert curves["dev_loss"][-1] == pytest.approx(1 / 2000)
    assert figures.spans_decades([curves])  # 1 to 1/2000: more than two decades
    assert not figures.spans_decades([{"dev_loss": [0.7, 0.2]}])
    assert figures.numbers([np.nan, np.inf, 0.123456789]) == [None, None, 0.12346]


def test_sweep_axes_follow_the_space_scale():
    values, axis, suffix = figures.axis_values([0.9, 0.99], importance_distribution("beta"))
    assert values == pytest.approx([0.1, 0.01]) and axis["type"] == "log" and "1 − value" in suffix
    assert figures.axis_values([1e-3], LogUniform(1e-4, 1))[1]["type"] == "log"
    assert figures.axis_values([0.5], Uniform(0, 1))[1]["type"] == "linear"
    values, axis, _ = figures.axis_values([[8, 4]], Choice([[8, 4], [6]]))
    assert values == ["[8, 4]"] and axis["categoryarray"] == ["[8, 4]", "[6]"]


def importance_distribution(kind):
    from dlrun.sweep.space import OneMinusLogUniform
    return OneMinusLogUniform(0.8, 0.999)


def test_importance_finds_the_parameter_that_drives_the_metric():
    rng = np.random.default_rng(0)
    n = 60
    rate = np.exp(rng.uniform(np.log(1e-4), np.log(1), n))
    noise = rng.uniform(0, 1, n)
    metric = (np.log10(rate) + 2) ** 2 + rng.normal(0, 0.05, n)
    ranked = importance.rank({"rate": list(rate), "noise": list(noise)},
                             {"rate": LogUniform(1e-4, 1), "noise": Uniform(0, 1)}, list(metric))
    assert [r["key"] for r in ranked] == ["rate", "noise"]
    assert ranked[0]["share"] > 0.8 and ranked[1]["share"] < 0.1
    assert ranked[0]["groups"] == importance.bins_for(n)


def test_a_choice_share_is_the_r2_of_regressing_on_its_groups():
    rng = np.random.default_rng(1)
    options = [[8], [16, 8], [32]]
    picked = [options[i] for i in rng.integers(0, 3, 30)]
    metric = np.array([len(p) + p[0] / 32 for p in picked]) + rng.normal(0, 0.1, 30)
    ranked = importance.rank({"layers": picked}, {"layers": Choice(options)}, list(metric))
    dummies = np.array([[p == o for o in options] for p in picked], dtype=float)
    fitted = dummies @ np.linalg.lstsq(dummies, metric, rcond=None)[0]
    r2 = 1 - np.sum((metric - fitted) ** 2) / np.sum((metric - metric.mean()) ** 2)
    assert ranked[0]["eta2"] == pytest.approx(r2)
    assert ranked[0]["share"] == pytest.approx(1 - (1 - r2) * 29 / 27)


def test_trials_without_a_finite_metric_are_left_out_of_the_importance():
    ranked = importance.rank({"x": [0.1, 0.2, 0.3, 0.4, 0.5]}, {"x": Uniform(0, 1)},
                             [0.1, float("nan"), 0.3, float("inf"), 0.5])
    assert ranked[0]["trials"] == 3


def test_the_sweep_section_names_its_method_and_ranks_every_parameter(runs_dir, tmp_path):
    target = tmp_path / "report.html"
    assert invoke("report", runs_dir, "-o", target).exit_code == 0
    text = target.read_text()
    assert "first-order variance decomposition (fANOVA main effects)" in text
    ranking = text[text.index("share (ε²)"):]
    for key in ("model.hidden_layers", "train.optimizer.beta1", "train.learning_rate",
                "train.batch_size"):
        assert f"<td>{key}</td>" in ranking
    axes = embedded(target)["sweeps"][0]["params"]["layout"]
    types = {axes[k]["title"]["text"].split(" ")[0]: axes[k]["type"] for k in axes
             if k.startswith("xaxis")}
    assert types == {"model.hidden_layers": "category", "train.optimizer.beta1": "log",
                     "train.learning_rate": "log", "train.batch_size": "linear"}


def test_every_sweep_writes_its_report(runs_dir):
    (sweep,) = [p for p in runs_dir.iterdir() if p.name.startswith("tiny-")]
    data = embedded(sweep / page.SWEEP_REPORT)
    assert len(data["runs"]) == 6 and len(data["sweeps"]) == 1
    drawn = json.loads((sweep / "sweep.json").read_text())["figures"]
    text = (sweep / page.SWEEP_REPORT).read_text()
    assert len(drawn) == 3 and all((sweep / name / "boundary.png").is_file() for name in drawn)
    assert text.count('<img alt="boundary.png" src="data:image/png;base64,') == len(drawn)


def test_without_plotly_a_sweep_says_so_in_one_line_and_report_refuses(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "plotly.offline", None)  # import fails as if not installed
    space = tmp_path / "space.yaml"
    space.write_text(SPACE.replace("epochs: 3", "epochs: 1"))
    result = invoke("sweep", space, "-q", "--trials", 1, "--workers", 1, "--runs-dir",
                    tmp_path / "runs")
    assert result.exit_code == 0
    assert 'note: no report.html written: dlrun report needs plotly: pip install ' \
           '"dlrun[report]"' in result.output
    (sweep,) = (tmp_path / "runs").iterdir()
    assert not (sweep / "report.html").exists()
    refused = invoke("report", sweep, "-o", tmp_path / "r.html")
    assert refused.exit_code == 2 and not (tmp_path / "r.html").exists()
    assert refused.output.count("\n") == 1 and "needs plotly" in refused.output


@pytest.mark.parametrize("name, message", [("report.txt", "expected an .html file name"),
                                           ("missing/report.html", "does not exist")])
def test_an_unusable_output_is_one_line_exit_2(runs_dir, tmp_path, name, message):
    result = invoke("report", runs_dir, "-o", tmp_path / name)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_report_of_nothing_is_refused(tmp_path):
    result = invoke("report", tmp_path / "nowhere", "-o", tmp_path / "r.html")
    assert result.exit_code == 2 and "no such run directory" in result.output


def test_diagnosis_markdown_becomes_escaped_html():
    text = "# Diagnosis of <run>\n\n**Verdict: high bias**\n\n| a | b |\n|---|---|\n| 1 | `x` |\n" \
           "- first\n- second\n"
    converted = markdown.to_html(text)
    assert "<h3>Diagnosis of &lt;run&gt;</h3>" in converted
    assert "<p><b>Verdict: high bias</b></p>" in converted
    assert "<th>a</th><th>b</th>" in converted and "<td><code>x</code></td>" in converted
    assert "<ul><li>first</li><li>second</li></ul>" in converted


def test_damaged_runs_are_rows_of_the_report_too(runs_dir, tmp_path):
    import shutil

    source = next(p for p in runs_dir.iterdir() if p.name.startswith("init-he"))
    damaged = tmp_path / "damaged"
    for name in ("no-metrics", "bad-summary", "bad-config"):
        shutil.copytree(source, damaged / name)
    (damaged / "no-metrics" / "metrics.csv").unlink()
    (damaged / "bad-summary" / "summary.json").write_text("{garbage")
    (damaged / "bad-config" / "config.yaml").write_text("a: [")
    target = tmp_path / "report.html"
    result = invoke("report", damaged, "-o", target)
    assert result.exit_code == 0, result.output
    data = embedded(target)
    assert [run["curves"] is None for run in data["runs"]].count(True) == 1
    assert "corrupt" in target.read_text()
