"""Gradient checking: backpropagation's gradients against two-sided differences of the cost.

For every parameter array θ (W1, b1, gamma1, ...) the analytic gradient dθ of one backward pass
is compared with dθ_approx[i] = (J(θ + ε·e_i) − J(θ − ε·e_i)) / 2ε through the relative
difference ‖dθ_approx − dθ‖₂ / (‖dθ_approx‖₂ + ‖dθ‖₂). J is evaluated in float64 on one fixed
batch, in training mode, with every dropout mask frozen so that J is a function of θ alone. With
a penalty, the data loss and the penalty are also checked apart, so a wrong L2 gradient is named.

How far a correct gradient may be from D(ε) = (J(θ + ε) − J(θ − ε)) / 2ε, per entry:

    D(ε) − J′(θ) = ε²·J‴(θ)/6 + O(ε⁴)              truncation: the Taylor terms D drops
                 + (δ₊ − δ₋)/2ε,  |δ±| ≲ u·|J(θ ± ε)|  rounding: J is a few ulps off in float64

Rounding is bounded by ROUNDING_ULPS·u·(|J₊| + |J₋|)/2ε: it grows as ε shrinks. Truncation is
estimated: the difference at 2ε has four times the ε² term, so D(2ε) − D(ε) = ε²·J‴/2 + O(ε⁴)
(Richardson), and (D(2ε) − D(ε))/3 is D(ε)'s truncation error; twice it is allowed, for the
O(ε⁴) rest (the estimate also carries rounding of both differences, which errs on the safe
side). An array's tolerance is the norm of its entries' rounding bounds plus that of their
truncation estimates, relative as the difference is. A difference within it is not held against
backpropagation, unless the tolerance itself reaches WARN_BELOW: a wrong gradient could then
hide in it, and the array is not checkable at that step. As rounding falls with 1/ε while
truncation rises with ε², an array that rounding hides (a tiny gradient beside J) is checked
again at WIDEN·ε, WIDEN²·ε, ... up to MAX_EPSILON, and one that truncation hides (a sharply
curved J, as batch norm makes of tiny pre-activations) at ε/WIDEN, ... down to MIN_EPSILON; each
term keeps the step that judges it best, and the row says which step that was.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np

from ..engine.init import INITIALIZERS
from ..engine.layers import ACTIVATIONS, Activation, Dropout
from ..engine.network import Network
from ..engine.optim import Adam
from ..errors import DlrunError

EPSILON = 1e-7  # the course's step; in float64 its truncation error (ε²) is negligible
MAX_EPSILON = 1e-2  # the largest step an array that rounding hides is checked again with
MIN_EPSILON = 1e-8  # the smallest step one that truncation hides is
WIDEN = 10  # each step tried is this many times the last
PASS_BELOW = 1e-7  # the course's "great"
WARN_BELOW = 1e-5  # the course's "acceptable"; above it, backpropagation disagrees with J
# J comes out of a forward pass a few units in its last place off (more where terms cancel), and
# the two-sided difference divides that error by 2ε. Measured: up to 3 units on the engine
# sweep, 6 on a linear regression whose residuals cancel; 16 leaves a margin.
ROUNDING_ULPS = 16
UNIT_ROUNDOFF = np.finfo(np.float64).eps / 2

RESOLUTION = "below float64 resolution"  # rounding of J over 2ε hides differences of WARN_BELOW
TRUNCATED = "truncation at this ε"  # the step's own O(ε²) error does
TOTAL, LOSS, PENALTY = "cost", "loss", "penalty"  # the cost J is the loss plus the penalty
WHOLE = "all"  # the row of the whole parameter vector θ
# From best to worst. uncheckable: rounding or truncation at every step tried could hide a wrong
# gradient (tolerance ≥ WARN_BELOW), so the array is neither passed nor failed.
VERDICTS = ("pass", "uncheckable", "warn", "fail")

Progress = Callable[[int, int], None]  # (completed, total)


class GradcheckError(DlrunError):
    """Gradient-check options or inputs that cannot be used."""


@dataclass
class Row:
    """One parameter array (or the whole vector) checked for one term of the cost."""

    term: str
    name: str
    shape: tuple[int, ...]
    size: int
    checked: int
    relative_difference: float  # over the entries whose ±ε evaluations crossed no kink, if any
    rounding_floor: float  # the relative difference float64 rounding of J alone could cause
    truncation: float  # the relative difference the step's dropped Taylor terms cause (estimate)
    epsilon: float  # the step the row was checked with
    kinks: int
    worst: str  # the entry with the largest |analytic − numeric|, e.g. "W1[2, 0]"
    analytic: float
    numeric: float
    verdict: str
    note: str


@dataclass
class Stage:
    """The check of a network at one point of its training."""

    label: str
    steps: int
    rows: list[Row] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return worst_verdict(row.verdict for row in self.rows)


@dataclass
class Check:
    """The stages of one network: the config's, or one combination of the engine sweep."""

    network: dict
    stages: list[Stage] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return worst_verdict(stage.verdict for stage in self.stages)


