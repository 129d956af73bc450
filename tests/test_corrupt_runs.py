"""Damaged run directories: every file a command reads, missing, empty, cut in half or garbage,
never crashes diagnose, compare, plot, predict or --resume; each names the file it could not use."""

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from dlrun import config
from dlrun.cli import app
from dlrun.rundir import checkpoint, layout, reader, runlock
from dlrun.training import loop, session

runner = CliRunner()
DAMAGES = ("missing", "empty", "truncated", "garbage")
GARBAGE = bytes(range(256)) * 2 + b"\n\xff\xfe{[\"epoch\n"
# The files each command reads; damaging any other cannot change what it does.
READS = {
    "diagnose": (layout.SUMMARY, layout.CONFIG, layout.METRICS, layout.PARAMS, layout.DIAGNOSIS,
                 runlock.LOCK),
    "compare": (layout.SUMMARY, layout.CONFIG, layout.METRICS, layout.DIAGNOSIS, runlock.LOCK),
    "plot": (layout.SUMMARY, layout.CONFIG, layout.METRICS, layout.PARAMS, layout.STEPS),
    "predict": (layout.CONFIG, layout.PARAMS),
    "resume": (layout.SUMMARY, layout.CONFIG, layout.METRICS, layout.STEPS, checkpoint.CHECKPOINT,
               runlock.LOCK),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """An interrupted run holding every file a run can have (three features: one figure)."""
    spec = {"name": "c", "data": {"generator": {"name": "blobs", "n_samples": 90,
                                                "features": 3}},
            "model": {"hidden_layers": [4]},
            "train": {"epochs": 6, "batch_size": 32, "record_steps": True,
                      "checkpoint_every": 2}}

    class InterruptAt5(loop.Reporter):
        def epoch(self, row):
            if row["epoch"] == 5:
                raise KeyboardInterrupt

    run_dir, _ = session.run(config.validate(spec, "test"), tmp_path_factory.mktemp("pristine"),
                           InterruptAt5())
    (run_dir / runlock.LOCK).write_text('{"pid": 1, "host": "elsewhere"}\n')
    assert {layout.STEPS, checkpoint.CHECKPOINT, layout.DIAGNOSIS} <= {p.name for p in run_dir.iterdir()}
    return run_dir


def damaged_copy(pristine: Path, target: Path, name: str, damage) -> Path:
    run_dir = target / pristine.name
    shutil.copytree(pristine, run_dir)
    if damage == "missing":
        (run_dir / name).unlink()
    else:
        raw = (run_dir / name).read_bytes()
        content = {"empty": b"", "truncated": raw[:len(raw) // 2], "garbage": GARBAGE}.get(
            damage, damage)
        (run_dir / name).write_bytes(content)
    return run_dir


def command_line(command: str, run_dir: Path, tmp_path: Path) -> list[str]:
    if command == "predict":
        rows = tmp_path / "rows.csv"
        rows.write_text("x1,x2,x3\n0.5,-1,2\n")
        return ["predict", str(run_dir), str(rows)]
    if command == "resume":
        return ["train", "--resume", str(run_dir), "-q"]
    if command == "compare":
        return ["compare", str(run_dir), "--format", "json"]
    return [command, str(run_dir)]


def check_outcome(command: str, name: str, run_dir: Path, tmp_path: Path) -> object:
    """Run the command; it either works or says in one line what is wrong with which file."""
    result = runner.invoke(app, command_line(command, run_dir, tmp_path))
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"{command} crashed on a damaged {name}: {result.exception!r}"
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.output
        assert name in lines[0] or (name == layout.SUMMARY and "not a run directory" in lines[0])
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".")]  # no half-written file
    return result


CASES = [(command, name, damage) for command, names in READS.items() for name in names
         for damage in DAMAGES]


@pytest.mark.parametrize("command, name, damage", CASES)
def test_a_damaged_file_is_named_never_a_crash(pristine, tmp_path, monkeypatch, command, name,
                                               damage):
    if command == "resume":  # a resume that succeeds draws figures nobody looks at here
        from dlrun import plots
        monkeypatch.setattr(plots, "draw", lambda *args, **kwargs: [])
    run_dir = damaged_copy(pristine, tmp_path, name, damage)
    result = check_outcome(command, name, run_dir, tmp_path)
    if command == "compare":
        assert result.exit_code == 0  # compare shows every run it can read at all
        (row,) = json.loads(result.stdout)
        if name in (layout.SUMMARY, layout.CONFIG, layout.METRICS) and damage != "truncated":
            assert name in row["note"]  # a cut file may still parse: nothing to say then
    if command == "resume" and result.exit_code == 0:
        # Only damage resume does not need: a lock file it replaces, a summary it rewrites.
        assert name in (runlock.LOCK, layout.SUMMARY) or (name == checkpoint.CHECKPOINT
                                                        and damage == "missing")
        assert reader.read_summary(run_dir)["status"] == "completed"


@given(command=st.sampled_from(["diagnose", "compare", "predict", "resume"]),
       data=st.data(), content=st.one_of(
           st.binary(max_size=300),
           st.text(max_size=200).map(str.encode),
           st.lists(st.text(alphabet="0123456789.,-e\nnaif", max_size=30), max_size=8)
             .map(lambda lines: "\n".join(lines).encode())))
def test_random_bytes_in_any_file_are_named_never_a_crash(pristine, tmp_path, monkeypatch,
                                                         command, data, content):
    from dlrun import plots
    monkeypatch.setattr(plots, "draw", lambda *args, **kwargs: [])
    name = data.draw(st.sampled_from(READS[command]))
    target = tmp_path / f"case-{len(list(tmp_path.iterdir()))}"
    check_outcome(command, name, damaged_copy(pristine, target, name, content), tmp_path)
