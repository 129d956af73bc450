"""Digests of the parameters every bundled config trains to, for checking that a change to the
code leaves standalone training bit for bit as it was.

    python benchmarks/params_digests.py > before.txt     # on the old checkout
    python benchmarks/params_digests.py > after.txt      # on the new one
    diff before.txt after.txt                            # no output: identical parameters

Each config (and each lesson's variants named in its comment) is trained in float64; the digest
is the sha256 of every array stored in params.npz (name, then the .npy bytes: header, dtype,
shape and data), in name order. The zip container itself is left out: it stamps the time.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {  # the overrides each lesson's comment runs
    "initialization.yaml": [[], ["model.init=zeros"], ["model.init={name: random, scale: 10}"]],
    "regularization.yaml": [[], ["regularization.l2=0.7"], ["model.keep_prob=0.86"]],
    "optimization.yaml": [["train.optimizer=gd"], ["train.optimizer=momentum"], []],
    "batchnorm_softmax.yaml": [[], ["model.batch_norm=false"]],
    "normalization.yaml": [[], ["data.normalize=false"]],
}


def digest(params: Path) -> str:
    """sha256 over the arrays of a params.npz, independent of the zip's timestamps."""
    sha = hashlib.sha256()
    with zipfile.ZipFile(params) as archive:
        for name in sorted(archive.namelist()):
            sha.update(name.encode() + b"\0" + archive.read(name))
    return sha.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--only", help="train only the configs whose file name contains this")
    args = parser.parse_args()
    from dlrun import config as config_module
    from dlrun.training import session

    for path in sorted((ROOT / "configs").glob("*.yaml")):
        if path.name == "search.yaml" or (args.only and args.only not in path.name):
            continue  # search.yaml holds distributions: it is swept, not trained
        for overrides in VARIANTS.get(path.name, [[]]):
            config = config_module.load(path, [*overrides, f"dtype={args.dtype}"])
            with tempfile.TemporaryDirectory() as scratch:
                run_dir, _ = session.run(config, scratch)
                print(f"{path.name} {' '.join(overrides) or '-'}: {digest(run_dir / 'params.npz')}",
                      flush=True)


if __name__ == "__main__":
    sys.exit(main())
