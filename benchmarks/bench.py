"""Throughput, start-up time and memory of dlrun, side by side with its peers on the same machine.

    python benchmarks/bench.py                    # everything, 7 paired rounds
    python benchmarks/bench.py --only tiny,large --rounds 5
    python benchmarks/bench.py --only memory --memory-gb 2 --workdir /tmp

PyTorch and scikit-learn are measured when installed (`pip install -e ".[bench]"`) and skipped
otherwise. Every figure is a median over rounds; every ratio is the median of the ratios taken
within each round (the contenders of a round run back to back, in rotating order), so slow
drifts of the machine cancel out.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path


def _threads_from_argv(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
        if arg == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
    return None


# Thread pools read these once, when NumPy (OpenBLAS) and PyTorch (OpenMP) are first imported.
THREADS = _threads_from_argv(sys.argv)
if THREADS:
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = THREADS

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dlrun.config import validate  # noqa: E402
from dlrun.data import Dataset  # noqa: E402
from dlrun.engine import fused  # noqa: E402
from dlrun.engine.init import INITIALIZERS  # noqa: E402
from dlrun.engine.network import Network  # noqa: E402
from dlrun.engine.optim import OPTIMIZERS  # noqa: E402
from dlrun.engine.registry import build  # noqa: E402
from dlrun.engine.schedules import SCHEDULES  # noqa: E402
from dlrun.rundir import layout  #@runs# noqa: E402
from dlrun.training import loop
from dlrun.training.experiment import OUTPUT_FOR_TASK, Experiment, prepare

LARGE_SIZES = [784, 256, 128, 10]
LARGE_ROWS, LARGE_DEV_ROWS, LARGE_BATCH, LARGE_LR = 30_000, 3_000, 256, 1e-3
TINY_SIZES = [2, 5, 2, 1]
TINY_BATCH, TINY_LR = 64, 0.01

TARGETS = {  # the ratios each comparison must reach
    "large vs matmul ceiling": 0.8, "large vs PyTorch": 1.5, "large vs sklearn": 1.2,
    "tiny vs PyTorch": 5.0, "tiny vs sklearn": 2.5, "large: compiled vs NumPy steps": 1.0,
}
HELP_TARGET_SECONDS = 0.3
MEMORY_SLACK_BYTES, MEMORY_FACTOR = 300 * 2**20, 1.3


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def median(values):
    return statistics.median(values) if values else float("nan")


def timed(function) -> float:
    gc.collect()
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def busy_fraction(interval: float = 1.0) -> float | None:
    """Share of all CPU time other processes used over `interval` seconds (None off Linux)."""
    def sample():
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait
    try:
        total0, idle0 = sample()
        time.sleep(interval)
        total1, idle1 = sample()
    except OSError:
        return None
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


class Quiet:
    """Waits, before each round, until no other process is using the CPUs (up to max_wait s).

    Other programs on the machine slow multi-threaded BLAS by factors, not percents, so a round
    is only worth measuring on an idle machine; rounds that could not wait are counted."""

    def __init__(self, max_wait: float, threshold: float = 0.05):
        self.max_wait, self.threshold = max_wait, threshold
        self.rounds = self.contended = 0
        self.busy: list[float] = []

    def wait(self) -> None:
        self.rounds += 1
        if self.max_wait <= 0:
            return
        deadline = time.monotonic() + self.max_wait
        while True:
            busy = busy_fraction()
            if busy is None or busy < self.threshold:
                break
            if time.monotonic() > deadline:
                self.contended += 1
                break
        if busy is not None:
            self.busy.append(busy)


QUIET = Quiet(0)


def paired_rounds(contenders: dict, rounds: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per contender per round; the order rotates each round, warm-up rounds are dropped."""
    names = list(contenders)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(warmup + rounds):
        if r >= warmup:
            QUIET.wait()
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed = contenders[name]()
            if r >= warmup:
                seconds[name].append(elapsed)
    return seconds


