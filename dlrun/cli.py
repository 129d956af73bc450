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
def diagnose(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by dlrun train.")],
    settings: Annotated[Optional[list[str]], typer.Argument(
        help="Thresholds of the diagnose section, e.g. min_gap=0.02 min_share=0.5")] = None,
    human_error: Annotated[Optional[float], typer.Option(
        help="Human-level error, the proxy for Bayes error (0.02 for 2%); "
             "default: the run's diagnose.human_error.")] = None,
    output_format: Annotated[str, typer.Option(
        "--format", help="text (tables) or json (for scripts).")] = "text",
):
    """Say what is wrong with a run and what to try next; writes diagnosis.json and diagnosis.md."""
    from . import diagnose as diagnose_module
    from .console import console, err_console
    from .errors import ConfigError

    if output_format not in ("text", "json"):
        raise ConfigError(f"--format: expected text or json, got {output_format!r}")
    settings = list(settings or [])
    if human_error is not None:
        settings.append(f"human_error={human_error!r}")
    diagnosis = diagnose_module.diagnose_run_dir(run_dir, settings)
    try:
        diagnose_module.save(run_dir, diagnosis)
    except OSError as error:
        err_console.print(f"[yellow]warning:[/yellow] could not write the diagnosis into "
                          f"{run_dir}: {error}", highlight=False)
    if output_format == "json":
        import json
        typer.echo(json.dumps(diagnosis, indent=2, sort_keys=True))
    else:
        from .diagnosis_report import render
        render(diagnosis, console)


if __name__ == "__main__":
    app()
