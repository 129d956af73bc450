"""Digests of what each config in configs/ resolves to and trains: to check that rewriting the
configs (a shared base through `extends`, say) changed nothing they mean.

    python benchmarks/config_digests.py            # the configs in the working tree
    python benchmarks/config_digests.py --ref main # the configs of a commit, with this code

For each config: the SHA-256 of its resolved config (`dlrun config`; for a sweep space, of the
space with its distributions), and for a trainable one the SHA-256 of every array in the
params.npz a float64 run writes (the .npz archive itself holds file times, so its bytes differ
from run to run even when every number is the same). Prints JSON; equal outputs, equal configs.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from dlrun import compose
from dlrun import config as config_module
from dlrun.sweep.space import find_distributions
from dlrun.training import session


def digests(configs: Path, runs: Path) -> dict:
    found = {}
    for path in sorted(configs.glob("*.yaml")):
        data, _ = config_module.read(path)
        entry = {}
        if list(find_distributions(data)):
            entry["space"] = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        else:
            entry["config"] = hashlib.sha256(compose.resolved_text(path).encode()).hexdigest()
            experiment = config_module.load(path, ["dtype=float64"])
            run_dir, _ = session.run(experiment, runs)
            with np.load(run_dir / "params.npz", allow_pickle=False) as archive:
                entry["params"] = {key: hashlib.sha256(archive[key].tobytes()).hexdigest()
                                   for key in sorted(archive.files)}
        found[path.name] = entry
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", help="a git commit whose configs/ to use")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        configs = Path("configs")
        if args.ref:
            archive = subprocess.run(["git", "archive", args.ref, "configs"], check=True,
                                     capture_output=True).stdout
            tarfile.open(fileobj=io.BytesIO(archive)).extractall(scratch, filter="data")
            configs = Path(scratch) / "configs"
        json.dump(digests(configs, Path(scratch) / "runs"), sys.stdout, indent=2, sort_keys=True)
        print()


if __name__ == "__main__":
    main()
