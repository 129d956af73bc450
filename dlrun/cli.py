"""The `dlrun` command line. Thin: parse, call one domain function, render with rich."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import DlrunError

app = typer.Typer(rich_markup_mode="rich", no_args_is_help=True, add_completion=False,
                  help="Run, understand and compare fully-connected neural-network experiments.")


def user_errors(command):
    """Turn a DlrunError into one red line on stderr and exit status 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except DlrunError as error:
            from .console import err_console
            err_console.print(f"[red]error:[/red] {error}", markup=True, highlight=False,
                              soft_wrap=True)
            raise typer.Exit(error.exit_code) from None

    return wrapper


def _show_version(value: bool):
    if value:
        from . import __version__
        typer.echo(f"dlrun {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
):
    """Run, understand and compare fully-connected neural-network experiments."""


@app.command()
@user_errors
def train(
    config: Annotated[Path, typer.Argument(help="Experiment spec (YAML).")],
    overrides: Annotated[Optional[list[str]], typer.Argument(
        help="Dotted overrides, e.g. train.learning_rate=0.01 model.keep_prob=0.8")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where run directories are created.")] = Path("runs"),
    name: Annotated[Optional[str], typer.Option(help="Run name (overrides the config's name).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or table.")] = False,
):
    """Train the network a YAML experiment describes and write a run directory."""
    from . import config as config_module
    from . import train as train_module
    from .console import ProgressReporter, console, summary_table

    overrides = list(overrides or [])
    if name is not None:
        overrides.append(f"name={name}")
    experiment = config_module.load(config, overrides)
    reporter = None if quiet else ProgressReporter(experiment.name)
    run_dir, summary = train_module.run(experiment, runs_dir, reporter)
    if not quiet:
        console.print(summary_table(run_dir, summary))
        if "bias_variance" in summary:
            bv = summary["bias_variance"]
            console.print(f"bias/variance: [bold]{bv['verdict']}[/bold] (avoidable bias "
                          f"{bv['avoidable_bias']:.1%}, variance {bv['variance']:.1%})")
        if summary["status"] != "completed":
            console.print(f"[yellow]{summary['status']}[/yellow]: {summary['stop_reason']}")
    else:
        typer.echo(str(run_dir))
    if summary["status"] == "diverged":
        raise typer.Exit(1)


@app.command()
@user_errors
def sweep(
    config: Annotated[Optional[Path], typer.Argument(
        help="Experiment spec whose values may be distributions, e.g. "
             "learning_rate: {loguniform: [1e-4, 1]}.")] = None,
    overrides: Annotated[Optional[list[str]], typer.Argument(
        help="Dotted overrides, e.g. 'train.learning_rate={loguniform: [1e-4, 1e-1]}'")] = None,
    trials: Annotated[int, typer.Option(min=1, help="Trials to run (with --grid: at most).")] = 20,
    workers: Annotated[Optional[int], typer.Option(
        min=1, help="Local worker processes, each on one BLAS thread \\[default: one per core].")] = None,
    grid: Annotated[bool, typer.Option("--grid", help="A grid instead of random draws.")] = False,
    seed: Annotated[Optional[int], typer.Option(
        min=0, help="Sweep seed; every trial's values and seed derive from it and its number "
                    "\\[default: the config's seed; after --refine, the refined sweep's seed + 1].")] = None,
    refine: Annotated[Optional[Path], typer.Option(
        help="A sweep directory: sweep again, each range narrowed to its --top best trials.")] = None,
    top: Annotated[int, typer.Option(min=1, help="Best trials --refine narrows around.")] = 5,
    prune: Annotated[bool, typer.Option(
        "--prune", help="Successive halving: stop trials whose dev loss trails at each rung.")] = False,
    prune_factor: Annotated[int, typer.Option(
        min=2, help="Each rung keeps the best 1/FACTOR and multiplies the epochs by FACTOR.")] = 3,
    prune_min_epochs: Annotated[Optional[int], typer.Option(
        min=1, help="Epochs of the first rung \\[default: the epochs / FACTOR²].")] = None,
    cluster: Annotated[Optional[str], typer.Option(
        help="Run trials on a Dask scheduler, e.g. tcp://HOST:8786 (pip install \"dlrun\\[cluster]\").")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where the sweep directory is created.")] = Path("runs"),
    name: Annotated[Optional[str], typer.Option(help="Sweep name (overrides the config's name).")] = None,
    show: Annotated[int, typer.Option(min=1, help="Best trials listed at the end.")] = 5,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live display or table.")] = False,
):
    """Train many trials drawn from a search space, in parallel, and rank them by dev error."""
    from . import sweep as sweep_module
    from .console import console
    from .errors import ConfigError
    from .workers import open_backend

    overrides = list(overrides or [])
    if name is not None:
        overrides.append(f"name={name}")
    refined_from = None
    if refine is not None:
        if config is not None:
            raise ConfigError("give CONFIG or --refine SWEEP_DIR, not both (the sweep directory "
                              "holds its space in sweep.yaml)")
        space, refined_from = sweep_module.refine(refine, top)
        if name is not None:
            space.template["name"] = name
    elif config is None:
        raise ConfigError("give a CONFIG to sweep, or --refine SWEEP_DIR")
    else:
        space = sweep_module.load_space(config, overrides)
    if seed is None:
        seed = sweep_module.default_seed(space, refined_from)
    options = sweep_module.Options(trials=trials, grid=grid, seed=seed, prune=prune,
                                   prune_factor=prune_factor, prune_min_epochs=prune_min_epochs)
    backend = open_backend(workers, cluster, trials)
    aborted = True
    try:
        swept = sweep_module.create(space, runs_dir, options, backend.description, refined_from)
        reporter = None
        if not quiet:
            from .sweep_view import LiveSweep
            reporter = LiveSweep(swept.directory.name)
        sweep_module.run(swept, backend, reporter)
        aborted = False
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: finished trials are kept")
        raise typer.Exit(130)
    finally:
        backend.close(abort=aborted)
    frame = sweep_module.results_frame(space, list(swept.finished.values()))
    if quiet:
        typer.echo(str(swept.directory))
    else:
        from .sweep_view import best_table, counts
        best = sweep_module.best_trials(frame, show)
        console.print(best_table(best, [p.key for p in space.parameters],
                                 f"{swept.directory}  best {len(best)} by dev error"))
        console.print(f"{counts(frame)}; every trial in {swept.directory / sweep_module.TABLE}")
    if not (frame["status"] == "completed").any():
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
