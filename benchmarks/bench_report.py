"""How long `dlrun report` takes to write the page of N runs, and how big the page is.

Makes N run directories as bench_compare.py does (copies of one real 60-epoch run, with edited
configs and results, each with its boundary.png), then times the whole command end to end
(interpreter start-up and imports included) and the page's assembly in-process, over several
rounds: median and range.

    python benchmarks/bench_report.py [N] [--rounds R]      # N = 200, R = 5 by default
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_compare import make_runs  # noqa: E402

from dlrun.report import page  # noqa: E402


def rounds(function, count: int) -> list[float]:
    found = []
    for _ in range(count):
        started = time.perf_counter()
        function()
        found.append(time.perf_counter() - started)
    return found


def summary(seconds: list[float]) -> str:
    return (f"median {statistics.median(seconds):.3f} s (range {min(seconds):.3f}-"
            f"{max(seconds):.3f}, {len(seconds)} rounds)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("count", nargs="?", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = make_runs(Path(tmp), options.count)
        output = Path(tmp) / "report.html"
        print(f"{options.count} run directories of 60 epochs each")
        command = [sys.executable, "-m", "dlrun.cli", "report", str(runs_dir), "-o", str(output)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # warm the file cache
        seconds = rounds(lambda: subprocess.run(command, check=True, stdout=subprocess.DEVNULL),
                         options.rounds)
        print(f"  dlrun report, end to end:   {summary(seconds)}")
        seconds = rounds(lambda: page.write([runs_dir], output, runs_dir), options.rounds)
        print(f"  page.write, in-process:     {summary(seconds)}")
        print(f"  page size: {output.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
