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
        console.print(str(run_dir))
    if summary["status"] == "diverged":
        raise typer.Exit(1)


@app.command()
@user_errors
def predict(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by dlrun train.")],
    data: Annotated[Path, typer.Argument(help="Rows to predict on: .csv (the training feature "
                                              "columns), .npy or .npz (array X).")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help=(
        "Write the predictions to this CSV file instead of standard output."))] = None,
):
    """Predict with a trained run: class labels and probabilities, or values, one row per example.

    The saved normalization is applied first. When the file also holds the targets (the
    training target column, or y in a .npz), their metrics are reported on standard error."""
    import sys

    from . import predict as predict_module
    from .console import console, err_console
    from .runs import write_atomic

    result = predict_module.predict(run_dir, data)
    text = predict_module.to_csv(result.frame)
    if output is None:
        sys.stdout.write(text)
    else:
        write_atomic(output, text.encode())
        console.print(f"wrote {len(result.frame)} predictions to {output}")
    if result.scores:
        shown = ", ".join(f"{name} {value:.4g}" for name, value in result.scores.items())
        (err_console if output is None else console).print(f"against the file's targets: {shown}",
                                                           highlight=False)


@app.command()
@user_errors
def plot(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by dlrun train.")],
):
    """Re-draw a run's figures: curves.png, and boundary.png for 2-D inputs."""
    from . import plots
    from .console import console, err_console

    written, notes = plots.redraw(run_dir)
    for note in notes:
        err_console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    for path in written:
        console.print(str(path), highlight=False)


if __name__ == "__main__":
    app()
