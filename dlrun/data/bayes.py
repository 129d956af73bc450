"""Bayes error: the error of the best classifier there is, the one that knows the distribution.

For a synthetic generator the class densities p(x|k) are known, and

    R* = E_x[1 − max_k p(k|x)],   p(k|x) = π_k p(x|k) / Σ_j π_j p(x|j),   π_k = counts_k / n_samples

is estimated by Monte Carlo: x_1..x_M are drawn from the generator itself and the mean of
1 − max_k p(k|x_i) is taken, with stderr = std / √M. Averaging the exact conditional error has
far less variance than counting the mistakes of the Bayes classifier.

The densities, read off each generator's sample():

    moons, circles  noise around an arc: x = o + a·u(t) + σε, u(t) = (cos t, sin t), t uniform on
                    [t0, t0 + L]; p(x|k) = (1/L) ∫ N(x; o + a·u(t), σ²I) dt by Gauss–Legendre on
                    the part of the arc where the integrand is not negligible
    xor             uniform on two quadrants ⊛ N(0, σ²I): products of Φ differences
    flower          θ = θ_i + σε₁ (θ_i a fixed grid on its half turn), r = R·sin(pθ) + σε₂,
                    x = r·(sin θ, cos θ). x = ρ·(sin φ, cos φ) has the preimages (θ, r) = (φ, ρ)
                    and (φ + π, −ρ), both with Jacobian ρ, so with w_k the wrapped density of θ
                    p(k|x) ∝ π_k·[w_k(φ)·N(ρ; R sin pφ, σ²) + w_k(φ + π)·N(−ρ; R sin p(φ + π), σ²)]
    spirals         radius exactly on the class's grid linspace(0.05, 1, count), angle θ_k(r) + σε:
                    p(k|x) ∝ [|x| on grid k]·WN(φ; θ_k(|x|), σ²), as π_k/count_k = 1/n_samples
    blobs           N(x; c_k, σ²I), centres c_k uniform in [−spread, spread]^features and drawn
                    anew for every data set: the value is the mean Bayes error over centre draws,
                    each Monte Carlo point with centres of its own

With noise 0 flower and spirals place fixed points, and the other generators put their classes
on curves, regions or points that meet in a set of probability 0; either way
R* = Σ_spots (points there − points of the spot's largest class) / n, counted exactly on one
data set (stderr 0). Flower's petals meet at the origin; the other generators come out 0.

For data from files only samples exist. The Cover–Hart inequality ties the 1-nearest-neighbour
error R of infinitely many examples to R* for K classes:

    R* ≤ R ≤ R*·(2 − K/(K−1)·R*)   ⇒   (K−1)/K·(1 − √(1 − K/(K−1)·R)) ≤ R* ≤ R
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..engine.registry import build, describe
from .labels import infer_task
from .synthetic import GENERATORS, Generator

VERSION = 1  # part of every cache key: raise it when an estimate changes
TARGET_STDERR = 0.0005  # the Monte Carlo stops once its stderr is this small...
MIN_POINTS, MAX_POINTS, CHUNK = 20_000, 200_000, 10_000  # ...or it has MAX_POINTS points
NEIGHBOUR_LIMIT = 5000  # nearest_neighbour_bounds subsamples larger data to this many examples
NEGLIGIBLE = 30.0  # below exp(−30) of the peak the integrand adds nothing measurable
REACH = 10.0  # Gaussian terms more than REACH·σ away (below exp(−50)) are left out


@dataclass(frozen=True)
class BayesError:
    value: float  # error rate in [0, 1]
    stderr: float
    method: str

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BayesBounds:
    lower: float
    upper: float
    nn_error: float  # leave-one-out 1-nearest-neighbour error
    examples: int
    method: str

    def to_json(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Entry points


def bayes_error(generator: Generator) -> BayesError:
    """R* of a built generator, remembered in memory and on disk per set of options.

    `stretch` is left out of the key: it is an invertible linear map of the features and does
    not change R*, so every stretch of one problem shares one entry.
    """
    _losses_of(generator)  # a generator without densities fails here, not in a cache lookup
    return _remembered(cache_key(generator))


def estimate(generator: Generator) -> BayesError:
    """R* of a built generator, computed afresh (no cache), seeded by its options."""
    losses = _losses_of(generator)
    if generator.noise == 0:
        return _atoms(generator, _rng(generator))
    return _monte_carlo(lambda rng, m: losses(generator, rng, m), _rng(generator))


def posterior(generator: Generator, X: np.ndarray) -> np.ndarray:
    """p(k|x) (m, K) for rows X as generator.generate returns them (stretched); noise > 0.

    Its argmax is the Bayes classifier. Blobs has none: p(k|x) depends on the centres, which
    every data set draws anew and generate() does not return.
    """
    if generator.name == "blobs":
        raise ValueError("generator 'blobs': p(k|x) depends on the centres each data set draws")
    if generator.name not in _POSTERIORS:
        raise _no_densities(generator)
    X = _unstretched(generator, np.asarray(X, dtype=np.float64))
    starts = range(0, max(len(X), 1), CHUNK)  # bounded memory; an empty X gives (0, K)
    return np.vstack([_POSTERIORS[generator.name](generator, X[i:i + CHUNK]) for i in starts])


def nearest_neighbour_bounds(X: np.ndarray, y: np.ndarray, limit: int = NEIGHBOUR_LIMIT,
                             seed: int = 0) -> BayesBounds | None:
    """Cover–Hart bounds on R* from the leave-one-out 1-NN error R of the examples (X, y).

    lower = (K−1)/K·(1 − √max(0, 1 − K/(K−1)·R)), upper = R. The bounds are asymptotic: they
    hold for the 1-NN error of infinitely many examples, and R from finitely many is noisy and
    usually too high. Columns are standardized first so a feature's units do not decide which
    neighbour is nearest; more than `limit` examples are subsampled (seeded by `seed`).
    Regression targets have no Bayes *error rate*: the result is None.
    """
    y = np.asarray(y)
    if infer_task(y) == "regression":
        return None
    y = y.reshape(len(y))  # one label column
    X = np.asarray(X, dtype=np.float64).reshape(len(y), -1)
    if len(y) < 2:
        raise ValueError(f"leave-one-out needs at least 2 examples, got {len(y)}")
    total = len(y)
    if total > limit:
        keep = np.random.default_rng(seed).choice(total, limit, replace=False)
        X, y = X[keep], y[keep]
    error = float(np.mean(y[_nearest_other(_standardized(X))] != y))
    classes = len(np.unique(y))
    which = f"a seeded subsample of {len(y)} of {total}" if total > len(y) else f"{len(y)}"
    return BayesBounds(lower=cover_hart_lower(error, classes), upper=error, nn_error=error,
                       examples=len(y), method=f"Cover–Hart bounds (asymptotic) from the "
                       f"leave-one-out 1-nearest-neighbour error on {which} examples, "
                       f"standardized")


def cover_hart_lower(nn_error: float, classes: int) -> float:
    """(K−1)/K·(1 − √(1 − K/(K−1)·R)): the smallest R* that allows an asymptotic 1-NN error R."""
    if classes < 2:
        return 0.0
    ratio = classes / (classes - 1)
    return float((1 - np.sqrt(max(0.0, 1 - ratio * nn_error))) / ratio)


# ---------------------------------------------------------------------------------------------
# The cache: memory, then a JSON file, then the computation


def cache_key(generator: Generator) -> str:
    """The generator's options but stretch, with whole floats as ints (noise 1 = noise 1.0), and
    a fingerprint of the code that defines its distribution."""
    options = {k: _canonical(v) for k, v in describe(generator).items() if k != "stretch"}
    return json.dumps({"generator": options, "source": _fingerprint(type(generator))},
                      sort_keys=True)


def cache_path() -> Path | None:
    """$DLRUN_CACHE_DIR/bayes.json, else $XDG_CACHE_HOME/dlrun/bayes.json, else
    ~/.cache/dlrun/bayes.json; None when there is no home directory to put it in."""
    if os.environ.get("DLRUN_CACHE_DIR"):
        return Path(os.environ["DLRUN_CACHE_DIR"]) / "bayes.json"
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:
        return None
    return base / "dlrun" / "bayes.json"


@functools.lru_cache(maxsize=None)
def _remembered(key: str) -> BayesError:
    stored = _read_cache().get(key)
    if stored is not None:
        return stored
    result = estimate(build(GENERATORS, "generator", json.loads(key)["generator"]))
    _write_cache(key, result)
    return result


def _read_cache() -> dict[str, BayesError]:
    """The file's valid entries; a missing, unreadable or corrupt file holds none."""
    path = cache_path()
    try:
        entries = json.loads(path.read_text(encoding="utf-8")) if path else {}
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return {}
    if not isinstance(entries, dict):
        return {}
    parsed = {key: _parsed(entry) for key, entry in entries.items()}
    return {key: entry for key, entry in parsed.items() if entry is not None}


