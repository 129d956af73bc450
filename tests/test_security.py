"""Hostile files: YAML never builds objects, .npy/.npz files are never unpickled, and no name in a
config or on the command line can put a run outside the runs directory."""

import ast
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import dlrun
from dlrun import config
from dlrun.cli import app
from dlrun.errors import ConfigError
from dlrun.rundir import checkpoint, layout
from dlrun.training import loop, session

runner = CliRunner()
SOURCES = sorted(Path(dlrun.__file__).parent.rglob("*.py"))
SMALL = {"name": "s", "data": {"generator": {"name": "moons", "n_samples": 60}},
         "model": {"hidden_layers": [3]}, "train": {"epochs": 2, "batch_size": 16}}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def refused(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    from dlrun import plots
    monkeypatch.setattr(plots, "draw", lambda *args, **kwargs: [])


@pytest.fixture
def sentinel(tmp_path) -> Path:
    """A directory that exists only if hostile content got to run code."""
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a hostile file ran code"


# YAML: object-building tags are refused wherever dlrun reads YAML.


def tag(sentinel: Path) -> str:
    return f"!!python/object/apply:os.mkdir [{json.dumps(str(sentinel))}]"


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    return session.run(config.validate(SMALL, "test"), tmp_path_factory.mktemp("finished"))[0]


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "copy" / run_dir.name))


@pytest.mark.parametrize("python_tag", ["!!python/object/apply:os.mkdir", "!!python/name:os.mkdir",
                                        "!!python/object/new:os.mkdir", "!!python/module:os"])
def test_a_config_with_a_python_tag_is_refused_unrun(tmp_path, sentinel, python_tag):
    path = tmp_path / "evil.yaml"
    path.write_text(f"name: evil\nseed: {python_tag} [{json.dumps(str(sentinel))}]\n")
    refused(invoke("train", path, "--runs-dir", tmp_path / "runs"), "evil.yaml:2: invalid YAML")
    refused(invoke("sweep", path, "--runs-dir", tmp_path / "runs"), "evil.yaml:2: invalid YAML")
    refused(invoke("gradcheck", path), "evil.yaml:2: invalid YAML")
    assert not (tmp_path / "runs").exists()


def test_an_override_with_a_python_tag_is_refused_unrun(finished, tmp_path, sentinel):
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    refused(invoke("train", path, "--runs-dir", tmp_path / "runs", f"seed={tag(sentinel)}"),
            "invalid YAML")
    refused(invoke("compare", finished, "--filter", f"seed={tag(sentinel)}"), "invalid YAML")


def test_a_run_directory_config_with_a_python_tag_is_never_run(finished, tmp_path, sentinel):
    run_dir = copy_of(finished, tmp_path)
    (run_dir / layout.CONFIG).write_text(f"name: {tag(sentinel)}\n")
    for command in (["diagnose", run_dir], ["predict", run_dir, tmp_path / "x.csv"],
                    ["plot", run_dir], ["train", "--resume", run_dir]):
        (tmp_path / "x.csv").write_text("x1,x2\n0,0\n")
        result = invoke(*command)
        if command[0] == "train":  # a completed run is refused before its config is read
            refused(result, "nothing to resume")
        else:
            refused(result, "config.yaml:1", "invalid YAML")
    shown = invoke("compare", run_dir, "--format", "json")
    assert shown.exit_code == 0
    assert "config.yaml:1: invalid YAML" in json.loads(shown.stdout)[0]["note"]


def test_yaml_aliases_cannot_recurse_or_multiply(tmp_path):
    (tmp_path / "loop.yaml").write_text("name: x\nmodel: {hidden_layers: &a [1, *a]}\n")
    refused(invoke("train", tmp_path / "loop.yaml"), "loop.yaml:2", "an alias that contains itself")
    layers = "\n".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]"
                       for i in range(1, 9))
    (tmp_path / "laughs.yaml").write_text(f"l0: &l0 [1, 2, 3, 4, 5, 6, 7, 8, 9]\n{layers}\n")
    refused(invoke("train", tmp_path / "laughs.yaml"), "laughs.yaml: more than 100000 values")


def attribute_calls(tree: ast.AST, module: str):
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == module:
            yield node