@dataclass
class Report:
    mode: str  # "config" or "engine"
    settings: dict
    checks: list[Check]
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        """The worst verdict of the networks that could be checked (networks that could not are
        counted apart); "uncheckable" only when none could."""
        verdicts = [check.verdict for check in self.checks]
        checked = [verdict for verdict in verdicts if verdict != "uncheckable"]
        return worst_verdict(checked if checked else verdicts)

    def as_dict(self) -> dict:
        counts = {v: sum(check.verdict == v for check in self.checks) for v in VERDICTS}
        return _finite({"mode": self.mode, "verdict": self.verdict, "settings": self.settings,
                        "seconds": round(self.seconds, 3), "counts": counts, "checks": [
                            {"network": check.network, "verdict": check.verdict, "stages": [
                                {"label": s.label, "steps": s.steps, "verdict": s.verdict,
                                 "rows": [{**asdict(row), "shape": list(row.shape)} for row in s.rows]}
                                for s in check.stages]}
                            for check in self.checks]})


def _finite(value):
    """JSON has no NaN or infinity: those become null."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def worst_verdict(verdicts) -> str:
    return max(verdicts, key=VERDICTS.index, default="pass")


def relative_difference(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """‖numeric − analytic‖₂ / (‖numeric‖₂ + ‖analytic‖₂); 0 when both are exactly zero."""
    analytic, numeric = np.ravel(analytic), np.ravel(numeric)
    return _ratio(_norm(numeric - analytic), _norm(numeric) + _norm(analytic))


def _norm(vector: np.ndarray) -> float:
    return math.sqrt(float(vector @ vector))


def _ratio(numerator: float, denominator: float) -> float:
    if denominator == 0:
        return 0.0 if numerator == 0 else math.inf
    return float(numerator / denominator)


def judge(difference: float, floor: float, kinks: int,
          truncation: float = 0.0) -> tuple[str, str]:
    """(verdict, note). A difference that rounding of J and the step's truncation explain (their
    sum is the tolerance) is not held against backpropagation, unless they are so large that a
    wrong gradient could hide in them: then the array is not checkable at this step."""
    notes = [f"kink ×{kinks}"] if kinks else []
    tolerance = floor + truncation
    if not math.isfinite(difference):
        return "fail", "not finite"
    if difference < PASS_BELOW:
        result = "pass"
    elif difference <= tolerance:
        result = "pass" if tolerance < WARN_BELOW else "uncheckable"
        rounding = floor >= truncation
        if tolerance < WARN_BELOW:
            notes.append("rounding" if rounding else "truncation")
        else:
            notes.append(RESOLUTION if rounding else TRUNCATED)
    else:
        result = "warn" if difference < WARN_BELOW else "fail"
    if kinks and result == "pass":
        result = "warn"
    return result, ", ".join(notes)


@contextmanager
def fixed_cost(network: Network):
    """Make J a function of θ: dropout masks drawn once and reused; buffers restored after."""
    dropouts = [layer for layer in network.layers if isinstance(layer, Dropout)]
    buffers = {name: array.copy() for name, array in network.buffers.items()}
    for layer in dropouts:
        layer.mask, layer.frozen = None, True
    try:
        yield
    finally:
        for layer in dropouts:
            layer.mask, layer.frozen = None, False
        for name, array in buffers.items():
            network.buffers[name][...] = array


def analytic_gradients(network: Network, X: np.ndarray, y: np.ndarray,
                       penalty: bool = True) -> dict[str, np.ndarray]:
    """dJ/dθ from one backward pass; without the penalty's terms when `penalty` is False."""
    saved = network.l2, network.l1
    if not penalty:
        network.l2 = network.l1 = 0.0
    try:
        network.train_step_gradients(X, y)
    finally:
        network.l2, network.l1 = saved
    return {name: np.array(network.grads[name], dtype=np.float64) for name in network.params}


