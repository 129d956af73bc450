"""The experiment spec: pydantic models, YAML loading with line numbers, dotted overrides.

Every default lives here with the reason for its value. Unknown keys are errors, so a typo is
never silently ignored.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from . import compose, yamlio
from .data.synthetic import GENERATORS
from .engine.init import INITIALIZERS
from .engine.layers import ACTIVATIONS
from .engine.optim import OPTIMIZERS
from .engine.registry import build, describe, options_of
from .engine.schedules import SCHEDULES
from .errors import ConfigError
from .metrics import MONITORED
from .sweep.space import find_distributions

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # one path component: it cannot leave runs/


def _build(registry: dict, kind: str, value):
    """build() for a value straight from YAML, where a name or an option key may be a list."""
    if isinstance(value, dict) and not (isinstance(value.get("name"), str)
                                        and all(isinstance(key, str) for key in value)):
        value = None  # not a mapping build() can read: its own error lists the allowed names
    return build(registry, kind, value)


class RegistryField:
    """Marks a field built from a registry, so that readers of run directories can tell an
    option left at its default from one that was set."""

    def __init__(self, registry: dict):
        self.registry = registry


def _registry_choice(registry: dict, kind: str):
    """A field holding `name` or `{name: ..., options}`, stored with every option filled in."""

    def resolve(value):
        return describe(_build(registry, kind, value))

    return Annotated[dict[str, Any], BeforeValidator(resolve), RegistryField(registry)]


def registry_at(dotted: str) -> dict | None:
    """The registry the field at `dotted` (model.init) chooses from, or None."""
    *parents, last = dotted.split(".")
    model = _model_at(tuple(parents))
    field = model.model_fields.get(last) if model else None
    marker = next((m for m in getattr(field, "metadata", ()) if isinstance(m, RegistryField)), None)
    return marker.registry if marker else None


def option_defaults(dotted: str, name: str) -> dict[str, Any] | None:
    """The defaults of the options of registry entry `name` in the field at `dotted` (model.init,
    random: {scale: 0.01}); None when that field holds no registry choice or knows no `name`."""
    registry = registry_at(dotted)
    if registry is None or not isinstance(name, str) or name not in registry:
        return None
    return {key: value for key, value in options_of(registry[name]).items()
            if value is not inspect.Parameter.empty}


def _one_of(registry: dict):
    """A field holding one of the registry's names, read when a config is validated (so an
    entry registered after import is allowed too)."""

    def check_name(value):
        if isinstance(value, str) and value in registry:
            return value
        names = [repr(name) for name in registry]
        choices = " or ".join(filter(None, [", ".join(names[:-1]), names[-1]]))
        got = f" (got {value!r})" if isinstance(value, (int, float, str)) else ""
        raise ValueError(f"must be {choices}{got}")

    return Annotated[str, BeforeValidator(check_name)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)


class Split(Strict):
    """Fractions of the examples in each split; they add up to 1."""

    train: float = Field(0.6, gt=0, le=1)  # 60/20/20 suits small data; use 98/1/1 for millions
    dev: float = Field(0.2, gt=0, lt=1)  # never 0: the dev set chooses the epoch and the model
    test: float = Field(0.2, ge=0, lt=1)

    @model_validator(mode="before")
    @classmethod
    def _missing_shares_take_the_rest(cls, data):
        """{train: 0.9, dev: 0.1} means no test set; {train: 0.8} leaves 0.1 each to dev and
        test. Shares that are not plain numbers are left for the field checks to name."""
        if not isinstance(data, dict):
            return data
        given = {k: data[k] for k in ("train", "dev", "test") if data.get(k) is not None}
        missing = [k for k in ("train", "dev", "test") if k not in given]
        # Shares of 0 to 1 only: anything else (text, 1e400, a 400-digit integer) is named by
        # the field checks, and the defaults apply where two shares and train are left out.
        if (not given or not missing or (len(missing) == 2 and "train" in missing)
                or not all(type(v) in (int, float) and 0 <= v <= 1 for v in given.values())):
            return data
        rest = 1 - sum(given.values())
        if rest < -1e-9:
            raise ValueError(f"{' + '.join(given)} is {sum(given.values()):g}: the shares must "
                             "add up to 1")
        if "dev" in missing and rest <= 1e-9:
            raise ValueError(f"{' + '.join(given)} is 1, which leaves no dev set; the dev set "
                             "chooses the epoch and the model, so give it a share")
        return {**data, **{k: round(max(rest, 0) / len(missing), 12) for k in missing}}

    @model_validator(mode="after")
    def _adds_up_to_one(self):
        total = self.train + self.dev + self.test
        if abs(total - 1) > 1e-6:
            defaults = [f"{k} {getattr(self, k):g}" for k in ("train", "dev", "test")
                        if k not in self.model_fields_set]
            raise ValueError(f"train + dev + test must be 1, got {total:g}"
                             + (f" ({', '.join(defaults)} by default)" if defaults else ""))
        return self


def _optional_generator(value):
    # `data.generator=null` on the command line arrives as "": both mean "no generator"
    return None if value in (None, "") else describe(_build(GENERATORS, "generator", value))


class Augment(Strict):
    """Random changes to training mini-batches only; dev and test data are never touched."""

    noise: float = Field(0.0, ge=0)  # std of Gaussian noise added to each (normalized) input
    flip: bool = False  # mirror half the images left to right (needs image_shape)
    shift: int = Field(0, ge=0)  # move images up to this many pixels each way (needs image_shape)
    image_shape: list[PositiveInt] | None = None  # [height, width] or [height, width, channels]

    @model_validator(mode="after")
    def _images_need_a_shape(self):
        if (self.flip or self.shift) and self.image_shape is None:
            raise ValueError("flip and shift move images: give image_shape, e.g. [28, 28]")
        if self.image_shape is not None and len(self.image_shape) not in (2, 3):
            raise ValueError("image_shape is [height, width] or [height, width, channels], got "
                             f"{len(self.image_shape)} numbers")
        return self


class DataConfig(Strict):
    """Where the examples come from (one of: a generator, one file, a file per split), how they
    are split, normalized and augmented."""

    generator: Annotated[dict[str, Any] | None, BeforeValidator(_optional_generator)] = None
    path: Path | None = None  # one .csv, .npy or .npz file, split by `split`
    train: Path | None = None  # or a file per split: train and dev (test optional), as given
    dev: Path | None = None
    test: Path | None = None
    target: str | None = None  # CSV: the label column; .npy: the .npy file of labels
    features: list[str] | None = None  # CSV: the feature columns (default: all but the target)
    split: Split | None = None  # default 60/20/20; not used with a file per split
    train_dev: float = Field(0.0, ge=0, lt=1)  # share of training examples held out, untrained
    subsample: float = Field(1.0, gt=0, le=1)  # train on this share of the training split only
    folds: int = Field(0, ge=0)  # K >= 2: K-fold cross-validation over train + dev (0: off)
    fold: int = Field(0, ge=0)  # with folds: the fold that is this run's dev set
    task: Literal["auto", "binary", "multiclass", "regression"] = "auto"  # auto: from the labels
    normalize: bool = True  # zero mean, unit variance from the training split: a rounder cost
    augment: Augment = Field(default_factory=Augment)

    @model_validator(mode="before")
    @classmethod
    def _moons_when_no_source(cls, data):
        if isinstance(data, dict) and all(data.get(key) is None for key in SOURCES):
            data = {**data, "generator": "moons"}
        return data

    @model_validator(mode="after")
    def _fold_among_folds(self):
        if self.folds == 1:
            raise ValueError("folds: 1 fold leaves nothing to validate on; give 2 or more, or 0 "
                             "for no cross-validation")
        if self.fold >= max(self.folds, 1):
            raise ValueError(f"fold: {self.fold} is not one of the {self.folds} folds "
                             f"(0 to {max(self.folds - 1, 0)})")
        return self

    @model_validator(mode="after")
    def _one_source(self):
        given = [key for key in ("generator", "path", "train") if getattr(self, key) is not None]
        if not given and self.dev is None and self.test is None:  # a generator set to null
            raise ValueError("give a source of examples: a generator, a path, or train/dev/test "
                             "files")
        if len(given) > 1:
            raise ValueError(f"give one source of examples, not {' and '.join(given)}: a "
                             "generator, a path, or train/dev/test files")
        per_split = [key for key in ("dev", "test") if getattr(self, key) is not None]
        if per_split and self.train is None:
            raise ValueError(f"{per_split[0]} is a file for one split: give train (and dev) too, "
                             "or use path for one file that gets split")
        if self.train is not None:
            if self.dev is None:
                raise ValueError("with a training file, give a dev file too: the dev set chooses")
            if self.split is not None:
                raise ValueError("split divides one source; with a file per split, leave it out")
        elif self.split is None:
            self.split = Split()
        if self.generator is not None and (self.target is not None or self.features is not None):
            raise ValueError("target and features name columns of a file; a generator makes "
                             "its own")
        # A run directory must name its data wherever it is later read from (plot, diagnose,
        # resume), so relative paths (from the current directory) are stored absolute.
        for key in ("path", "train", "dev", "test"):
            if getattr(self, key) is not None:
                setattr(self, key, getattr(self, key).absolute())
        paths = [getattr(self, key) for key in ("path", "train", "dev", "test")]
        if any(p is not None and p.suffix.lower() == ".npy" for p in paths) and self.target:
            self.target = str(Path(self.target).absolute())  # the .npy file of labels
        for path in filter(None, paths):
            if path.suffix.lower() not in (".csv", ".npy", ".npz"):
                raise ValueError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
                                 "allowed: .csv, .npy, .npz")
            if path.suffix.lower() in (".csv", ".npy") and not self.target:
                raise ValueError(f"{path}: give target: the label column of a .csv, or the .npy "
                                 "file holding the labels")
            if path.suffix.lower() != ".csv" and self.features is not None:
                raise ValueError(f"{path}: features names CSV columns; a .npy or .npz uses all "
                                 "of its columns")
        return self


SOURCES = ("generator", "path", "train", "dev", "test")


class ModelConfig(Strict):
    hidden_layers: list[PositiveInt] = [10, 5]  # the course's [n0, 10, 5, 1] network
    activation: _one_of(ACTIVATIONS) = "relu"
    output: Literal["auto", "sigmoid", "softmax", "linear"] = "auto"  # auto: from the task
    init: _registry_choice(INITIALIZERS, "init") = "he"  # He suits ReLU, the default activation
    batch_norm: bool = False
    keep_prob: Union[float, list[float]] = 1.0  # 1: no dropout; or one value per hidden layer
    init_from: Path | None = None  # a params.npz to start from (warm start)

    @field_validator("keep_prob", mode="before")
    @classmethod
    def _keep_prob_in_range(cls, value, info):
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, bool) or not isinstance(item, (int, float)) or not 0 < item <= 1:
                raise ValueError(f"must be a number in (0, 1] or a list of them, got {item!r}")
        hidden = info.data.get("hidden_layers")
        if isinstance(value, list) and hidden is not None and len(value) != len(hidden):
            raise ValueError(f"has {len(value)} values for {len(hidden)} hidden layers: give one "
                             "value or one per hidden layer")
        return value

    def keep_probs(self) -> list[float]:
        if isinstance(self.keep_prob, list):
            return list(self.keep_prob)
        return [self.keep_prob] * len(self.hidden_layers)


class Regularization(Strict):
    l2: float = Field(0.0, ge=0)  # λ in λ/(2m)·Σ‖W‖²
    l1: float = Field(0.0, ge=0)  # λ in λ/(2m)·Σ|W|


class EarlyStopping(Strict):
    """Stop when the dev metric has not improved by min_delta for patience epochs."""

    patience: PositiveInt = 10
    min_delta: float = Field(0.0, ge=0)
    metric: Literal[MONITORED] = "loss"  # the dev metric watched: loss, error, f1, macro_f1, ...


def _early_stopping(value):
    if value is True:
        return {}
    if value is False:
        return None
    return value


class TrainConfig(Strict):
    optimizer: _registry_choice(OPTIMIZERS, "optimizer") = "adam"
    learning_rate: float = Field(0.001, gt=0)  # Adam's usual starting point
    batch_size: Union[int, Literal["full"]] = 64  # a power of two that fits in cache
    shuffle: bool = True  # reshuffle before partitioning every epoch
    epochs: PositiveInt = 100
    decay: _registry_choice(SCHEDULES, "decay schedule") = "none"
    early_stopping: Annotated[EarlyStopping | None, BeforeValidator(_early_stopping)] = None
    record_steps: bool = False  # write every mini-batch's cost to steps.csv (and plot it)
    # Epochs between checkpoints (0: only when a run stops early). Ten costs a few milliseconds
    # on small networks and loses at most ten epochs to a killed process.
    checkpoint_every: int = Field(10, ge=0)
    # After training, train the final model on train + dev for the epochs the dev set chose
    # (dlrun.training.refit), in the run's refit/ directory; its test error is the one to quote.
    refit: bool = False
    refit_scale: Literal["epochs", "steps"] = "epochs"  # keep the passes over the data, or steps

    @field_validator("batch_size", mode="before")
    @classmethod
    def _batch_size_is_positive_or_full(cls, value):
        if value != "full" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"must be a whole number >= 1 or 'full', got {value!r}")
        return value


class DiagnoseConfig(Strict):
    """Human-level error and the thresholds `dlrun diagnose` judges a run by.

    Errors and gaps are in the run's error units: a fraction misclassified (0.01 is one point), or
    RMSE for regression.
    """

    # Proxy for Bayes error. auto: computed from the generator's densities, or bounded by the
    # nearest-neighbour error of the training data; a number given here always wins.
    human_error: Union[float, Literal["auto"]] = "auto"
    min_gap: float = Field(0.01, ge=0)  # one point: less is noise on a few hundred examples
    # The human estimate is itself rough: a train error within a tenth of it is at human level.
    human_margin: float = Field(0.1, ge=0)
    # A gap under this share of the largest one is not what limits the model (15%/16%: bias only).
    min_share: float = Field(0.3, gt=0, le=1)
    blowup_factor: float = Field(100.0, gt=1)  # loss 100x its lowest so far: two orders, diverging
    oscillation_share: float = Field(0.3, gt=0, le=1)  # epochs whose train loss rose by over 1%
    plateau_change: float = Field(0.01, ge=0)  # relative loss change over the last fifth of epochs
    # ‖dW1‖/‖dWL‖ two decades below one: the first layer learns a hundred times slower.
    vanishing_ratio: float = Field(1e-2, gt=0, lt=1)
    exploding_ratio: float = Field(1e3, gt=1)  # that ratio, or the activations' growth with depth
    dead_share: float = Field(0.5, gt=0, le=1)  # ReLU units that never fire on the dev data
    saturated_share: float = Field(0.5, gt=0, le=1)  # sigmoid/tanh outputs on their flat tails
    dev_rise: float = Field(0.1, ge=0)  # dev loss ending 10% above its minimum: trained too long

    @field_validator("human_error", mode="before")
    @classmethod
    def _human_error_is_auto_or_a_number(cls, value):
        if value == "auto":
            return value
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, float) and value in (float("inf"), float("-inf")):
            raise ValueError(f"must be a finite number (got {value})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"must be auto, or a number greater than or equal to 0 (0.02 for "
                             f"2%) (got {value!r})")
        return float(value)


class ExperimentConfig(Strict):
    name: str = Field("experiment", pattern=NAME_PATTERN)
    seed: int = 0
    dtype: Literal["float32", "float64"] = "float32"
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    regularization: Regularization = Field(default_factory=Regularization)
    train: TrainConfig = Field(default_factory=TrainConfig)
    diagnose: DiagnoseConfig = Field(default_factory=DiagnoseConfig)

    @field_validator("name", mode="before")
    @classmethod
    def _name_is_one_path_component(cls, value):
        import re
        if isinstance(value, str) and not re.match(NAME_PATTERN, value):
            raise ValueError("must start with a letter or digit and use only letters, digits, "
                             f"'.', '_' and '-' (at most 64), got {value!r}")
        return value

    def to_yaml(self) -> str:
        return yamlio.dump(self.model_dump(mode="json"))


# --- loading -----------------------------------------------------------------------------------

def _model_at(path: tuple) -> type[BaseModel] | None:
    """The model class that validates the mapping at `path`, for listing its allowed keys."""
    model: Any = ExperimentConfig
    for part in path:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return None
    return model


def _describe_error(error: dict) -> tuple[tuple, str]:
    loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and "[" in part))
    if error["type"] == "extra_forbidden":
        if not loc or loc[-1] != error["loc"][-1]:  # the unknown key itself may hold a "["
            loc = (*loc, error["loc"][-1])
        model = _model_at(loc[:-1])
        allowed = list(model.model_fields) if model else []
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        message = f"unknown key; allowed: {', '.join(allowed)}"
        if hint:
            message += f" (did you mean {hint[0]!r}?)"
        return loc, message
    message = error["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    value = error.get("input")
    if error["type"] not in ("value_error", "missing") and isinstance(value, (int, float, str)):
        message += f" (got {value!r})"
    return loc, message


def _locate(loc: tuple, lines: yamlio.Lines) -> int | None:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def validate(data: Any, source: str, lines: yamlio.Lines | None = None,
             overrides: list[str] = ()) -> ExperimentConfig:
    """An ExperimentConfig from plain data, or ConfigError naming source, line and key.

    An error in a key that an override set names the override, not a line of the file."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections (name, data, model, train, "
                          f"...), got {type(data).__name__}")
    for path, node in find_distributions(data):
        line = _locate(path, lines or {})
        raise ConfigError(f"{compose.at(source, line)}: {'.'.join(map(str, path))}: "
                          f"{next(iter(node))} is a search-space distribution, not a value; "
                          f"sample it with `dlrun sweep {source}`")
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as error:
        errors = error.errors()
        loc, message = _describe_error(errors[0])
        key = ".".join(str(part) for part in loc) or "(top level)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{_where(loc, source, lines, overrides)}: {key}: {message}{more}") \
            from None