def ratio_rows(work: float, seconds: dict[str, list[float]], unit: str, ours: str,
               peers: dict[str, str]) -> list[dict]:
    """Table rows: median throughput per contender and the paired ratio of ours to each peer."""
    rows = []
    for name, values in seconds.items():
        rate = [work / s for s in values]
        row = {"contender": name, unit: median(rate), "min": min(rate), "max": max(rate)}
        if name in peers.values():
            target_name = next(key for key, value in peers.items() if value == name)
            ratios = [b / a for a, b in zip(seconds[ours], values)]
            row.update(ratio=median(ratios), ratio_min=min(ratios), ratio_max=max(ratios),
                       target=TARGETS[target_name], check=target_name)
        rows.append(row)
    return rows


# --- the dlrun side ------------------------------------------------------------------------------

def experiment_for(X, y, X_dev, y_dev, sizes, classes, batch_size, lr, epochs, seed=0,
                   dtype="float32") -> Experiment:
    """An Experiment on given arrays, built as prepare() builds one from a config."""
    config = validate({"name": "bench", "seed": seed, "dtype": dtype,
                       "model": {"hidden_layers": sizes[1:-1], "activation": "relu", "init": "he"},
                       "train": {"optimizer": "adam", "learning_rate": lr,
                                 "batch_size": batch_size, "epochs": epochs}}, "bench")
    task = "binary" if len(classes) == 2 else "multiclass"
    empty = (X[:0], y[:0])
    dataset = Dataset({"train": (X, y), "dev": (X_dev, y_dev), "test": empty}, task,
                      1 if task == "binary" else len(classes), [str(c) for c in classes])
    init_seed, shuffle_seed, dropout_seed = np.random.SeedSequence(seed).spawn(3)
    network = Network.build(sizes, "relu", build(INITIALIZERS, "init", "he"),
                            OUTPUT_FOR_TASK[task], np.random.default_rng(init_seed),
                            np.random.default_rng(dropout_seed), dtype=np.dtype(dtype))
    return Experiment(config, dataset, network, build(OPTIMIZERS, "optimizer", "adam"),
                            build(SCHEDULES, "decay schedule", "none"),
                            np.random.default_rng(shuffle_seed))


class EvaluationClock:
    """Wraps the loop's evaluate to add up the seconds fit() spends on per-epoch metrics."""

    def __init__(self):
        self.seconds = 0.0
        self.original = loop.evaluate

    def __enter__(self):
        def evaluate(*args, **kwargs):
            started = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        loop.evaluate = evaluate
        return self

    def __exit__(self, *exc):
        loop.evaluate = self.original


def dlrun_fit(experiment_factory, metrics_dir: Path):
    """(seconds of fit() with per-epoch metrics written to a CSV, seconds spent evaluating)."""
    experiment = experiment_factory()
    writer = layout.MetricsWriter(metrics_dir / "metrics.csv", loop.metric_columns(experiment.network))
    try:
        with EvaluationClock() as clock:
            gc.collect()
            started = time.perf_counter()
            outcome = loop.fit(experiment, writer.write)
            elapsed = time.perf_counter() - started
    finally:
        writer.close()
    if outcome.status != "completed":
        raise RuntimeError(f"benchmark run ended {outcome.status}: {outcome.stop_reason}")
    return elapsed, clock.seconds


# --- the peers -----------------------------------------------------------------------------------