class Probe:
    """The loss and penalty on a fixed batch, re-running only the layers a parameter feeds."""

    def __init__(self, network: Network, X: np.ndarray, y: np.ndarray):
        self.network, self.y, self.m = network, y, X.shape[0]
        self.layers = network.layers
        self.owner = {name: i for i, layer in enumerate(self.layers) for name in layer.params}
        self.kinked = [i for i, layer in enumerate(self.layers)
                       if isinstance(layer, Activation) and layer.kinks]
        self.inputs = []  # what each layer receives at the unperturbed θ
        A = X
        for layer in self.layers:
            self.inputs.append(A)
            A = layer.forward(A, training=True)
        self.pattern = {i: _sides(self.layers[i]) for i in self.kinked}

    def __call__(self, start: int) -> tuple[float, float, dict[int, np.ndarray]]:
        """(loss, penalty, kink sides of the kinked activations from `start` on)."""
        A = self.inputs[start]
        for layer in self.layers[start:]:
            A = layer.forward(A, training=True)
        pattern = {i: _sides(self.layers[i]) for i in self.kinked if i >= start}
        return self.network.loss.value(A, self.y), self.network.penalty(self.m), pattern


def _sides(activation: Activation) -> np.ndarray:
    """Which side of its kinks each Z of the layer lies on: how many kinks lie below it (for
    ReLU's one kink at 0, whether the unit is on). A change of side means ±ε crossed a kink."""
    Z, kinks = activation.Z, activation.kinks
    return Z > kinks[0] if len(kinks) == 1 else np.searchsorted(sorted(kinks), Z)


@dataclass
class Numeric:
    """Two-sided differences at k entries of one array, per term, with what limits them."""

    loss: np.ndarray  # (k,) D(ε) of the loss
    penalty: np.ndarray  # (k,)
    loss_scale: np.ndarray  # (k,) ulp of J over the step: the rounding scale of each difference
    penalty_scale: np.ndarray
    activation_kink: np.ndarray  # (k,) bool: ±ε or ±2ε moved a Z across its activation's kink
    l1_kink: np.ndarray  # (k,) bool: ±2ε crossed W = 0 under an L1 penalty
    loss_wide: np.ndarray  # (k,) D(2ε) of the loss, for the truncation estimate
    penalty_wide: np.ndarray
    epsilon: float

    def term(self, term: str) -> tuple[np.ndarray, ...]:
        """(numeric gradient, kink mask, rounding scale, truncation estimate) of one term."""
        if term == LOSS:
            narrow, wide, kink, scale = (self.loss, self.loss_wide, self.activation_kink,
                                         self.loss_scale)
        elif term == PENALTY:
            narrow, wide, kink, scale = (self.penalty, self.penalty_wide, self.l1_kink,
                                         self.penalty_scale)
        else:
            narrow, wide = self.loss + self.penalty, self.loss_wide + self.penalty_wide
            kink, scale = self.activation_kink | self.l1_kink, self.loss_scale + self.penalty_scale
        return narrow, kink, scale, np.abs(wide - narrow) / 3


def _switched(before: dict, after: dict) -> bool:
    return any(not np.array_equal(after[i], before[i]) for i in after)


def _difference(probe: Probe, flat: np.ndarray, i: int, start: int, epsilon: float) -> tuple:
    """(D of the loss, D of the penalty, their rounding scales, whether ±ε switched a ReLU) at
    entry i of `flat`, which is left as it was."""
    original = flat[i]
    flat[i] = original + epsilon
    loss_plus, penalty_plus, pattern_plus = probe(start)
    step = flat[i]
    flat[i] = original - epsilon
    loss_minus, penalty_minus, pattern_minus = probe(start)
    step -= flat[i]  # the step actually taken, exact in floating point
    flat[i] = original
    return ((loss_plus - loss_minus) / step, (penalty_plus - penalty_minus) / step,
            UNIT_ROUNDOFF * (abs(loss_plus) + abs(loss_minus)) / step,
            UNIT_ROUNDOFF * (abs(penalty_plus) + abs(penalty_minus)) / step,
            _switched(pattern_plus, pattern_minus) or _switched(probe.pattern, pattern_plus))


