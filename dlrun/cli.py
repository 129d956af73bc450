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
def gradcheck(
    config: Annotated[Optional[Path], typer.Argument(
        help="Experiment spec (YAML) whose network to check; leave out to check the engine "
             "itself on every combination of its pieces.")] = None,
    overrides: Annotated[Optional[list[str]], typer.Argument(
        help="Dotted overrides, e.g. model.batch_norm=true regularization.l2=0.5")] = None,
    epsilon: Annotated[float, typer.Option(help="Step ε of the two-sided differences.")] = 1e-7,
    batch: Annotated[int, typer.Option(help="Examples J is evaluated on.")] = 32,
    samples: Annotated[Optional[int], typer.Option(
        help="Check this many random entries of each parameter array (default: every entry).")] = None,
    after_steps: Annotated[int, typer.Option(
        help="Check again after this many training steps (0: at initialization only).")] = 5,
    seed: Annotated[int, typer.Option(
        help="Seed of the engine check's random networks (a config uses its own seed).")] = 0,
    output_format: Annotated[str, typer.Option(
        "--format", help="table (for people) or json (for scripts).")] = "table",
):
    """Prove backpropagation right: compare every gradient with two-sided differences of the
    cost, in float64. Exit status 0 when nothing fails, 1 when a gradient is wrong."""
    from . import config as config_module
    from . import gradcheck as gradcheck_module
    from .console import console, err_console
    from .gradcheck_report import progress_bar, show, to_json

    gradcheck_module.validate(epsilon, batch, samples, after_steps, output_format)
    experiment = config_module.load(config, list(overrides or [])) if config is not None else None
    with progress_bar(err_console) as advance:
        if experiment is None:
            report = gradcheck_module.check_engine(epsilon, batch, samples, after_steps, seed,
                                                   progress=advance)
        else:
            report = gradcheck_module.check_config(experiment, epsilon, batch, samples,
                                                   after_steps, progress=advance)
    if output_format == "json":
        typer.echo(to_json(report))
    else:
        show(report, console)
    if report.verdict == "fail":
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