def test_no_module_names_an_unsafe_yaml_loader():
    """Static guard beside the behaviour tests: only safe loaders exist in the code."""
    unsafe = {"load_all", "unsafe_load", "unsafe_load_all", "full_load", "full_load_all",
              "Loader", "FullLoader", "UnsafeLoader", "CLoader", "CFullLoader", "CUnsafeLoader"}
    found = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in attribute_calls(tree, "yaml"):
            if node.attr in unsafe or (node.attr.endswith("Loader") and "Safe" not in node.attr):
                found.append(f"{path.name}:{node.lineno}: yaml.{node.attr}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "load" \
                    and getattr(node.func.value, "id", None) == "yaml":
                if not any(k.arg == "Loader" for k in node.keywords):
                    found.append(f"{path.name}:{node.lineno}: yaml.load without a Loader")
    assert found == []


# .npy/.npz: object arrays would be unpickled, and unpickling runs code. dlrun never does.


class RunsCode:
    """Unpickling this calls os.mkdir(path)."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


def pickling_npz(path: Path, sentinel: Path, **arrays) -> Path:
    evil = np.array([RunsCode(sentinel)], dtype=object)
    np.savez(path, **{name: evil for name in arrays.get("names", ["X"])},
             **{k: v for k, v in arrays.items() if k != "names"})
    return path


def test_np_load_is_always_called_with_allow_pickle_false():
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "load" \
                    and getattr(node.func.value, "id", None) in ("np", "numpy"):
                safe = [k for k in node.keywords if k.arg == "allow_pickle"
                        and isinstance(k.value, ast.Constant) and k.value.value is False]
                if not safe:
                    found.append(f"{path.name}:{node.lineno}")
    assert found == []


def test_a_pickling_params_file_is_refused_unloaded(finished, tmp_path, sentinel):
    run_dir = copy_of(finished, tmp_path)
    state, _ = layout.load_params(run_dir / layout.PARAMS)
    pickling_npz(run_dir / layout.PARAMS, sentinel, names=["W1"],
                 **{k: v for k, v in state.items() if k != "W1"})
    (tmp_path / "x.csv").write_text("x1,x2\n0,0\n")
    for command in (["predict", run_dir, tmp_path / "x.csv"], ["diagnose", run_dir],
                    ["plot", run_dir]):
        refused(invoke(*command), "params.npz", "dlrun never unpickles files")
    warm = tmp_path / "warm.yaml"
    warm.write_text(yaml.safe_dump({**SMALL, "model": {"hidden_layers": [3],
                                                       "init_from": str(run_dir / layout.PARAMS)}}))
    refused(invoke("train", warm, "--runs-dir", tmp_path / "runs"), "model.init_from",
            "dlrun never unpickles files")


def test_a_pickling_checkpoint_is_refused_unloaded(tmp_path, sentinel):
    class Interrupt(loop.Reporter):
        def epoch(self, row):
            raise KeyboardInterrupt

    run_dir, _ = session.run(config.validate(SMALL, "test"), tmp_path / "runs", Interrupt())
    pickling_npz(run_dir / checkpoint.CHECKPOINT, sentinel, names=["net.W1"],
                 meta=np.array(json.dumps({"format": 1})))
    refused(invoke("train", "--resume", run_dir), "checkpoint.npz", "dlrun never unpickles files")


@pytest.mark.parametrize("suffix", [".npz", ".npy"])
def test_pickling_data_files_are_refused_unloaded(finished, tmp_path, sentinel, suffix):
    data = tmp_path / f"data{suffix}"
    if suffix == ".npz":
        pickling_npz(data, sentinel, names=["X", "y"])
    else:
        np.save(data, np.array([RunsCode(sentinel)], dtype=object))
    spec = {**SMALL, "data": {"path": str(data), **({"target": str(data)} if suffix == ".npy"
                                                    else {})}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(spec))
    refused(invoke("train", tmp_path / "c.yaml", "--runs-dir", tmp_path / "runs"),
            str(data), "dlrun never unpickles files")
    refused(invoke("predict", finished, data), str(data), "dlrun never unpickles files")


# Names: one path component, so a run stays inside the runs directory.

ESCAPES = ["../escape", "../../etc/x", "/tmp/absolute", "a/b", "..", ".", ".hidden", "a\\b",
           "", "x" * 65, "ünïcode", "name with space", "-dash"]


def nothing_outside(tmp_path: Path, runs_dir: Path, before: set) -> None:
    after = {p for p in tmp_path.rglob("*")}
    assert {p for p in after - before if runs_dir not in p.parents and p != runs_dir} == set()
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


@pytest.mark.parametrize("name", ESCAPES)
def test_a_run_name_cannot_leave_the_runs_directory(tmp_path, name):
    runs_dir = tmp_path / "deep" / "runs"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    before = set(tmp_path.rglob("*"))
    refused(invoke("train", path, "--runs-dir", runs_dir, "--name", name), "name")
    refused(invoke("train", path, "--runs-dir", runs_dir, f"name={name}"), "name")
    (tmp_path / "named.yaml").write_text(yaml.safe_dump({**SMALL, "name": name}))
    before.add(tmp_path / "named.yaml")
    refused(invoke("train", tmp_path / "named.yaml", "--runs-dir", runs_dir), "name")
    refused(invoke("sweep", path, "--runs-dir", runs_dir, "--name", name, "--trials", "1"),
            "name")
    refused(invoke("sweep", tmp_path / "named.yaml", "--runs-dir", runs_dir, "--trials", "1"),
            "name")
    nothing_outside(tmp_path, runs_dir, before)


def test_refining_a_sweep_under_an_escaping_name_is_refused(tmp_path):
    """A sweep directory as `dlrun sweep` leaves it, written by hand: refining reads only these."""
    sweep_dir = tmp_path / "runs" / "s-1"
    sweep_dir.mkdir(parents=True)
    space = {**SMALL, "train": {**SMALL["train"], "learning_rate": {"loguniform": [1e-3, 1e-1]}}}
    (sweep_dir / "sweep.yaml").write_text(yaml.safe_dump(space))
    (sweep_dir / "sweep.json").write_text(json.dumps({"seed": 0}))
    (sweep_dir / "sweep.csv").write_text(
        "trial,status,dev_error,dev_loss,train.learning_rate\n0,completed,0.1,0.3,0.01\n"
        "1,completed,0.2,0.4,0.02\n")
    before = set(tmp_path.rglob("*"))
    refused(invoke("sweep", "--refine", sweep_dir, "--top", "2", "--name", "../out",
                   "--runs-dir", tmp_path / "runs"), "name")
    assert set(tmp_path.rglob("*")) == before


def test_making_a_run_directory_refuses_any_name_that_is_not_one_component(tmp_path):
    for name in ["../x", "a/b", "..", ".x", "", "a\x00b"]:
        with pytest.raises(ConfigError, match="must be one path component"):
            layout.create(tmp_path / "runs", name)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