def _where(loc: tuple, source: str, lines: yamlio.Lines | None, overrides: list[str]) -> str:
    """`file:line` of the key at `loc`, or the override that set it."""
    where = compose.at(source, _locate(loc, lines or {}))
    for override in overrides:
        path = tuple(override.partition("=")[0].strip().split("."))
        if [str(p) for p in loc[:len(path)]] == list(path[:len(loc)]):
            where = f"{source}: override {override!r}"
    return where


def located(error: ConfigError, path: str | Path, overrides: list[str] = (),
            lines: yamlio.Lines | None = None) -> ConfigError:
    """`error`, found after the spec at `path` was loaded, prefixed with where its key is
    (`lines`: the spec's key lines, read again when not given)."""
    if error.key is None:
        return error
    if lines is None:
        _, lines = read(path, overrides)
    return ConfigError(f"{_where(tuple(error.key.split('.')), str(path), lines, overrides)}: "
                       f"{error}")


def apply_override(data: dict, override: str) -> None:
    """Set `a.b.c=value` in data; the value is read as YAML."""
    path, sep, text = override.partition("=")
    keys = path.strip().split(".")
    if not sep or not all(keys):
        raise ConfigError(f"override {override!r}: expected KEY.PATH=VALUE, "
                          "e.g. train.learning_rate=0.01")
    node = data
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is None:  # an option of a registry field left at its default, e.g. adam's beta1
            model = _model_at(tuple(keys[:depth]))
            field = model.model_fields.get(key) if model else None
            child = field.default if field is not None and isinstance(field.default, str) else {}
        if isinstance(child, str):  # `optimizer: adam` gains options: {name: adam, beta1: ...}
            child = {"name": child}
        elif not isinstance(child, dict):
            child = {}
        node[key] = child
        node = child
    node[keys[-1]] = yamlio.scalar(text)


def read(path: str | Path, overrides: list[str] = ()) -> tuple[Any, yamlio.Lines]:
    """(data, key lines) of a spec file, the files it extends merged in (dlrun.compose), with
    dotted overrides applied; errors are ConfigErrors."""
    data, lines = compose.compose(path)
    if data is None:
        data = {}
    if isinstance(data, dict):
        for override in overrides:
            apply_override(data, override)
    return data, lines


def load(path: str | Path, overrides: list[str] = ()) -> ExperimentConfig:
    """Read, override and validate an experiment spec; every failure is a ConfigError."""
    data, lines = read(path, overrides)
    return validate(data, str(path), lines, overrides)
