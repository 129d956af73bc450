"""Bayes error of the synthetic generators against computations that share none of its code.

Each reference integrates its own densities over a grid of x (or sums exact atoms, or uses a
closed form), reads the class shares and grids off sample() itself, and is compared with the
Monte Carlo estimate to within TOLERANCE. A second check counts the mistakes the Bayes
classifier makes on fresh data from generate(): that ties the posteriors to what the generators
really draw.
"""

import json
import math

import numpy as np
import pytest

from dlrun.data import bayes
from dlrun.data.synthetic import GENERATORS, Generator
from dlrun.engine.registry import build, describe

TOLERANCE = 0.003
TWO_PI = 2 * np.pi


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """An empty cache for every test, on disk and in memory; the user's is never touched."""
    monkeypatch.setenv("DLRUN_CACHE_DIR", str(tmp_path / "cache"))
    bayes._remembered.cache_clear()
    yield
    bayes._remembered.cache_clear()


def _generator(name, **options):
    return build(GENERATORS, "generator", {"name": name, **options})


def _counts(generator, classes):
    """Class counts as sample() makes them."""
    _, y = generator.sample(np.random.default_rng(0))
    return np.bincount(y, minlength=classes)


def _shares(generator, classes):
    return _counts(generator, classes) / generator.n_samples


def _normal(z):
    return np.exp(-z ** 2 / 2) / np.sqrt(TWO_PI)


_lower_tail = np.vectorize(lambda z: 0.5 * math.erfc(-z / math.sqrt(2)))


# ---------------------------------------------------------------------------------------------
# Independent references


def _moons_reference(g):
    """∫ min(π0 p0, π1 p1) dx on a grid, p_k by the midpoint rule over each half circle."""
    s, step = g.noise, g.noise / 6
    grid = np.stack(np.meshgrid(np.arange(-1 - 6 * s, 2 + 6 * s, step),
                                np.arange(-0.5 - 6 * s, 1 + 6 * s, step), indexing="ij"), -1)
    x = grid.reshape(-1, 2)
    t = (np.arange(400) + 0.5) * np.pi / 400
    curves = [np.column_stack([np.cos(t), np.sin(t)]),
              np.column_stack([1 - np.cos(t), 0.5 - np.sin(t)])]
    shares = _shares(g, 2)
    density = np.zeros((2, len(x)))
    for k, curve in enumerate(curves):
        for rows in np.array_split(np.arange(len(x)), 40):
            d2 = ((x[rows, None, :] - curve) ** 2).sum(-1)
            density[k, rows] = np.exp(-d2 / (2 * s * s)).mean(1) / (TWO_PI * s * s)
    return np.minimum(shares[0] * density[0], shares[1] * density[1]).sum() * step ** 2


def _circles_reference(g):
    """Radially: ∫ 2πρ min_k π_k p_k(ρ) dρ, p_r(ρ) = exp(−(ρ² + r²)/2σ²)·I0(ρr/σ²)/(2πσ²)."""
    s = g.noise
    step = s / 50
    rho = np.arange(step / 2, 1 + 10 * s, step)
    shares = _shares(g, 2)
    logs = [np.log(share) - (rho ** 2 + r ** 2) / (2 * s * s) + np.log(np.i0(rho * r / (s * s)))
            - np.log(TWO_PI * s * s) for share, r in zip(shares, (1.0, g.factor))]
    return (TWO_PI * rho * np.exp(np.minimum(*logs))).sum() * step


def _xor_reference(g):
    """∫ min(π0 p0, π1 p1) dx on a grid, with the density of U(0, 1) + σε at u by the midpoint
    rule over the uniform: p0 = ½[q(x₁)q(x₂) + q(−x₁)q(−x₂)], p1 the other two quadrants."""
    s = g.noise
    step = s / 10
    u = np.arange(-1 - 7 * s, 1 + 7 * s, step)
    v = (np.arange(4000) + 0.5) / 4000
    plus = _normal((u[:, None] - v) / s).mean(1) / s
    minus = _normal((-u[:, None] - v) / s).mean(1) / s
    p0 = (np.outer(plus, plus) + np.outer(minus, minus)) / 2
    p1 = (np.outer(plus, minus) + np.outer(minus, plus)) / 2
    shares = _shares(g, 2)
    return np.minimum(shares[0] * p0, shares[1] * p1).sum() * step ** 2


