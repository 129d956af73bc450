// The page's behaviour: draw the embedded figures, sort and filter the runs' table, draw a
// run's own curves when its details are opened. Everything it needs is in #report-data.
(function () {
  "use strict";
  const report = JSON.parse(document.getElementById("report-data").textContent);
  const options = { responsive: true, displaylogo: false };
  const drawn = [];

  function draw(id, figure) {
    const node = document.getElementById(id);
    if (node && figure) drawn.push(Plotly.newPlot(node, figure.data, figure.layout, options));
  }

  draw("curves-plot", report.curves);
  report.sweeps.forEach(function (sweep, i) {
    draw("sweep" + i + "-params", sweep.params);
    draw("sweep" + i + "-parallel", sweep.parallel);
    draw("sweep" + i + "-importance", sweep.importance);
  });

  // The table: a click on a header sorts by it (numbers as numbers), a second click reverses.
  const table = document.getElementById("runs-table");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const shown = document.getElementById("shown");
  Array.from(table.tHead.rows[0].cells).forEach(function (header, column) {
    header.addEventListener("click", function () {
      const descending = header.classList.contains("asc");
      Array.from(table.tHead.rows[0].cells).forEach(function (h) { h.classList.remove("asc", "desc"); });
      header.classList.add(descending ? "desc" : "asc");
      const numeric = header.dataset.type === "number";
      const key = function (row) {
        const cell = row.cells[column];
        if (numeric) return cell.dataset.v === undefined ? null : parseFloat(cell.dataset.v);
        return cell.textContent;
      };
      const sorted = rows.slice().sort(function (a, b) {
        const x = key(a), y = key(b);
        if (x === null || x === "-") return 1;  // runs without a value last, either way
        if (y === null || y === "-") return -1;
        const order = numeric ? x - y : x.localeCompare(y, undefined, { numeric: true });
        return descending ? -order : order;
      });
      sorted.forEach(function (row) { body.appendChild(row); });
    });
  });

  // The filter: every word typed must appear in a row for it to stay.
  const filter = document.getElementById("filter");
  function apply() {
    const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    let count = 0;
    rows.forEach(function (row) {
      const text = row.textContent.toLowerCase();
      const keep = words.every(function (w) { return text.indexOf(w) >= 0; });
      row.style.display = keep ? "" : "none";
      count += keep;
    });
    shown.textContent = count + " of " + rows.length + " runs shown";
  }
  filter.addEventListener("input", apply);
  apply();

  // A run's own curves, drawn the first time its details open.
  function runFigure(run) {
    const c = run.curves, data = [];
    [["loss", "x", "y"], ["error", "x2", "y2"]].forEach(function (panel) {
      [["train", "#1f77b4"], ["dev", "#ff7f0e"]].forEach(function (split) {
        const column = split[0] + "_" + panel[0];
        if (!c[column]) return;
        data.push({ type: "scatter", mode: "lines", x: c.epoch, y: c[column], name: split[0] + " " + panel[0],
                    xaxis: panel[1], yaxis: panel[2], line: { color: split[1] } });
      });
    });
    return { data: data, layout: { height: 320, margin: { t: 30, r: 10, b: 40, l: 55 },
      xaxis: { domain: [0, 0.45], title: { text: "epoch" } },
      yaxis: { title: { text: run.log ? "loss (log scale)" : "loss" }, type: run.log ? "log" : "linear" },
      xaxis2: { domain: [0.55, 1], title: { text: "epoch" } },
      yaxis2: { title: { text: "error" }, anchor: "x2" } } };
  }
  document.querySelectorAll("details.run").forEach(function (details) {
    details.addEventListener("toggle", function () {
      const run = report.runs[parseInt(details.dataset.run, 10)];
      if (!details.open || details.dataset.drawn || !run.curves) return;
      details.dataset.drawn = "1";
      const figure = runFigure(run);
      Plotly.newPlot(details.querySelector(".run-plot"), figure.data, figure.layout, options);
    });
  });
  document.querySelectorAll("#runs-table a").forEach(function (link) {
    link.addEventListener("click", function () {
      const target = document.querySelector(link.getAttribute("href"));
      if (target) target.open = true;
    });
  });

  Promise.all(drawn).then(function () { window.dlrunReady = true; });
})();
