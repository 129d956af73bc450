"""The report in a real browser: headless Chromium loads it from file:// with every host name
unresolvable, and the page must render, with no console error and no request leaving the
machine; the legend, the table's sorting and filter and a run's details must work by mouse."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from cdp import Browser, find_chromium
from typer.testing import CliRunner

from dlrun import config
from dlrun.cli import app
from dlrun.training import session

pytestmark = pytest.mark.slow
CHROMIUM = find_chromium()
SPACE = """\
name: tiny
seed: 4
data:
  generator: {name: moons, n_samples: 200, noise: 0.2}
train:
  learning_rate: {loguniform: [1e-3, 1e-1]}
  batch_size: {randint: [16, 64]}
  epochs: 4
"""
TRIALS, RUNS = 5, 2
PLOT = "document.getElementById('curves-plot')"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    (root / "space.yaml").write_text(SPACE)
    runner = CliRunner()
    result = runner.invoke(app, ["sweep", str(root / "space.yaml"), "-q", "--trials", str(TRIALS),
                                 "--workers", "1", "--runs-dir", str(root / "runs")])
    assert result.exit_code == 0, result.output
    for seed in range(RUNS):
        session.run(config.validate({"name": f"moons-{seed}", "seed": seed, "data": {
            "generator": {"name": "moons", "n_samples": 200}}, "train": {"epochs": 6}}, "test"),
            runs_dir=root / "runs")
    result = runner.invoke(app, ["report", str(root / "runs"), "-o", str(root / "report.html")])
    assert result.exit_code == 0, result.output
    return root / "report.html"


@pytest.fixture(scope="module")
def browser(report):
    if CHROMIUM is None:
        pytest.skip("no chromium binary on PATH (apt-get install chromium; CI installs it)")
    opened = Browser(CHROMIUM)
    try:
        opened.open(report.as_uri(), "window.dlrunReady === true")
        yield opened
    finally:
        opened.close()


def poll(browser: Browser, expression: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = browser.evaluate(expression)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"never true: {expression}")


def center(browser: Browser, selector: str) -> tuple[float, float]:
    """The middle of an element, scrolled into view, in viewport coordinates."""
    box = browser.evaluate(f"""(() => {{ const e = document.querySelector({selector!r});
        e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();
        return [r.left + r.width / 2, r.top + r.height / 2]; }})()""")
    return box[0], box[1]


def test_the_page_loads_with_no_console_error_and_no_request_off_the_machine(browser):
    assert browser.console_errors() == []
    requests = browser.requests()
    assert requests and all(url.startswith(("file:", "data:")) for url in requests), requests


def test_the_table_has_one_row_per_run_and_the_curves_render(browser, tmp_path):
    assert browser.evaluate("document.querySelectorAll('#runs-table tbody tr').length") \
        == TRIALS + RUNS
    assert browser.evaluate(f"{PLOT}.querySelectorAll('.scatterlayer .trace').length") \
        == 4 * (TRIALS + RUNS)  # train and dev, loss and error, of every run
    assert browser.evaluate("document.querySelectorAll('#sweep-0 .main-svg').length") >= 3
    import matplotlib.image

    browser.evaluate("window.scrollTo(0, 0)")
    shot = matplotlib.image.imread(io.BytesIO(browser.screenshot(tmp_path / "top.png")))
    pixels = shot[..., :3].reshape(-1, 3)
    assert (pixels.min(axis=1) < 0.9).mean() > 0.02  # not a blank page: text and rules drawn
    browser.evaluate(f"{PLOT}.scrollIntoView()")
    shot = matplotlib.image.imread(io.BytesIO(browser.screenshot(tmp_path / "curves.png")))
    colours = np.unique((shot[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50  # the curves' colours, anti-aliased


def test_clicking_a_run_in_the_legend_hides_its_curves(browser):
    drawn = f"{PLOT}.querySelectorAll('.scatterlayer .trace path.js-line').length"
    before = browser.evaluate(drawn)
    browser.click(*center(browser, "#curves-plot .legend .traces .legendtoggle"))
    poll(browser, f"{PLOT}.data[0].visible === 'legendonly'")
    hidden = browser.evaluate(f"{PLOT}.data.map(t => t.visible)")
    assert hidden.count("legendonly") == 4  # that run's four lines, nobody else's
    poll(browser, f"{drawn} < {before}")
    browser.click(*center(browser, "#curves-plot .legend .traces .legendtoggle"))
    poll(browser, f"{PLOT}.data[0].visible === true")


def test_the_table_sorts_on_a_header_click_and_filters_as_one_types(browser):
    names = "Array.from(document.querySelectorAll('#runs-table tbody tr')).filter(r => " \
            "r.style.display !== 'none').map(r => r.cells[1].textContent)"
    browser.click(*center(browser, "#runs-table thead th:nth-child(2)"))
    shown = browser.evaluate(names)
    assert shown == sorted(shown, key=str.lower) or shown == sorted(shown)
    browser.click(*center(browser, "#filter"))
    browser.page("Input.insertText", {"text": "trial"})
    poll(browser, f"{names}.length === {TRIALS}")
    assert browser.evaluate("document.getElementById('shown').textContent") \
        == f"{TRIALS} of {TRIALS + RUNS} runs shown"


def test_opening_a_run_draws_its_own_curves(browser):
    browser.click(*center(browser, "#run-1 summary"))
    poll(browser, "document.querySelector('#run-1 .run-plot .main-svg') !== null")
    assert browser.evaluate("document.getElementById('run-1').open")
    assert browser.console_errors() == []