def _flower_grid(g, angles=2048):
    """(φ, dφ, ρ, dρ, q): q[k] = π_k·ρ·p_k(x) on a polar grid of x = ρ·(sin φ, cos φ).

    x = r·(sin θ, cos θ) is reached from (θ, r) = (φ, ρ) and (φ + π, −ρ) (θ taken on every
    turn), both with Jacobian ρ; θ's density is summed over every grid point of the class.
    """
    s, R, p = g.noise, g.radius, g.petals
    phi = np.arange(angles) * TWO_PI / angles
    rho_step = s / 10
    rho = np.arange(rho_step / 2, R + 9 * s, rho_step)
    turns = TWO_PI * np.arange(-3, 4)
    q = []
    for k, count in enumerate(_counts(g, 2)):
        nodes = np.linspace(k * np.pi, (k + 1) * np.pi, count, endpoint=False)

        def theta_density(angle):
            gaps = (angle[:, None, None] + turns[:, None] - nodes) / s
            return _normal(gaps).sum((1, 2)) / (count * s)

        ahead = theta_density(phi)[:, None] * _normal((rho - R * np.sin(p * phi)[:, None]) / s) / s
        behind = theta_density(phi + np.pi)[:, None] * _normal(
            (-rho - R * np.sin(p * (phi + np.pi))[:, None]) / s) / s
        q.append(count / g.n_samples * (ahead + behind))
    return phi, TWO_PI / angles, rho, rho_step, np.stack(q)


def _flower_reference(g):
    """∫∫ (Σ_k q_k − max_k q_k) dρ dφ: the ρ of dx = ρ dρ dφ cancels the 1/ρ of p_k."""
    _, dphi, _, drho, q = _flower_grid(g)
    return (q.sum(0) - q.max(0)).sum() * dphi * drho


def _spirals_reference(g):
    """Σ over the radii of the noiseless data set of (1/n)·(|S| − ∫ max_{k∈S} WN(φ; θ_k, σ²) dφ),
    S the points at that radius (one per class at most), θ_k their noiseless angles."""
    still = build(GENERATORS, "generator", {**describe(g), "noise": 0.0})
    X, _ = still.sample(np.random.default_rng(0))
    radius, centre = np.round(np.hypot(X[:, 0], X[:, 1]), 9), np.arctan2(X[:, 1], X[:, 0])
    phi = np.arange(4096) * TWO_PI / 4096
    turns = TWO_PI * np.arange(-4, 5)
    total = 0.0
    for value in np.unique(radius):
        here = centre[radius == value]
        gaps = (phi[:, None, None] - here[:, None] + turns) / g.noise
        wrapped = _normal(gaps).sum(2) / g.noise
        total += len(here) - wrapped.max(1).sum() * TWO_PI / 4096
    return total / len(X)


def _blobs_reference(g):
    """Mean over centre draws. Two classes: E Φ(−|c₀ − c₁|/2σ) over the difference of two
    uniform points (triangular per coordinate) on a grid. More: nearest-centre errors by
    geometry (equal shares): a point at distance r from its centre is misread when another centre
    falls in the disc of radius r around it, so R* = 1 − E(1 − |disc ∩ square|/|square|)^(K−1)."""
    assert np.ptp(_shares(g, g.classes)) == 0, "the references assume equal class shares"
    if g.classes == 2:
        return _blobs_two(g)
    assert g.features == 2
    return _blobs_discs(g)


