"""What `dlrun sweep` does with its arguments: the search space (CONFIG's with dotted overrides,
or a finished sweep's narrowed by --refine), where the trials run, and the sweep itself."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from .. import naming
from ..errors import ConfigError
from ..training.signals import sigterm_as_interrupt
from . import resume as sweep_resume
from . import run as sweep_run
from .space import SearchSpace
from .workers import open_backend


def search_space(config: Path | None, overrides: list[str], name: str | None = None,
                 refine: Path | None = None, top: int = 5) -> tuple[SearchSpace, dict | None]:
    """(the space to sweep, what it was refined from or None). With --refine the first override
    lands in CONFIG's place on the command line: `--refine DIR train.epochs=100`."""
    overrides = list(overrides)
    if name is not None:
        overrides.append(f"name={naming.check(name)}")
    if refine is not None:
        if config is not None and "=" in config.name and not config.exists():
            overrides.insert(0, str(config))
        elif config is not None:
            raise ConfigError("give CONFIG or --refine SWEEP_DIR, not both (the sweep directory "
                              "holds its space in sweep.yaml; overrides such as train.epochs=100 "
                              "apply to it)")
        return sweep_run.refine(refine, top, overrides)
    if config is None:
        raise ConfigError("give a CONFIG to sweep, or --refine SWEEP_DIR")
    return sweep_run.load_space(config, overrides), None


def sweep(space: SearchSpace, options: sweep_run.Options, runs_dir: str | Path = "runs",
          workers: int | None = None, cluster: str | None = None,
          refined_from: dict | None = None,
          reporter_for: Callable[[str], sweep_run.SweepReporter] | None = None,
          on_note: Callable[[str], None] | None = None) -> sweep_run.Sweep:
    """Run the sweep on local workers or a Dask cluster; a seed of None is the space's default.
    reporter_for(title) makes the live display once the sweep directory is named; on_note(text)
    hears why a grid uses fewer trials than allowed. Ctrl-C or SIGTERM stop the trials and
    raise KeyboardInterrupt, the finished trials kept."""
    if options.seed is None:
        options = dataclasses.replace(options, seed=sweep_run.default_seed(space, refined_from))
    backend = open_backend(workers, cluster, options.trials * options.seeds)

    def opened():
        swept = sweep_run.create(space, runs_dir, options, backend.description, refined_from)
        note = space.grid_note(options.trials) if options.sampler == "grid" else None
        if note and on_note:  # once the space is known to be valid: a refusal stays one line
            on_note(note)
        return swept

    return _drive(backend, opened, reporter_for)


def resume(sweep_dir: Path, given: dict, workers: int | None = None, cluster: str | None = None,
           reporter_for: Callable[[str], sweep_run.SweepReporter] | None = None,
           stack: bool | None = None,
           on_note: Callable[[str], None] | None = None) -> sweep_run.Sweep:
    """Finish the sweep in sweep_dir with its own options (`given`: the options named on the
    command line, each refused unless it is the sweep's own; `stack`, if not None, in place of
    its own: stacking changes no number); on_note hears how many trials are kept; as `sweep`
    for the rest."""
    info = sweep_resume.read_info(Path(sweep_dir))
    backend = open_backend(workers, cluster, max(1, info.get("trials") or 1))

    def opened():
        swept = sweep_resume.reopen(sweep_dir, given, backend.description, stack)
        if on_note:
            kept, total = len(swept.finished), swept.info["trials"]
            on_note(f"resuming {swept.directory}: {kept} of {total} trials stored and "
                    f"kept, {total - kept} to run")
        return swept

    return _drive(backend, opened, reporter_for)


def _drive(backend, opened: Callable[[], sweep_run.Sweep],
           reporter_for: Callable[[str], sweep_run.SweepReporter] | None) -> sweep_run.Sweep:
    """Open the sweep (opened()), run it on the backend, and close the backend: aborting the
    workers' trials unless the sweep ended by itself."""
    aborted = True
    try:
        with sigterm_as_interrupt():  # `kill` or a scheduler's time limit: as Ctrl-C
            swept = opened()
            sweep_run.run(swept, backend, reporter_for(swept.directory.name) if reporter_for
                          else None)
            aborted = False
    finally:
        backend.close(abort=aborted)
    return swept
