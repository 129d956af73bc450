"""How long `dlrun compare` takes on hundreds of run directories.

Trains one real run, copies it N times with edited config.yaml and summary.json (learning rate,
optimizer, seed, results), then times reading and selecting in-process and the whole command
end to end (interpreter start-up and imports included), for each output format.

    python benchmarks/bench_compare.py [N]      # N defaults to 500
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from dlrun import config
from dlrun.compare import collect
from dlrun.training import session


def make_runs(root: Path, count: int) -> Path:
    """`count` run directories under root/runs, copies of one real 60-epoch run."""
    experiment = config.validate({"name": "bench", "data": {"generator": {"name": "moons",
                                  "n_samples": 300}}, "train": {"epochs": 60}}, "bench")
    source, _ = session.run(experiment, runs_dir=root / "source")
    runs_dir = root / "runs"
    runs_dir.mkdir()
    rng = np.random.default_rng(0)
    base_config = yaml.safe_load((source / "config.yaml").read_text())
    base_summary = json.loads((source / "summary.json").read_text())
    for i in range(count):
        target = runs_dir / f"bench-{i:05d}"
        shutil.copytree(source, target)
        cfg = dict(base_config, seed=i % 5)
        cfg["train"] = dict(cfg["train"], learning_rate=float(10 ** rng.uniform(-4, -1)))
        if i % 2:
            cfg["train"]["optimizer"] = {"name": "momentum", "beta": 0.9}
        (target / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        summary = dict(base_summary, seed=i % 5, duration_seconds=float(rng.uniform(1, 120)))
        summary["final"] = {split: {"loss": float(rng.uniform(0.1, 1)),
                                    "error": float(rng.uniform(0, 0.5))}
                            for split in ("train", "dev", "test")}
        (target / "summary.json").write_text(json.dumps(summary))
    return runs_dir


def timed(function, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = make_runs(Path(tmp), count)
        print(f"{count} run directories of 60 epochs each")
        seconds = timed(lambda: collect.compare([runs_dir]))
        print(f"  read + sort in-process:                 {seconds:.3f} s")
        seconds = timed(lambda: collect.compare([runs_dir], group=True,
                                                satisfy=["duration<60"], optimize="dev_error"))
        print(f"  read + group seeds + satisfy in-process: {seconds:.3f} s")
        environment = dict(os.environ, COLUMNS="200")
        for options in (["--format", "table"], ["--format", "csv"], ["--format", "json"],
                        ["--group-seeds", "--filter", "optimizer=adam"]):
            command = [sys.executable, "-m", "dlrun.cli", "compare", str(runs_dir), *options]
            seconds = timed(lambda command=command: subprocess.run(
                command, check=True, env=environment, stdout=subprocess.DEVNULL))
            print(f"  dlrun compare {' '.join(options):<36} {seconds:.3f} s (end to end)")


if __name__ == "__main__":
    main()