def numeric_gradients(probe: Probe, name: str, indices: np.ndarray, epsilon: float) -> Numeric:
    """Two-sided differences of the loss and the penalty at the flat `indices` of params[name],
    with step ε and, for the truncation estimate, 2ε."""
    network = probe.network
    array = network.params[name]
    flat = array.reshape(-1)
    if not np.shares_memory(flat, array):
        raise ValueError(f"{name} is not contiguous: it cannot be perturbed in place")
    start, k = probe.owner[name], len(indices)
    result = Numeric(*(np.empty(k) for _ in range(4)), np.zeros(k, bool), np.zeros(k, bool),
                     np.empty(k), np.empty(k), epsilon)
    for n, i in enumerate(indices):
        (result.loss[n], result.penalty[n], result.loss_scale[n], result.penalty_scale[n],
         switched) = _difference(probe, flat, i, start, epsilon)
        result.loss_wide[n], result.penalty_wide[n], _, _, switched_wide = _difference(
            probe, flat, i, start, 2 * epsilon)
        result.activation_kink[n] = switched or switched_wide
        result.l1_kink[n] = bool(network.l1) and 0 < abs(flat[i]) < 2 * epsilon
    return result


def _compare(term: str, name: str, shape: tuple, size: int, analytic: np.ndarray,
             numeric: np.ndarray, kink: np.ndarray, scale: np.ndarray, truncated: np.ndarray,
             label: Callable[[int], str], epsilon: float, widened: bool = False) -> Row:
    """The row of k checked entries: analytic, numeric, kink, rounding scale and truncation
    estimate are all (k,); `widened`: ε is larger than the one asked for."""
    kinks = int(np.count_nonzero(kink))
    everywhere = 0 < kinks == len(kink)  # then nothing is left to judge: report all, and only warn
    smooth = ~kink if kinks and not everywhere else slice(None)
    difference = relative_difference(analytic[smooth], numeric[smooth])
    size_of = _norm(analytic[smooth]) + _norm(numeric[smooth])
    floor = _ratio(ROUNDING_ULPS * _norm(scale[smooth]), size_of)
    truncation = _ratio(2 * _norm(truncated[smooth]), size_of)
    verdict, note = (("warn", f"kink ×{kinks}") if everywhere
                     else judge(difference, floor, kinks, truncation))
    if widened:
        note = ", ".join(filter(None, [note, f"ε {epsilon:g}"]))
    gaps = np.abs(analytic - numeric)
    if 0 < kinks < len(gaps):
        gaps[kink] = -1.0  # name an entry the verdict rests on
    worst = int(np.argmax(gaps)) if len(gaps) else None
    return Row(term=term, name=name, shape=tuple(int(n) for n in shape), size=int(size),
               checked=len(analytic), relative_difference=difference, rounding_floor=floor,
               truncation=truncation, epsilon=epsilon, kinks=kinks, worst=label(worst) if worst is not None else "",
               analytic=float(analytic[worst]) if worst is not None else 0.0,
               numeric=float(numeric[worst]) if worst is not None else 0.0,
               verdict=verdict, note=note)


def _entry_label(name: str, shape: tuple, indices: np.ndarray) -> Callable[[int], str]:
    def label(k: int) -> str:
        position = np.unravel_index(int(indices[k]), shape)
        return f"{name}[{', '.join(str(int(p)) for p in position)}]"
    return label


def choose_entries(size: int, samples: int | None, rng: np.random.Generator) -> np.ndarray:
    """Flat indices to check: all of them, or `samples` of them drawn without replacement."""
    if samples is None or samples >= size:
        return np.arange(size)
    return np.sort(rng.choice(size, size=samples, replace=False))