def torch_epochs(X, y, sizes, batch_size, lr, epochs, seed=0, threads: int | None = None) -> float:
    """Seconds of a plain PyTorch training loop: shuffled index batches, Adam, loss.item() per step."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    layers = []
    for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers, torch.nn.Linear(sizes[-2], sizes[-1]))
    if sizes[-1] == 1:
        criterion = torch.nn.BCEWithLogitsLoss()
        targets = torch.from_numpy(y.astype(np.float32)).unsqueeze(1)
    else:
        criterion = torch.nn.CrossEntropyLoss()
        targets = torch.from_numpy(y.astype(np.int64))
    inputs = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    m = len(inputs)
    gc.collect()
    started = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(m)
        total = 0.0
        for start in range(0, m, batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad()
            loss = criterion(model(inputs[batch]), targets[batch])
            loss.backward()
            optimizer.step()
            total += loss.item()
    return time.perf_counter() - started


def sklearn_epochs(X, y, sizes, batch_size, lr, epochs, seed=0) -> float:
    """Seconds of MLPClassifier.fit for `epochs` epochs (no early stop, no L2, as dlrun here)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(hidden_layer_sizes=tuple(sizes[1:-1]), activation="relu", solver="adam",
                          alpha=0.0, batch_size=batch_size, learning_rate_init=lr, max_iter=epochs,
                          tol=0.0, n_iter_no_change=epochs + 1, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return timed(lambda: model.fit(X, y))


# --- workloads -----------------------------------------------------------------------------------

def teacher_data(rows: int, sizes: list[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian inputs labelled by a random linear teacher: learnable, reproducible, no download."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, sizes[0]), dtype=np.float32)
    teacher = rng.standard_normal((sizes[0], sizes[-1])).astype(np.float32)
    return X, (X @ teacher).argmax(axis=1)


def matmul_ceiling(X: np.ndarray, sizes: list[int], batch_size: int) -> float:
    """Seconds for only the matrix products of one epoch of training steps (preallocated outputs).

    Forward Z = A Wᵀ per layer, backward dW = dZᵀ A per layer and dA = dZ W for all but the first.
    """
    rng = np.random.default_rng(0)
    W = [rng.standard_normal((n_out, n_in), dtype=np.float32) * 0.05
         for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    dW = [np.empty_like(w) for w in W]

    def epoch():
        for start in range(0, len(X), batch_size):
            A = [X[start:start + batch_size]]
            for w in W:
                A.append(A[-1] @ w.T)
            dZ = A[-1]
            for l in range(len(W) - 1, -1, -1):
                np.matmul(dZ.T, A[l], out=dW[l])
                if l:
                    dZ = dZ @ W[l]

    return timed(epoch)


def large(rounds: int, workdir: Path) -> dict:
    """784-256-128-10, ReLU, softmax, Adam, batch 256, float32, one epoch of 30k rows."""
    X, y = teacher_data(LARGE_ROWS + LARGE_DEV_ROWS, LARGE_SIZES, seed=0)
    X, y, X_dev, y_dev = X[:LARGE_ROWS], y[:LARGE_ROWS], X[LARGE_ROWS:], y[LARGE_ROWS:]
    classes = list(range(LARGE_SIZES[-1]))
    evaluation: list[float] = []

    def ours(kernels: str = ""):
        os.environ[fused.ENVIRONMENT] = kernels
        try:
            seconds, evaluating = dlrun_fit(lambda: experiment_for(
                X, y, X_dev, y_dev, LARGE_SIZES, classes, LARGE_BATCH, LARGE_LR, epochs=1), workdir)
        finally:
            del os.environ[fused.ENVIRONMENT]
        if kernels != "0":
            evaluation.append(evaluating)
        return seconds - evaluating

    contenders = {"matmul ceiling (NumPy)": lambda: matmul_ceiling(X, LARGE_SIZES, LARGE_BATCH),
                  "dlrun": ours}
    peers = {"large vs matmul ceiling": "matmul ceiling (NumPy)"}
    if fused.installed():
        # A process that trains a large network loads the kernels once (fused.LOAD_SECONDS,
        # shown by bench_fused.py); a one-epoch sample of its training is measured after that.
        from dlrun.engine import compiled  # noqa: F401  # lazy: only with the fast extra
        contenders["dlrun, NumPy steps"] = lambda: ours("0")
        peers["large: compiled vs NumPy steps"] = "dlrun, NumPy steps"
    if installed("torch"):
        contenders["PyTorch"] = lambda: torch_epochs(X, y, LARGE_SIZES, LARGE_BATCH, LARGE_LR, 1,
                                                     threads=int(THREADS or os.cpu_count()))
        peers["large vs PyTorch"] = "PyTorch"
    if installed("sklearn"):
        contenders["scikit-learn"] = lambda: sklearn_epochs(X, y, LARGE_SIZES, LARGE_BATCH, LARGE_LR, 1)
        peers["large vs sklearn"] = "scikit-learn"
    seconds = paired_rounds(contenders, rounds)
    rows = ratio_rows(LARGE_ROWS, seconds, "rows/s", "dlrun", peers)
    ceiling = seconds["matmul ceiling (NumPy)"]
    for row in rows:  # the ceiling bounds dlrun, so its ratio reads dlrun / ceiling
        if row["contender"] == "matmul ceiling (NumPy)":
            ratios = [c / d for c, d in zip(ceiling, seconds["dlrun"])]
            row.update(ratio=median(ratios), ratio_min=min(ratios), ratio_max=max(ratios))
        elif row["contender"] == "dlrun, NumPy steps":
            row["of_ceiling"] = median([c / d for c, d in zip(ceiling, seconds[row["contender"]])])
    evaluation = evaluation[-rounds:]
    with_metrics = [LARGE_ROWS / (s + e) for s, e in zip(seconds["dlrun"], evaluation)]
    return {"rows": rows, "dlrun_with_metrics_rows_per_s": median(with_metrics),
            "evaluation_seconds": median(evaluation)}


def tiny_data(seed: int = 0):
    """The course's moons: 300 training points (plus 75 for dev), via dlrun's own generator."""
    config = validate({"name": "bench", "seed": seed,
                       "data": {"generator": {"name": "moons", "n_samples": 375, "noise": 0.2},
                                "split": {"train": 0.8, "dev": 0.2, "test": 0.0}},
                       "model": {"hidden_layers": TINY_SIZES[1:-1]},
                       "train": {"optimizer": "adam", "learning_rate": TINY_LR,
                                 "batch_size": TINY_BATCH}}, "bench")
    return config


def tiny(rounds: int, epochs: int, workdir: Path) -> dict:
    """2-5-2-1 on 300 moons points, batch 64, Adam: overhead-bound, with per-epoch metrics on."""
    base = tiny_data()
    config = base.model_copy(update={"train": base.train.model_copy(update={"epochs": epochs})})
    X, y = prepare(config).dataset.splits["train"]
    steps = epochs * -(-len(X) // TINY_BATCH)
    contenders = {"dlrun": lambda: dlrun_fit(lambda: prepare(config), workdir)[0]}
    peers = {}
    if installed("torch"):
        # One thread is PyTorch's fastest setting for tensors this small (several times faster
        # than its default here), so that is the one it is measured with.
        contenders["PyTorch"] = lambda: torch_epochs(X, y, TINY_SIZES, TINY_BATCH, TINY_LR, epochs,
                                                     threads=int(THREADS or 1))
        peers["tiny vs PyTorch"] = "PyTorch"
    if installed("sklearn"):
        contenders["scikit-learn"] = lambda: sklearn_epochs(X, y, TINY_SIZES, TINY_BATCH, TINY_LR, epochs)
        peers["tiny vs sklearn"] = "scikit-learn"
    seconds = paired_rounds(contenders, rounds)
    return {"rows": ratio_rows(steps, seconds, "steps/s", "dlrun", peers), "steps": steps,
            "rows_per_epoch": len(X)}


# --- start-up time and memory --------------------------------------------------------------------

def help_start(rounds: int) -> dict:
    """Wall seconds of `dlrun --help` in a fresh interpreter, and of a bare interpreter for scale."""
    def run(args):
        started = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        return time.perf_counter() - started

    script = Path(sys.executable).with_name("dlrun")  # the installed console script, if any
    command = [str(script), "--help"] if script.exists() else [sys.executable, "-m", "dlrun.cli", "--help"]
    seconds = paired_rounds({"dlrun --help": lambda: run(command),
                             "python -c pass": lambda: run([sys.executable, "-c", "pass"])}, rounds)
    return {"help": median(seconds["dlrun --help"]), "bare": median(seconds["python -c pass"])}


def process_memory() -> dict[str, int]:
    """Bytes of this process: peak resident set (VmHWM) and the resident anonymous / file pages.

    VmHWM starts afresh at exec, unlike ru_maxrss, which a child inherits from its parent.
    """
    fields = {"VmHWM": "peak_rss", "RssAnon": "rss_anon", "RssFile": "rss_file"}
    result = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in fields:
            result[fields[key]] = int(value.split()[0]) * 1024
    try:  # bytes this process had to fetch from storage (page-cache hits do not count)
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("read_bytes:"):
                result["read_bytes"] = int(line.split()[1])
    except OSError:
        pass
    return result


def memory_child(path: str) -> None:
    """Train one epoch of 784-256-128-10 on a memory-mapped float32 .npy; print memory as JSON."""
    X = np.load(path, mmap_mode="r")
    y = np.load(path + ".labels.npy")
    dev = slice(len(X) - LARGE_DEV_ROWS, len(X))
    experiment = experiment_for(X[:dev.start], y[:dev.start], X[dev], y[dev], LARGE_SIZES,
                                list(range(LARGE_SIZES[-1])), LARGE_BATCH, LARGE_LR, epochs=1)
    before = process_memory()
    with tempfile.TemporaryDirectory() as metrics_dir:
        seconds, _ = dlrun_fit(lambda: experiment, Path(metrics_dir))
    after = process_memory()
    print(json.dumps({"peak_rss": after["peak_rss"], "rss_before_training": before["peak_rss"],
                      "rss_anon_after": after["rss_anon"], "rss_file_after": after["rss_file"],
                      "read_from_storage": after.get("read_bytes", 0) - before.get("read_bytes", 0),
                      "seconds": seconds, "rows": int(dev.start)}))


def memory(gigabytes: float, workdir: Path) -> dict:
    """Peak RSS of training from a memory-mapped .npy of `gigabytes` GB (written once, reused)."""
    rows = int(gigabytes * 1e9 // (LARGE_SIZES[0] * 4))
    path = workdir / f"bench-{rows}x{LARGE_SIZES[0]}-float32.npy"
    if not path.exists() or not Path(str(path) + ".labels.npy").exists():
        X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, LARGE_SIZES[0]))
        labels = np.empty(rows, dtype=np.int64)
        teacher = np.random.default_rng(1).standard_normal((LARGE_SIZES[0], LARGE_SIZES[-1])).astype(np.float32)
        rng = np.random.default_rng(2)
        for start in range(0, rows, 65_536):
            block = rng.standard_normal((min(65_536, rows - start), LARGE_SIZES[0]), dtype=np.float32)
            X[start:start + len(block)] = block
            labels[start:start + len(block)] = (block @ teacher).argmax(axis=1)
        X.flush()
        del X
        np.save(str(path) + ".labels.npy", labels)
    data_bytes = path.stat().st_size
    child = subprocess.run([sys.executable, __file__, "--memory-child", str(path)], check=True,
                           capture_output=True, text=True)
    result = json.loads(child.stdout.strip().splitlines()[-1])
    result.update(data_bytes=data_bytes, limit=MEMORY_FACTOR * data_bytes + MEMORY_SLACK_BYTES,
                  path=str(path))
    return result


# --- report --------------------------------------------------------------------------------------

def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = "?"
    try:
        from threadpoolctl import threadpool_info
        blas = ", ".join(f"{i['internal_api']} {i['version']} ({i['num_threads']} threads)"
                         for i in threadpool_info() if i["user_api"] == "blas")
    except ImportError:
        pass
    versions = [f"Python {platform.python_version()}", f"NumPy {np.__version__}"]
    for module in ("torch", "sklearn"):
        if installed(module):
            versions.append(f"{module} {__import__(module).__version__}")
    return f"{cpu}, {os.cpu_count()} cores; {'; '.join(versions)}; BLAS: {blas}"


def verdict(ratio: float, target: float) -> str:
    return "met" if ratio >= target else "NOT met"


def print_rows(title: str, rows: list[dict], unit: str) -> None:
    print(f"\n{title}")
    print(f"  {'contender':<24} {unit + ' (median)':>18} {'min':>10} {'max':>10}   ratio vs dlrun")
    for row in rows:
        line = f"  {row['contender']:<24} {row[unit]:>18,.0f} {row['min']:>10,.0f} {row['max']:>10,.0f}"
        if "ratio" in row:
            line += (f"   {row['ratio']:.2f}× [{row['ratio_min']:.2f}-{row['ratio_max']:.2f}] "
                     f"(target ≥ {row['target']}: {verdict(row['ratio'], row['target'])})")
        if "of_ceiling" in row:
            line += f"   ({row['of_ceiling']:.2f}× the ceiling)"
        print(line)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="large,tiny,help,memory",
                        help="comma-separated sections: large, tiny, help, memory")
    parser.add_argument("--rounds", type=int, default=7, help="paired rounds per comparison")
    parser.add_argument("--tiny-epochs", type=int, default=300, help="epochs per tiny measurement")
    parser.add_argument("--memory-gb", type=float, default=2.0, help="size of the memory-mapped data")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()),
                        help="where the memory benchmark's .npy is written (and kept for reuse)")
    parser.add_argument("--threads", help="BLAS and PyTorch threads for every contender "
                        "(default: each library's own default, all cores)")
    parser.add_argument("--max-wait", type=float, default=120.0,
                        help="seconds to wait before each round for other processes to leave the "
                             "CPUs idle (0: never wait)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child)
        return 0
    sections = set(args.only.split(","))
    QUIET.max_wait = args.max_wait
    report = {"machine": machine(), "command": " ".join(sys.argv), "rounds": args.rounds}
    print(f"machine: {report['machine']}")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if "large" in sections:
            result = report["large"] = large(args.rounds, scratch)
            print_rows(f"large: {'-'.join(map(str, LARGE_SIZES))} ReLU/softmax, Adam, batch "
                       f"{LARGE_BATCH}, float32, one epoch of {LARGE_ROWS:,} rows "
                       f"({args.rounds} rounds; dlrun = fit()'s training steps)", result["rows"], "rows/s")
            print(f"  dlrun fit() including its per-epoch train/dev evaluation: "
                  f"{result['dlrun_with_metrics_rows_per_s']:,.0f} rows/s "
                  f"(evaluation {result['evaluation_seconds']:.3f} s per epoch)")
        if "tiny" in sections:
            result = report["tiny"] = tiny(args.rounds, args.tiny_epochs, scratch)
            print_rows(f"tiny: 2-5-2-1 on {result['rows_per_epoch']} moons points, batch {TINY_BATCH}, "
                       f"Adam, {result['steps']} steps per measurement ({args.rounds} rounds; dlrun = "
                       "fit() with per-epoch metrics written; PyTorch on 1 thread, its fastest here)",
                       result["rows"], "steps/s")
        if "help" in sections:
            result = report["help"] = help_start(args.rounds)
            print(f"\nstart-up: dlrun --help {result['help']:.3f} s (python -c pass "
                  f"{result['bare']:.3f} s); target < {HELP_TARGET_SECONDS} s: "
                  f"{'met' if result['help'] < HELP_TARGET_SECONDS else 'NOT met'}")
        if "memory" in sections:
            result = report["memory"] = memory(args.memory_gb, args.workdir)
            gb = 1e9
            print(f"\nmemory: one epoch from a memory-mapped {result['data_bytes'] / gb:.2f} GB float32 "
                  f".npy ({result['rows']:,} rows): peak RSS {result['peak_rss'] / gb:.2f} GB "
                  f"(before training {result['rss_before_training'] / gb:.2f} GB; at the end "
                  f"{result['rss_file_after'] / gb:.2f} GB file-backed, "
                  f"{result['rss_anon_after'] / gb:.2f} GB anonymous); limit 1.3 × data + 300 MB = "
                  f"{result['limit'] / gb:.2f} GB: "
                  f"{'met' if result['peak_rss'] < result['limit'] else 'NOT met'} "
                  f"({result['seconds']:.1f} s, {result['read_from_storage'] / gb:.2f} GB read from "
                  "storage)")
    report["quiet"] = {"rounds": QUIET.rounds, "contended": QUIET.contended,
                       "busy_before_rounds": QUIET.busy}
    if QUIET.busy:
        print(f"\nother processes before each round: median {median(QUIET.busy):.0%} of the CPUs "
              f"busy; {QUIET.contended} of {QUIET.rounds} rounds ran without an idle machine "
              f"(waited up to {QUIET.max_wait:g} s)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
