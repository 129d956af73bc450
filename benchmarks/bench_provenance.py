"""What recording a run's provenance costs: the whole record (git, packages, BLAS, CPU) and the
SHA-256 fingerprint of a data file, against reading that file as training does.

    python benchmarks/bench_provenance.py                 # a 100 MB CSV, 5 paired rounds
    python benchmarks/bench_provenance.py --mb 500 --rounds 7

Each round times, back to back, dlrun.provenance.collect (in this repository, so git runs),
fingerprint.file_fingerprint of the CSV and dlrun.data.files.read_csv of it (warm cache for
both: training has just read the file when its fingerprint is taken). Medians and the spread
(min-max) over rounds are printed, and the fingerprint's cost as a share of the read.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from dlrun import config as config_module
from dlrun import provenance
from dlrun.data import files, fingerprint


def timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="size of the CSV, in MB")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "rows.csv"
        rng = np.random.default_rng(0)
        columns = 20
        rows = max(1, args.mb * 1_000_000 // (columns * 10))
        with open(path, "w") as handle:
            handle.write(",".join([f"x{i}" for i in range(columns - 1)] + ["y"]) + "\n")
            for start in range(0, rows, 100_000):
                block = rng.normal(size=(min(100_000, rows - start), columns))
                block[:, -1] = block[:, -1] > 0
                np.savetxt(handle, block, fmt="%.6f", delimiter=",")
        size = path.stat().st_size
        config = config_module.validate({"data": {"path": str(path), "target": "y"}}, "bench")
        here = Path(__file__).resolve()
        no_files = config.model_copy(update={"data": config_module.DataConfig()})
        results = {"collect (without data files)": [], "fingerprint": [], "read_csv": []}
        for _ in range(args.rounds + 1):  # the first round warms the caches and is dropped
            round_ = {
                "read_csv": timed(files.read_csv, path, "y", None),
                "fingerprint": timed(fingerprint.file_fingerprint, path),
                "collect (without data files)": timed(provenance.collect, no_files, here,
                                                      Path(scratch)),
            }
            for key, value in round_.items():
                results[key].append(value)
        print(f"{size / 1e6:.0f} MB CSV, {args.rounds} rounds (medians, min-max):")
        for key, values in results.items():
            values = values[1:]
            print(f"  {key:30s} {statistics.median(values) * 1000:9.1f} ms  "
                  f"({min(values) * 1000:.1f}-{max(values) * 1000:.1f})")
        ratios = [f / r for f, r in zip(results["fingerprint"][1:], results["read_csv"][1:])]
        print(f"  fingerprint / read_csv: {statistics.median(ratios):.2f} "
              f"({min(ratios):.2f}-{max(ratios):.2f}); "
              f"{size / statistics.median(results['fingerprint'][1:]) / 1e6:.0f} MB/s hashed")


if __name__ == "__main__":
    main()