def _parsed(entry) -> BayesError | None:
    try:
        result = BayesError(float(entry["value"]), float(entry["stderr"]), str(entry["method"]))
    except (TypeError, KeyError, ValueError):
        return None
    return result if 0 <= result.value <= 1 and result.stderr >= 0 else None


def _write_cache(key: str, result: BayesError) -> None:
    """Add the entry atomically (temporary file, then rename); a cache that cannot be written is
    only a cache, so every OSError is swallowed."""
    path = cache_path()
    if path is None:
        return
    entries = {k: v.to_json() for k, v in _read_cache().items()}
    entries[key] = result.to_json()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(entries, handle, indent=1, sort_keys=True)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError:
        pass


def _canonical(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


@functools.lru_cache(maxsize=None)
def _fingerprint(cls: type) -> str:
    """Hash of this module's VERSION and the source of the generator's classes: editing how a
    generator samples makes its old cache entries unreachable."""
    parts = [str(VERSION)]
    for klass in cls.__mro__:
        if klass.__module__ == Generator.__module__:
            try:
                parts.append(inspect.getsource(klass))
            except (OSError, TypeError):
                parts.append(klass.__qualname__)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _rng(generator: Generator) -> np.random.Generator:
    """Seeded by the options, so one problem always gives the same estimate."""
    digest = hashlib.sha256(cache_key(generator).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


# ---------------------------------------------------------------------------------------------
# Estimators


def _monte_carlo(losses: Callable[[np.random.Generator, int], np.ndarray],
                 rng: np.random.Generator) -> BayesError:
    """Mean of 1 − max_k p(k|x) over points drawn CHUNK at a time, until TARGET_STDERR.

    The points of one data set are stratified (fixed class counts, fixed grids), which only
    lowers the variance of the mean: the iid stderr reported errs on the large side.
    """
    batches: list[np.ndarray] = []
    while sum(map(len, batches)) < MAX_POINTS:
        batches.append(losses(rng, CHUNK))
        values = np.concatenate(batches)
        stderr = values.std(ddof=1) / np.sqrt(len(values))
        if len(values) >= MIN_POINTS and stderr <= TARGET_STDERR:
            break
    return BayesError(float(values.mean()), float(stderr),
                      f"monte carlo over the generating densities, {len(values)} points")


def _atoms(generator: Generator, rng: np.random.Generator) -> BayesError:
    """Noise 0: Σ over distinct points of (points there − the largest class's points there) / n.

    Points closer than 1e-9 of the data's scale are one point: the same atom computed along two
    routes differs by rounding only.
    """
    X, y = generator.sample(rng)
    scale = max(float(np.abs(X).max()), 1e-300)
    spots = np.round(X / scale, 9) + 0.0  # + 0.0 turns −0.0 into 0.0, one spot
    _, spot = np.unique(spots, axis=0, return_inverse=True)
    table = np.zeros((spot.max() + 1, y.max() + 1), dtype=np.int64)
    np.add.at(table, (spot.ravel(), y), 1)
    error = (table.sum(1) - table.max(1)).sum() / len(y)
    return BayesError(float(error), 0.0, "exact for noise 0: points of different classes that "
                      f"coincide, counted on one data set of {len(y)}")


def _losses_of(generator: Generator):
    """losses(generator, rng, m) -> the m values 1 − max_k p(k|x) of m fresh points."""
    if generator.name == "blobs":
        return _blobs_losses
    if generator.name in _POSTERIORS:
        return _sampled_losses
    raise _no_densities(generator)


def _no_densities(generator: Generator) -> NotImplementedError:
    return NotImplementedError(
        f"no class densities for generator {generator.name!r}: dlrun.data.bayes cannot compute "
        "its Bayes error; add a posterior for it to dlrun.data.bayes._POSTERIORS")


def _sampled_losses(generator: Generator, rng: np.random.Generator, m: int) -> np.ndarray:
    X = _draw(generator, rng, m)
    return 1 - _POSTERIORS[generator.name](generator, X).max(axis=1)


def _draw(generator: Generator, rng: np.random.Generator, m: int) -> np.ndarray:
    """m rows from whole data sets of generate() (grids and class counts as the code makes
    them), mapped back to the generator's own units."""
    parts, rows = [], 0
    while rows < m:
        X, _ = generator.generate(rng)
        parts.append(X)
        rows += len(X)
    X = np.vstack(parts)
    if len(X) > m:  # a random subset: the data sets list their classes in blocks
        X = X[rng.choice(len(X), m, replace=False)]
    return _unstretched(generator, X)


def _unstretched(generator: Generator, X: np.ndarray) -> np.ndarray:
    """Undo Generator.generate's stretch: factors rising from 1 to `stretch` over the columns."""
    if generator.stretch == 1 or X.shape[1] < 2:
        return X
    return X / generator.stretch ** np.linspace(0, 1, X.shape[1])


def _priors(generator: Generator, classes: int) -> np.ndarray:
    return np.array(generator.counts(classes), dtype=np.float64) / generator.n_samples


# ---------------------------------------------------------------------------------------------
# Class posteriors, x in the generator's own units


def _normalized(log_scores: np.ndarray) -> np.ndarray:
    """softmax over classes, from log π_k p(x|k) (−inf for classes that cannot be at x)."""
    shifted = np.exp(log_scores - log_scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _log(values: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(values)


def _moons_posterior(generator, X):
    """Upper arc: centre (0, 0), t in [0, π]; lower arc (1 − cos t, 0.5 − sin t): centre
    (1, 0.5), t in [π, 2π]; both radius 1."""
    arcs = [((0.0, 0.0), 1.0, 0.0), ((1.0, 0.5), 1.0, np.pi)]
    logs = [_arc_log_density(X, centre, radius, start, np.pi, generator.noise)
            for centre, radius, start in arcs]
    return _normalized(np.column_stack(logs) + _log(_priors(generator, 2)))


def _circles_posterior(generator, X):
    """Class 0 the unit circle, class 1 the circle of radius `factor`, angles uniform."""
    logs = [_arc_log_density(X, (0.0, 0.0), radius, 0.0, 2 * np.pi, generator.noise)
            for radius in (1.0, generator.factor)]
    return _normalized(np.column_stack(logs) + _log(_priors(generator, 2)))


_GAUSS_NODES, _GAUSS_WEIGHTS = np.polynomial.legendre.leggauss(32)


def _arc_log_density(X, centre, radius, start, length, sigma):
    """log (1/L) ∫ N(x; o + a·u(t), σ²I) dt over t in [start, start + L].

    With x − o = ρ·u(ψ): |x − o − a·u(t)|² = (ρ − a)² + 2aρ(1 − cos(t − ψ)), so the integral is
    N-like in ρ − a times ∫ exp(−κ(1 − cos s)) ds, κ = aρ/σ², s = t − ψ over the arc. The
    integrand falls with |s|; only |s| ≤ reach, where it is within exp(−NEGLIGIBLE) of its value
    at the arc's point nearest s = 0, counts. 32-point Gauss–Legendre on each (at most two) piece
    of the arc inside that window gets log p within 1e-6 of a 400,000-point midpoint rule.
    """
    d = X - np.asarray(centre)
    rho = np.hypot(d[:, 0], d[:, 1])
    kappa = radius * rho / sigma ** 2
    low = np.mod(start - np.arctan2(d[:, 1], d[:, 0]) + np.pi, 2 * np.pi) - np.pi  # in [−π, π)
    reach = _window(low, length, kappa)
    # The arc, seen from ψ, is [low, low + L]; the part past π is the same as [low − 2π, …].
    pieces = [(low, low + length), (low - 2 * np.pi, low + length - 2 * np.pi)]
    exponents, weights = [], []
    for a, b in pieces:
        a, b = np.maximum(a, -reach), np.minimum(b, reach)
        half = np.maximum(b - a, 0) / 2
        s = (a + half)[:, None] + half[:, None] * _GAUSS_NODES
        exponents.append(2 * kappa[:, None] * np.sin(s / 2) ** 2)  # κ(1 − cos s), no cancellation
        weights.append(half[:, None] * _GAUSS_WEIGHTS)
    exponent, weight = np.hstack(exponents), np.hstack(weights)
    floor = np.where(weight > 0, exponent, np.inf).min(axis=1, keepdims=True)
    integral = (weight * np.exp(-(exponent - floor))).sum(axis=1)
    return (-(rho - radius) ** 2 / (2 * sigma ** 2) + _log(integral) - floor[:, 0]
            - np.log(2 * np.pi * sigma ** 2 * length))


def _window(low: np.ndarray, length: float, kappa: np.ndarray) -> np.ndarray:
    """Half-width of the s-window where exp(−κ(1 − cos s)) is within exp(−NEGLIGIBLE) of its
    largest value on the arc [low, low + L], which it takes at the arc's point nearest s = 0."""
    ahead = np.mod(low, 2 * np.pi)  # how far the arc starts past s = 0, in [0, 2π)
    nearest = np.where((ahead == 0) | (ahead + length >= 2 * np.pi), 0.0,
                       np.minimum(ahead, 2 * np.pi - ahead - length))
    with np.errstate(divide="ignore", invalid="ignore"):
        reach = np.arccos(np.clip(np.cos(nearest) - NEGLIGIBLE / kappa, -1, 1))
    return np.maximum(reach, nearest * (1 + 1e-12))  # rounding must not empty the window


def _xor_posterior(generator, X):
    """Class 0 uniform on [0,1]² ∪ [−1,0]², class 1 on the other two quadrants, each quadrant
    half the class; with g(u) = P(0 ≤ u − σε ≤ 1) the densities are
    p0 = ½[g(x₁)g(x₂) + g(−x₁)g(−x₂)], p1 = ½[g(x₁)g(−x₂) + g(−x₁)g(x₂)]."""
    sigma = generator.noise
    g = [[_interval((u - 1) / sigma, u / sigma) for u in (x, -x)] for x in X.T]
    (pos1, neg1), (pos2, neg2) = g
    densities = np.column_stack([pos1 * pos2 + neg1 * neg2, pos1 * neg2 + neg1 * pos2]) / 2
    return _normalized(_log(densities) + _log(_priors(generator, 2)))


def _flower_posterior(generator, X):
    """See the module docstring: x = r·(sin θ, cos θ) has preimages (φ, ρ) and (φ + π, −ρ)."""
    sigma, R, p = generator.noise, generator.radius, generator.petals
    rho, phi = np.hypot(X[:, 0], X[:, 1]), np.arctan2(X[:, 0], X[:, 1])
    log_a = -(rho - R * np.sin(p * phi)) ** 2 / (2 * sigma ** 2)
    log_b = -(rho + R * np.sin(p * (phi + np.pi))) ** 2 / (2 * sigma ** 2)
    top = np.maximum(log_a, log_b)  # the Jacobian 1/ρ and this scale are common to both classes
    a, b = np.exp(log_a - top), np.exp(log_b - top)
    priors = _priors(generator, 2)
    scores = [prior * (_flower_angle_density(generator, k, phi) * a
                       + _flower_angle_density(generator, k, phi + np.pi) * b)
              for k, prior in enumerate(priors)]
    return _normalized(_log(np.column_stack(scores)))


def _flower_angle_density(generator, label: int, angle: np.ndarray) -> np.ndarray:
    """Wrapped density at `angle` of θ = θ_i + σε, θ_i = label·π + i·h, h = π/count (i < count).

    When σ spans 4 grid steps or more, the grid is taken as the uniform on
    [label·π − h/2, label·π + π − h/2] it is the midpoint rule of: the ripple is below
    exp(−2π²·16) and the end effects are O((h/σ)²/24) of the density. Otherwise the grid points
    within REACH·σ are summed exactly.
    """
    sigma, count = generator.noise, generator.counts(2)[label]
    step, first = np.pi / count, label * np.pi
    theta = _turns(angle, first - step - REACH * sigma, first + np.pi + REACH * sigma)
    if sigma >= 4 * step:
        low = first - step / 2
        return _interval((theta - low - np.pi) / sigma, (theta - low) / sigma).sum(axis=1) / np.pi
    width = int(np.ceil(REACH * sigma / step))
    nearest = np.round((theta - first) / step)[..., None] + np.arange(-width, width + 1)
    gaps = (theta[..., None] - first - nearest * step) / sigma
    terms = np.where((nearest >= 0) & (nearest < count), np.exp(-gaps ** 2 / 2), 0.0)
    return terms.sum(axis=(1, 2)) / (count * sigma * np.sqrt(2 * np.pi))


def _turns(angle: np.ndarray, low: float, high: float) -> np.ndarray:
    """(m, turns): angle + 2πj for every whole j that can put some angle in [low, high]."""
    j = np.arange(np.ceil(low / (2 * np.pi)) - 1, np.floor(high / (2 * np.pi)) + 1)
    return np.mod(angle, 2 * np.pi)[:, None] + 2 * np.pi * j


def _spirals_posterior(generator, X):
    """Radius exactly on the class's grid, angle 2π(k/K + turns·r) + σε wrapped on the circle.

    Only classes whose grid holds |x| can be there: those whose nearest grid value is, to
    rounding, the nearest of all (identical grids, as with equal counts, always tie).
    """
    classes, sigma = generator.classes, generator.noise
    radius, angle = np.hypot(X[:, 0], X[:, 1]), np.arctan2(X[:, 1], X[:, 0])
    grids = [np.linspace(0.05, 1, count) for count in generator.counts(classes)]  # sample()'s
    miss = np.column_stack([_distance_to(grid, radius) for grid in grids])
    holds = miss <= miss.min(axis=1, keepdims=True) + 1e-12
    centres = 2 * np.pi * (np.arange(classes) / classes + generator.turns * radius[:, None])
    return _normalized(np.where(holds, _log_wrapped_normal(angle[:, None] - centres, sigma),
                                -np.inf))


def _distance_to(grid: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Distance of each value to the nearest grid value (inf for an empty grid)."""
    if len(grid) == 0:
        return np.full(values.shape, np.inf)
    after = np.searchsorted(grid, values)
    below, above = grid[np.maximum(after - 1, 0)], grid[np.minimum(after, len(grid) - 1)]
    return np.minimum(np.abs(below - values), np.abs(above - values))


def _log_wrapped_normal(gap: np.ndarray, sigma: float) -> np.ndarray:
    """log Σ_j N(gap + 2πj; 0, σ²), factored at the nearest turn so no term overflows."""
    gap = np.mod(gap + np.pi, 2 * np.pi) - np.pi  # in [−π, π): the nearest turn
    turns = 2 * np.pi * np.arange(1, 2 + int(REACH * sigma / (2 * np.pi)))
    near, far = np.abs(gap)[..., None], turns
    rest = (np.exp(-(far ** 2 + 2 * far * near) / (2 * sigma ** 2))
            + np.exp(-(far ** 2 - 2 * far * near) / (2 * sigma ** 2))).sum(axis=-1)
    return -gap ** 2 / (2 * sigma ** 2) + np.log1p(rest) - np.log(sigma * np.sqrt(2 * np.pi))


def _blobs_losses(generator, rng, m):
    """1 − max_k p(k|x, centres), each point with centres, class and noise of its own draw."""
    classes, features, sigma = generator.classes, generator.features, generator.noise
    priors = _priors(generator, classes)
    centres = rng.uniform(-generator.spread, generator.spread, (m, classes, features))
    label = rng.choice(classes, size=m, p=priors)
    X = centres[np.arange(m), label] + rng.normal(0, sigma, (m, features))
    log_scores = -((X[:, None, :] - centres) ** 2).sum(axis=2) / (2 * sigma ** 2)
    return 1 - _normalized(log_scores + _log(priors)).max(axis=1)


_POSTERIORS = {"moons": _moons_posterior, "circles": _circles_posterior, "xor": _xor_posterior,
               "flower": _flower_posterior, "spirals": _spirals_posterior}


# ---------------------------------------------------------------------------------------------
# Normal probabilities without SciPy


def _upper_tail(z: np.ndarray) -> np.ndarray:
    """Q(z) = P(ε > z) for z ≥ 0, via erfc(z/√2) by the Chebyshev fit of Numerical Recipes
    (fractional error below 1.2e-7, far under the Monte Carlo error), accurate deep in the tail."""
    x = z / np.sqrt(2)
    t = 1 / (1 + 0.5 * x)
    poly = -x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    return 0.5 * t * np.exp(poly)


def _interval(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """P(low < ε < high) for standard normal ε, from tails so it keeps its relative accuracy when
    both ends are far out on one side."""
    low, high = np.broadcast_arrays(low, high)
    right = _upper_tail(np.abs(low)) - _upper_tail(np.abs(high))  # both ends ≥ 0 (or both ≤ 0)
    straddle = 1 - _upper_tail(np.abs(low)) - _upper_tail(np.abs(high))
    same_side = (low >= 0) | (high <= 0)
    return np.where(same_side, np.abs(right), straddle)


# ---------------------------------------------------------------------------------------------
# Nearest neighbours


def _standardized(X: np.ndarray) -> np.ndarray:
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _nearest_other(X: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Index of each row's nearest other row (Euclidean), CHUNK rows of distances at a time."""
    squares = (X ** 2).sum(axis=1)
    nearest = np.empty(len(X), dtype=np.int64)
    for start in range(0, len(X), chunk):
        rows = slice(start, start + chunk)
        d2 = squares[rows, None] - 2 * X[rows] @ X.T + squares[None, :]
        d2[np.arange(d2.shape[0]), np.arange(start, start + d2.shape[0])] = np.inf  # leave one out
        nearest[rows] = d2.argmin(axis=1)
    return nearest