def _blobs_two(g):
    s, sigma, step = g.spread, g.noise, g.spread / 250
    u = np.arange(-2 * s + step / 2, 2 * s, step)
    triangle = (2 * s - np.abs(u)) / (4 * s * s) * step
    grid = np.meshgrid(*[u] * g.features, indexing="ij")
    weight = np.prod(np.meshgrid(*[triangle] * g.features, indexing="ij"), axis=0)
    distance = np.sqrt(sum(axis ** 2 for axis in grid))
    return float((weight * _lower_tail(-distance / (2 * sigma))).sum())


def _blobs_discs(g, points=100_000, nodes=64):
    rng = np.random.default_rng(7)
    s, sigma = g.spread, g.noise
    own = rng.uniform(-s, s, (points, 2))
    x = own + rng.normal(0, sigma, (points, 2))
    r = np.hypot(*(x - own).T)
    alpha = (np.arange(nodes) + 0.5) / nodes * np.pi - np.pi / 2  # x₁ = a + r·sin α
    area = np.empty(points)
    for rows in np.array_split(np.arange(points), 10):
        column = x[rows, :1] + r[rows, None] * np.sin(alpha)
        half = r[rows, None] * np.cos(alpha)
        chord = np.clip(x[rows, 1:] + half, -s, s) - np.clip(x[rows, 1:] - half, -s, s)
        chord = np.where(np.abs(column) <= s, chord, 0.0)
        area[rows] = (chord * half).sum(1) * np.pi / nodes  # dx₁ = r·cos α dα
    return float(1 - np.mean((1 - area / (2 * s) ** 2) ** (g.classes - 1)))


REFERENCES = {"moons": _moons_reference, "circles": _circles_reference, "xor": _xor_reference,
              "flower": _flower_reference, "spirals": _spirals_reference,
              "blobs": _blobs_reference}

CASES = {
    "moons": [{}, {"noise": 0.3, "n_samples": 601}],
    "circles": [{}, {"noise": 0.15, "factor": 0.6, "n_samples": 301}],
    "xor": [{}, {"noise": 0.25, "n_samples": 1000}, {"noise": 0.4, "n_samples": 401}],
    "flower": [{}, {"n_samples": 40}, {"petals": 3},
               {"petals": 2, "radius": 2.0, "noise": 0.3, "n_samples": 41}],
    "spirals": [{}, {"noise": 1.0}, {"noise": 1.0, "n_samples": 400},
                {"classes": 4, "noise": 0.5, "n_samples": 402}],
    "blobs": [{"classes": 2}, {"classes": 2, "features": 1, "noise": 2.0}, {}],
}


def _cases():
    """Every registered generator, so a new one without a reference fails instead of passing."""
    return [pytest.param(name, options, id=f"{name}-{json.dumps(options, sort_keys=True)}")
            for name in sorted(GENERATORS) for options in CASES.get(name, [None])]


@pytest.mark.parametrize("name, options", _cases())
def test_bayes_error_matches_an_independent_computation(name, options):
    assert options is not None and name in REFERENCES, \
        f"no independent Bayes error reference for generator {name!r}: add one to this file"
    generator = _generator(name, **options)
    result = bayes.estimate(generator)
    reference = REFERENCES[name](generator)
    assert result.stderr <= 0.001
    assert abs(result.value - reference) <= TOLERANCE, (result, reference)


COUNTED = {"moons": {}, "circles": {"noise": 0.15, "n_samples": 301}, "xor": {"noise": 0.25},
           "flower": {}, "spirals": {"noise": 1.0, "n_samples": 400}}


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_the_bayes_classifier_errs_as_often_as_the_estimate_says(name):
    """Fresh data from generate() (stretched, so posterior() must undo it), labelled by argmax
    p(k|x): its error rate estimates R* with no use of the densities' values."""
    if name == "blobs":  # p(k|x) needs the centres each data set draws
        with pytest.raises(ValueError, match="centres"):
            bayes.posterior(_generator("blobs"), np.zeros((1, 2)))
        return
    assert name in COUNTED, f"no counting check for generator {name!r}: add one to COUNTED"
    generator = _generator(name, stretch=3.0, **COUNTED[name])
    rng = np.random.default_rng(11)
    wrong = seen = 0
    while seen < 200_000:
        X, y = generator.generate(rng)
        wrong += int((bayes.posterior(generator, X).argmax(1) != y).sum())
        seen += len(y)
    rate = wrong / seen
    assert abs(rate - bayes.estimate(generator).value) <= TOLERANCE