def check_network(network: Network, X: np.ndarray, y: np.ndarray, epsilon: float = EPSILON,
                  samples: int | None = None, rng: np.random.Generator | None = None,
                  progress: Progress | None = None) -> list[Row]:
    """Rows per parameter array and for the whole vector, for the cost and, with a penalty, for
    the loss and the penalty apart. X is (m, n0); the network needs float64 and is left with the
    parameters and buffers it had."""
    if network.dtype != np.float64:
        raise ValueError(f"gradient checking needs a float64 network, got {network.dtype}")
    rng = rng if rng is not None else np.random.default_rng(0)
    regularized = bool(network.l2 or network.l1)
    chosen = {name: choose_entries(array.size, samples, rng) for name, array in network.params.items()}
    total_entries, done = sum(len(indices) for indices in chosen.values()), 0
    numeric = {}
    with fixed_cost(network):
        total = analytic_gradients(network, X, y)
        data = analytic_gradients(network, X, y, penalty=False) if regularized else total
        probe = Probe(network, X, y)
        analytic = {TOTAL: total, LOSS: data,
                    PENALTY: {name: total[name] - data[name] for name in total}}
        terms = [TOTAL, LOSS, PENALTY] if regularized else [LOSS]
        for name, indices in chosen.items():
            numeric[name] = _candidates(probe, name, indices, epsilon, [
                analytic[term][name].reshape(-1)[indices] for term in terms], terms)
            done += len(indices)
            if progress:
                progress(done, total_entries)
    rows = []
    n_params = sum(array.size for array in network.params.values())
    for term in terms:
        term_rows, pieces, steps = [], [], set()
        for name, indices in chosen.items():
            array = network.params[name]
            exact = analytic[term][name].reshape(-1)[indices]
            row, piece = _best(term, name, array.shape, exact, numeric[name],
                               _entry_label(name, array.shape, indices), epsilon)
            term_rows.append(row)
            pieces.append(piece)
            steps.add(row.epsilon)
        whole = _compare(term, WHOLE, (n_params,), n_params,
                         *(np.concatenate(part) for part in zip(*pieces)), lambda k: "",
                         max(steps), steps != {epsilon})
        rows.extend(term_rows)
        rows.append(_whole_worst(whole, term_rows))
    return rows


def _candidates(probe: Probe, name: str, indices: np.ndarray, epsilon: float,
                analytic: list[np.ndarray], terms: list[str]) -> list[Numeric]:
    """The differences of one array at ε and, when a term's tolerance there reaches WARN_BELOW,
    at the steps that lower what dominates it: WIDEN·ε, WIDEN²·ε, ... up to MAX_EPSILON for
    rounding, ε/WIDEN, ε/WIDEN², ... down to MIN_EPSILON for truncation."""
    found = [numeric_gradients(probe, name, indices, epsilon)]
    rows = [_compare(term, name, exact.shape, exact.size, exact, *found[0].term(term),
                     lambda k: "", epsilon) for term, exact in zip(terms, analytic)]
    hidden = [row for row in rows if row.verdict == "uncheckable"]
    for factor, limit in ((WIDEN, MAX_EPSILON), (1 / WIDEN, MIN_EPSILON)):
        rounding = factor > 1
        if not any((row.rounding_floor >= row.truncation) == rounding for row in hidden):
            continue
        step = epsilon * factor
        while (step <= limit * (1 + 1e-9)) if rounding else (step >= limit * (1 - 1e-9)):
            found.append(numeric_gradients(probe, name, indices, step))
            step *= factor
    return found


def _best(term: str, name: str, shape: tuple, analytic: np.ndarray, candidates: list[Numeric],
          label: Callable[[int], str], epsilon: float) -> tuple[Row, tuple]:
    """The row of one term of one array at the step that judges it best: the best verdict, then
    no entry left out for a kink, then the smallest tolerance (a wider step that crosses a kink
    warns, so it is not chosen over one that leaves the array merely not checkable). Returns the
    row and its (k,) pieces."""
    options = []
    for numeric in candidates:
        piece = (analytic, *numeric.term(term))
        row = _compare(term, name, shape, int(np.prod(shape)), *piece, label, numeric.epsilon,
                       numeric.epsilon != epsilon)
        options.append((VERDICTS.index(row.verdict), row.kinks > 0,
                        row.rounding_floor + row.truncation, len(options), row, piece))
    *_, row, piece = min(options)
    if row.verdict == "uncheckable":
        tried = ", ".join(f"{numeric.epsilon:g}" for numeric in candidates)
        row.note = f"{row.note}; steps tried: {tried}"
    return row, piece


def _whole_worst(whole: Row, rows: list[Row]) -> Row:
    """Name the whole vector's worst entry after the array it lies in."""
    candidates = [row for row in rows if row.checked > row.kinks] or rows
    worst = max(candidates, key=lambda row: abs(row.analytic - row.numeric), default=None)
    if worst is not None:
        whole.worst, whole.analytic, whole.numeric = worst.worst, worst.analytic, worst.numeric
    return whole


