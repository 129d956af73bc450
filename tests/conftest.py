import pytest
from hypothesis import HealthCheck, settings

from dlrun import config

# Property tests draw the same 50 examples each in the suite, so a red build is reproducible;
# `--hypothesis-profile=thorough` draws 2,000 fresh ones each time to find new failures.
_QUIET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
settings.register_profile("default", max_examples=50, deadline=None, derandomize=True,
                          suppress_health_check=_QUIET)
settings.register_profile("thorough", max_examples=2000, deadline=None,
                          suppress_health_check=_QUIET)
settings.load_profile("default")


@pytest.fixture
def make_config():
    """An ExperimentConfig from nested dicts merged over a small, fast experiment."""

    def make(**sections):
        spec = {
            "name": "t", "seed": 0,
            "data": {"generator": {"name": "moons", "n_samples": 200, "noise": 0.1}},
            "model": {"hidden_layers": [8, 4]},
            "train": {"epochs": 5, "learning_rate": 0.01, "batch_size": 32},
        }
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(spec.get(key), dict):
                spec[key] = {**spec[key], **value}
            else:
                spec[key] = value
        return config.validate(spec, "test")

    return make


@pytest.fixture(autouse=True, scope="session")
def _bayes_cache(tmp_path_factory):
    """The Bayes errors runs compute (human_error: auto) are cached in the suite's own directory,
    never in the user's."""
    patch = pytest.MonkeyPatch()
    patch.setenv("DLRUN_CACHE_DIR", str(tmp_path_factory.mktemp("bayes-cache")))
    yield
    patch.undo()


@pytest.fixture
def unregistered():
    """A name no entry of a registry has (longer than all of theirs put together), so that a
    test of an unknown name never pins what is registered today."""
    return lambda registry: "not_" + "_".join(registry)