def test_the_flower_reference_density_is_the_one_sample_draws():
    """The polar density integrates to each class's share and puts as much of each class in
    every sector of the plane as generate() does."""
    generator = _generator("flower")
    phi, dphi, _, drho, q = _flower_grid(generator)
    assert np.allclose(q.sum((1, 2)) * dphi * drho, _shares(generator, 2), atol=1e-4)
    sector = (phi // (TWO_PI / 16)).astype(int)
    expected = np.stack([np.bincount(sector, weights=q[k].sum(1), minlength=16) * dphi * drho
                         for k in range(2)])
    rng = np.random.default_rng(3)
    X, y = map(np.concatenate, zip(*[generator.generate(rng) for _ in range(1000)]))
    angle = np.mod(np.arctan2(X[:, 0], X[:, 1]), TWO_PI)
    seen = np.stack([np.bincount((angle[y == k] // (TWO_PI / 16)).astype(int), minlength=16)
                     for k in range(2)]) / len(y)
    assert np.abs(seen - expected).max() < 0.002


def test_noise_zero_counts_coinciding_points():
    """Flower's 4 petals meet at the origin: 4 grid angles of each class (θ = jπ/4) put r = 0,
    so 4 of 400 points are unavoidable errors. Odd petals trace one curve twice: 1/2."""
    assert bayes.estimate(_generator("flower", noise=0.0)).value == pytest.approx(4 / 400)
    assert bayes.estimate(_generator("flower", noise=0.0, petals=3)).value == 0.5
    for name in ("moons", "circles", "spirals", "blobs", "xor"):
        result = bayes.estimate(_generator(name, noise=0.0))
        assert (result.value, result.stderr) == (0.0, 0.0)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_stretch_does_not_change_the_bayes_error(name):
    plain = bayes.estimate(_generator(name, n_samples=200))
    stretched = bayes.estimate(_generator(name, n_samples=200, stretch=250.0))
    assert stretched.value == pytest.approx(plain.value, abs=1e-9)
    assert bayes.cache_key(_generator(name, stretch=250.0)) == bayes.cache_key(_generator(name))


def test_moons_at_the_quick_start_noise_is_near_three_percent():
    result = bayes.bayes_error(_generator("moons", n_samples=1000, noise=0.2))
    assert result.value == pytest.approx(0.0288, abs=0.0015) and result.stderr <= 0.001
    assert set(result.to_json()) == {"value", "stderr", "method"}
    assert "monte carlo" in result.method


def test_a_generator_without_densities_fails_loudly():
    class Wobble(Generator):
        name = "wobble"

        def sample(self, rng):
            return rng.normal(size=(self.n_samples, 2)), np.arange(self.n_samples) % 2

    with pytest.raises(NotImplementedError, match="wobble"):
        bayes.bayes_error(Wobble())
    with pytest.raises(NotImplementedError, match="wobble"):
        bayes.estimate(Wobble(noise=0.0))


# ---------------------------------------------------------------------------------------------
# The cache


def test_the_cache_remembers_in_memory_and_on_disk(tmp_path):
    generator = _generator("xor", noise=0.2)
    first = bayes.bayes_error(generator)
    assert bayes.bayes_error(generator) is first  # memory
    stored = json.loads((tmp_path / "cache" / "bayes.json").read_text())
    assert stored[bayes.cache_key(generator)] == first.to_json()
    bayes._remembered.cache_clear()
    assert bayes.bayes_error(generator) == first  # disk
    assert bayes.bayes_error(_generator("xor", noise=0.2, stretch=9.0)) == first
    assert bayes.cache_key(_generator("xor", noise=1)) == bayes.cache_key(_generator("xor", noise=1.0))


def test_the_cache_file_is_read(tmp_path):
    generator = _generator("moons", noise=0.25)
    path = tmp_path / "cache" / "bayes.json"
    path.parent.mkdir()
    path.write_text(json.dumps({bayes.cache_key(generator):
                                {"value": 0.125, "stderr": 0.0, "method": "planted"}}))
    assert bayes.bayes_error(generator).value == 0.125


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"k": {"value": "x"}}', "\x00\xff"])
def test_a_corrupt_cache_file_is_ignored_and_replaced(tmp_path, content):
    path = tmp_path / "cache" / "bayes.json"
    path.parent.mkdir()
    path.write_text(content, errors="surrogateescape")
    generator = _generator("xor", noise=0.3)
    result = bayes.bayes_error(generator)
    assert result == bayes.estimate(generator)
    assert bayes.cache_key(generator) in json.loads(path.read_text())


def test_an_unwritable_cache_dir_is_ignored(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("DLRUN_CACHE_DIR", str(blocker / "below"))  # a directory under a file
    generator = _generator("xor", noise=0.3)
    assert bayes.bayes_error(generator) == bayes.estimate(generator)


def test_the_cache_lives_in_the_user_cache_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("DLRUN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert bayes.cache_path() == tmp_path / "xdg" / "dlrun" / "bayes.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert bayes.cache_path() == tmp_path / "home" / ".cache" / "dlrun" / "bayes.json"


# ---------------------------------------------------------------------------------------------
# Nearest-neighbour bounds


def test_nearest_neighbour_bounds_bracket_the_moons_bayes_error():
    generator = _generator("moons", n_samples=2000, noise=0.2)
    X, y = generator.generate(np.random.default_rng(0))
    bounds = bayes.nearest_neighbour_bounds(X, y)
    truth = bayes.bayes_error(generator).value
    assert bounds.lower <= truth <= bounds.upper
    assert bounds.examples == 2000 and bounds.nn_error == bounds.upper
    assert set(bounds.to_json()) == {"lower", "upper", "nn_error", "examples", "method"}


def test_nearest_neighbour_bounds_by_hand():
    """Pairs far apart: each point's neighbour is its partner. One mixed pair of four errs
    twice: R = 2/8, lower = ½(1 − √(1 − 2R)). Three classes, one mixed pair of three:
    R = 1/3, lower = ⅔(1 − √(1 − 3/2·R))."""
    X = np.array([0, 0.1, 5, 5.1, 10, 10.1, 20, 20.1])
    two = bayes.nearest_neighbour_bounds(X, np.array([0, 0, 1, 1, 0, 1, 1, 1]))
    assert (two.nn_error, two.upper) == (0.25, 0.25)
    assert two.lower == pytest.approx(0.5 * (1 - math.sqrt(0.5)))
    three = bayes.nearest_neighbour_bounds(X[:6], np.array(["a", "a", "b", "c", "c", "c"]))
    assert three.nn_error == pytest.approx(1 / 3)
    assert three.lower == pytest.approx(2 / 3 * (1 - math.sqrt(0.5)))
    every = bayes.nearest_neighbour_bounds(X[:4], np.array([0, 1, 0, 1]))  # R = 1: √ clipped
    assert (every.lower, every.upper) == (0.5, 1.0)


def test_nearest_neighbour_bounds_subsample_and_refuse_regression():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6000, 3))
    bounds = bayes.nearest_neighbour_bounds(X, (X[:, 0] > 0).astype(int))
    assert bounds.examples == 5000 and "subsample of 5000 of 6000" in bounds.method
    assert bounds == bayes.nearest_neighbour_bounds(X, (X[:, 0] > 0).astype(int))
    assert bayes.nearest_neighbour_bounds(X, X[:, 0]) is None