def train_steps(network: Network, optimizer, batches: Iterator[tuple]) -> None:
    """One optimizer step per (X, y, learning rate); refuses to go on from non-finite gradients."""
    for step, (X, y, lr) in enumerate(batches, start=1):
        with np.errstate(over="ignore", invalid="ignore"):  # said below, in one line
            network.train_step_gradients(X, y)
        if not all(np.all(np.isfinite(grad)) for grad in network.grads.values()):
            raise GradcheckError(f"--after-steps: the gradients became non-finite at training "
                                 f"step {step} (learning rate {lr:g}): there is nothing to check; "
                                 "lower the learning rate or the number of steps")
        optimizer.step(network.params, network.grads, lr)


FORMATS = ("table", "json")


def validate(epsilon: float, batch: int, samples: int | None, after_steps: int,
             output_format: str = "table") -> None:
    """GradcheckError naming the first option out of range and what it allows."""
    if output_format not in FORMATS:
        raise GradcheckError(f"--format: must be one of {', '.join(FORMATS)}, got {output_format!r}")
    if not (isinstance(epsilon, float) and 0 < epsilon < 1):
        raise GradcheckError(f"--epsilon: must be a number in (0, 1), got {epsilon!r}")
    if batch < 2:
        raise GradcheckError(f"--batch: must be at least 2 examples (batch norm needs two to "
                             f"have a variance), got {batch}")
    if samples is not None and samples < 1:
        raise GradcheckError(f"--samples: must be at least 1 entry per parameter array "
                             f"(leave it out to check every entry), got {samples}")
    if after_steps < 0:
        raise GradcheckError(f"--after-steps: must be 0 (check at initialization only) or more, "
                             f"got {after_steps}")


def _stage_label(steps: int) -> str:
    return "at initialization" if steps == 0 else f"after {steps} training step{'s' * (steps > 1)}"


def check_config(config, epsilon: float = EPSILON, batch: int = 32, samples: int | None = None,
                 after_steps: int = 5, progress: Progress | None = None) -> Report:
    """Check the network an ExperimentConfig builds, in float64, on a batch of its training data,
    at initialization and after `after_steps` steps of its own optimizer and mini-batches."""
    from ..training.experiment import prepare

    validate(epsilon, batch, samples, after_steps)
    started = time.perf_counter()
    config = config.model_copy(update={"dtype": "float64"})
    experiment = prepare(config)
    network = experiment.network
    X, y = experiment.dataset.splits["train"]
    rng = np.random.default_rng(config.seed)
    picked = np.sort(rng.choice(len(X), size=min(batch, len(X)), replace=False))
    check = Check({"name": config.name, "sizes": [int(d.W.shape[1]) for d in network.dense]
                   + [int(network.dense[-1].W.shape[0])],
                   "activation": config.model.activation, "output": network.output,
                   "batch_norm": config.model.batch_norm, "keep_prob": config.model.keep_prob,
                   "l2": network.l2, "l1": network.l1})
    points = [0, after_steps] if after_steps else [0]
    per_point = sum(min(samples or array.size, array.size) for array in network.params.values())
    for n, steps in enumerate(points):
        if steps:
            train_steps(network, experiment.optimizer, _config_batches(experiment, steps))
        report = None if progress is None else (
            lambda done, _, offset=n * per_point: progress(offset + done, per_point * len(points)))
        check.stages.append(Stage(_stage_label(steps), steps, check_network(
            network, X[picked], y[picked], epsilon, samples, rng, report)))
    settings = {"epsilon": epsilon, "batch": len(picked), "samples": samples,
                "after_steps": after_steps, "dtype": "float64", "seed": config.seed}
    return Report("config", settings, [check], time.perf_counter() - started)


def _config_batches(experiment, steps: int) -> Iterator[tuple]:
    """The experiment's own mini-batches and learning rates, for `steps` steps."""
    cfg = experiment.config.train
    X, y = experiment.dataset.splits["train"]
    m = len(X)
    size = m if cfg.batch_size == "full" else min(cfg.batch_size, m)
    step = epoch = 0
    while True:
        order = experiment.shuffle_rng.permutation(m) if cfg.shuffle else np.arange(m)
        for start in range(0, m, size):
            if step == steps:
                return
            rows = order[start:start + size]
            yield X[rows], y[rows], experiment.schedule.lr(cfg.learning_rate, epoch, step)
            step += 1
        epoch += 1


SWEEP_SIZES = [2, 3, 2]  # inputs and two hidden layers: a gradient crosses a hidden layer
SWEEP_OUTPUTS = {"sigmoid": 1, "softmax": 3, "linear": 2}
SWEEP_PENALTIES = {"none": (0.0, 0.0), "l2": (0.7, 0.0), "l1": (0.0, 0.3), "l2+l1": (0.7, 0.3)}
SWEEP_KEEP_PROBS = [0.8, 0.6]
SWEEP_LEARNING_RATE = 0.1  # Adam moves each parameter by about this much per step


@dataclass(frozen=True)
class Combination:
    """One small network of the engine sweep."""

    activation: str
    output: str
    init: str
    penalty: str
    batch_norm: bool
    dropout: bool


def combinations() -> list[Combination]:
    """Every activation × output/loss × initialization × penalty × batch norm × dropout."""
    return [Combination(*values) for values in itertools.product(
        ACTIVATIONS, SWEEP_OUTPUTS, INITIALIZERS, SWEEP_PENALTIES, (False, True), (False, True))]


def sweep_network(combination: Combination, batch: int,
                  rng: np.random.Generator) -> tuple[Network, np.ndarray, np.ndarray]:
    """A float64 network of the combination and a random batch (X (batch, n0), y) for it."""
    l2, l1 = SWEEP_PENALTIES[combination.penalty]
    n_outputs = SWEEP_OUTPUTS[combination.output]
    network = Network.build(
        [*SWEEP_SIZES, n_outputs], combination.activation, INITIALIZERS[combination.init](),
        combination.output, rng, rng, dtype=np.float64, batch_norm=combination.batch_norm,
        keep_probs=SWEEP_KEEP_PROBS if combination.dropout else None, l2=l2, l1=l1)
    # Biases at 0 and γ at 1 would hide a missing bias term or a missing factor γ.
    for name, array in network.params.items():
        if name.startswith("gamma"):
            array[...] = rng.uniform(0.5, 1.5, array.shape)
        elif name.startswith("b"):  # b1 and beta1 alike
            array[...] = rng.normal(0.0, 0.5, array.shape)
    return (network, *_sweep_batch(combination, batch, rng))


def _sweep_batch(combination: Combination, batch: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = rng.standard_normal((batch, SWEEP_SIZES[0]))
    n_outputs = SWEEP_OUTPUTS[combination.output]
    if combination.output == "linear":
        return X, rng.standard_normal((batch, n_outputs))
    return X, rng.integers(0, max(n_outputs, 2), batch)


def check_engine(epsilon: float = EPSILON, batch: int = 32, samples: int | None = None,
                 after_steps: int = 5, seed: int = 0,
                 progress: Progress | None = None) -> Report:
    """Check every combination of the engine's pieces on small random networks."""
    validate(epsilon, batch, samples, after_steps)
    started = time.perf_counter()
    every = combinations()
    checks = []
    for n, combination in enumerate(every):
        rng = np.random.default_rng([seed, n])
        network, X, y = sweep_network(combination, batch, rng)
        check = Check(asdict(combination))
        check.stages.append(Stage(_stage_label(0), 0, check_network(network, X, y, epsilon,
                                                                     samples, rng)))
        if after_steps:
            # Fresh batches: fitting the checked batch itself would shrink its gradient to noise.
            batches = (_sweep_batch(combination, batch, rng) + (SWEEP_LEARNING_RATE,)
                       for _ in range(after_steps))
            train_steps(network, Adam(), batches)
            check.stages.append(Stage(_stage_label(after_steps), after_steps,
                                      check_network(network, X, y, epsilon, samples, rng)))
        checks.append(check)
        if progress:
            progress(n + 1, len(every))
    settings = {"epsilon": epsilon, "batch": batch, "samples": samples,
                "after_steps": after_steps, "dtype": "float64", "seed": seed,
                "hidden_layers": SWEEP_SIZES[1:], "n_features": SWEEP_SIZES[0]}
    return Report("engine", settings, checks, time.perf_counter() - started)
