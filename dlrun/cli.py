"""The `dlrun` command line. Thin: parse, call one domain function, render with rich."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from typer.core import TyperArgument, TyperOption

from . import __version__
from .errors import ConfigError, DlrunError

try:  # recent typer raises the exceptions of its own copy of click
    from typer._click import exceptions as click
except ImportError:
    from click import exceptions as click


class OneLineUsageErrors(typer.core.TyperGroup):
    """A mistyped option or a missing argument is reported like any other bad input: one line
    naming the option and what is allowed, exit status 2 (not click's framed usage box)."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except click.NoArgsIsHelpError as error:
            error.show()  # `dlrun` or `dlrun train` alone: the help text
            sys.exit(error.exit_code)
        except click.UsageError as error:
            # lazy: as in every command, each loads only its own modules (numpy, pydantic,
            # matplotlib, pandas...; rich's progress and tables here), so that --help, --version
            # and a mistyped option answer at once
            from .console import err_console
            where = error.ctx.command_path if error.ctx else "dlrun"
            err_console.print(f"[red]error:[/red] {escape(one_line(error.format_message()))} "
                              f"(see {escape(where)} --help)", highlight=False, soft_wrap=True)
            sys.exit(error.exit_code)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


def _help_without_type_tags() -> None:
    """Typer prints a type tag (<str>, <bool>, <list[Path]>) beside every parameter in --help.
    Show what click always showed instead: nothing for a flag or an argument (its name says it),
    the metavar where one is given (choices such as [table|csv|json]), else the kind of value."""
    original = TyperOption.display_type

    def option_type(self, ctx):
        if self.metavar is not None:
            return self.metavar
        if self.is_flag or self.count:
            return None
        label = original(self, ctx).strip("<>.")  # <str>, <int range>, <list[str]>, <a|b>
        label = label.removeprefix("list[").removesuffix("]").removesuffix(" range")
        if "|" in label:
            return f"[{label}]"
        return {"str": "TEXT", "int": "INTEGER", "float": "NUMBER"}.get(label, label.upper())

    TyperOption.display_type_rich = option_type
    TyperArgument.display_type_rich = lambda self, ctx: None


_help_without_type_tags()
app = typer.Typer(cls=OneLineUsageErrors, rich_markup_mode="rich", no_args_is_help=True,
                  add_completion=True,
                  help="Run, understand and compare fully-connected neural-network experiments.")


def user_errors(command):
    """Turn a DlrunError into one red line on stderr and exit status 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except DlrunError as error:
            from .console import err_console  # lazy: see OneLineUsageErrors
            err_console.print(f"[red]error:[/red] {escape(one_line(str(error)))}", markup=True,
                              highlight=False, soft_wrap=True)
            raise typer.Exit(error.exit_code) from None

    return wrapper


LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines splits at


def one_line(message: str) -> str:
    """The message with any line break inside it (a column named "a\\nb") written as an escape."""
    return "".join(repr(char)[1:-1] if char in LINE_BREAKS else char for char in message.strip())


def _show_version(value: bool):
    if value:
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
    config: Annotated[Optional[Path], typer.Argument(
        help="Experiment spec (YAML); left out with --resume.", show_default=False)] = None,
    overrides: Annotated[Optional[list[str]], typer.Argument(
        help="Dotted overrides, e.g. train.learning_rate=0.01 model.keep_prob=0.8")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where run directories are created.")] = Path("runs"),
    name: Annotated[Optional[str], typer.Option(
        metavar="TEMPLATE",
        help="Run name, or a template of config keys: \"lr{train.learning_rate}-{keep_prob}\" "
             "\\[default: the config's name and the overrides, e.g. quickstart-lr0.003-kp0.8].")
    ] = None,
    tag: Annotated[Optional[list[str]], typer.Option(
        metavar="TAG", help="Tag the run (repeat for several); dlrun ls and compare --tag find it.")
    ] = None,
    note: Annotated[Optional[str], typer.Option(metavar="TEXT", help="A note on the run.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or table.")] = False,
    resume: Annotated[Optional[Path], typer.Option(
        metavar="RUN_DIR", help="Continue an interrupted, killed or diverged run from its last "
                                "checkpoint (overrides: train.learning_rate, train.epochs, "
                                "train.decay, diagnose only).")] = None,
    data_changed: Annotated[bool, typer.Option(
        "--data-changed", help="With --resume: train on, although the data differs from what "
                               "the run started with (recorded in summary.json).")] = False,
):
    """Train the network a YAML experiment describes and write a run directory.
    SIGTERM stops a run as Ctrl-C does; --resume goes on with it."""
    # lazy: see OneLineUsageErrors
    from .console import ProgressReporter, show_run, warn_unwritten
    from .strategy import folds
    from .training import start
    from .training.signals import sigterm_as_interrupt

    with sigterm_as_interrupt():
        trained = start.train(config, overrides or [], runs_dir, name, resume,
                              None if quiet else ProgressReporter, tag or [], note, data_changed,
                              figures="later")  # drawn by a detached child while this prints
    if isinstance(trained, folds.CrossValidation):
        return _show_folds(trained, quiet)
    run_dir, summary = trained
    warn_unwritten(run_dir, summary)
    if quiet:
        typer.echo(str(run_dir))
    else:
        show_run(run_dir, summary, start.next_step(run_dir, summary))
    if summary["status"] == "diverged":
        raise typer.Exit(1)
    if summary["status"] == "interrupted":  # as a shell reports a command stopped by Ctrl-C
        raise typer.Exit(130)


def _show_folds(result, quiet: bool) -> None:
    """The end of `dlrun train` with data.folds: the K runs, then the final model with refit."""
    from .console import console  # lazy: see OneLineUsageErrors
    from .strategy import folds
    from .strategy.view import final_line, folds_table

    if quiet:
        typer.echo(str(result.directory))
        return
    console.print(folds_table(result))
    if result.final:
        console.print(final_line(result), highlight=False, soft_wrap=True)
    console.print(f"runs and {folds.SUMMARY} in {result.directory}", highlight=False,
                  soft_wrap=True)


@app.command()
@user_errors
def diagnose(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by dlrun train.")],
    settings: Annotated[Optional[list[str]], typer.Argument(
        help="Thresholds of the diagnose section, e.g. min_gap=0.02 min_share=0.5")] = None,
    human_error: Annotated[Optional[str], typer.Option(
        help="Human-level error, the proxy for Bayes error (0.02 for 2%), or auto: the Bayes "
             "error computed from the data's generator, or bounded by the training data's "
             "nearest neighbours; default: the run's diagnose.human_error.")] = None,
    output_format: Annotated[str, typer.Option(
        "--format", metavar="[text|json]", help="text (tables) or json (for scripts).")
    ] = "text",
    save: Annotated[bool, typer.Option(
        "--save", help="Keep the diagnosis made with these thresholds: they go into the run's "
                       "config.yaml, the verdict into summary.json, the report into "
                       "diagnosis.json and .md.")] = False,
):
    """Say what is wrong with a run and what to try next. With the run's own thresholds it
    (re)writes diagnosis.json and diagnosis.md; with others it only prints, unless --save."""
    from .console import console, err_console  # lazy: see OneLineUsageErrors
    from .diagnosis import diagnose as diagnose_module
    from .diagnosis.report import render

    if output_format not in ("text", "json"):
        raise ConfigError(f"--format: expected text or json, got {output_format!r}")
    settings = list(settings or [])
    if human_error is not None:
        settings.append(f"human_error={human_error}")
    diagnosis = diagnose_module.diagnose_run_dir(run_dir, settings)
    try:
        if save or not settings:  # the run's own thresholds: what training wrote, up to date
            diagnose_module.adopt(run_dir, diagnosis, settings)
    except OSError as error:
        err_console.print(f"[yellow]warning:[/yellow] could not write the diagnosis into "
                          f"{run_dir}: {error}", highlight=False)
    if settings and not save:
        err_console.print("note: not saved (thresholds other than the run's); add --save to "
                          "make them the run's own", highlight=False)
    if output_format == "json":
        typer.echo(json.dumps(diagnosis, indent=2, sort_keys=True))
    else:
        render(diagnosis, console)


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
    from . import predict as predict_module  # lazy: see OneLineUsageErrors
    from .console import console, err_console

    target = predict_module.output_file(output) if output is not None else None  # before work
    result = predict_module.predict(run_dir, data)
    text = predict_module.to_csv(result.frame)
    if target is None:
        sys.stdout.write(text)
    else:
        predict_module.write_output(*target, text)
        console.print(f"wrote {len(result.frame)} predictions to {output}")
    if result.scores:
        from .rundir.result import kept_label  # lazy: see OneLineUsageErrors

        shown = ", ".join(f"{name} {value:.4g}" for name, value in result.scores.items())
        kept = kept_label(result.summary) if result.summary else "params.npz"
        (err_console if output is None else console).print(
            f"against the file's targets: {shown} (kept weights: {kept})", highlight=False)


@app.command()
@user_errors
def compare(
    paths: Annotated[Optional[list[Path]], typer.Argument(
        metavar="RUNS_OR_DIRS", show_default=False,
        help="Run directories, directories of runs, or the beginning of run names in --runs-dir "
             "(default: --runs-dir).")] = None,
    sort: Annotated[Optional[str], typer.Option(
        help="Order by this column (dev_error by default; -NAME for descending).")] = None,
    top: Annotated[Optional[int], typer.Option(min=1, help="Show the first N rows only.")] = None,
    filters: Annotated[Optional[list[str]], typer.Option(
        "--filter", help="KEY=VALUE (optimizer=adam) or a pandas query "
                         "('learning_rate < 0.01'); repeat to require several.")] = None,
    optimize: Annotated[Optional[str], typer.Option(
        help="The optimizing metric: pick the run lowest on it (-NAME: highest).")] = None,
    satisfy: Annotated[Optional[list[str]], typer.Option(
        help="A satisficing constraint such as 'duration<60', in --filter's syntax; repeatable.")
    ] = None,
    group_seeds: Annotated[bool, typer.Option(
        "--group-seeds", help="One row per config that differs only by seed: mean ± std.")
    ] = False,
    all_params: Annotated[bool, typer.Option(
        "--all-params", help="Show every config key, not only those that differ.")] = False,
    tag: Annotated[Optional[list[str]], typer.Option(
        metavar="TAG", help="Only runs with this tag (repeat: with every one).")] = None,
    output_format: Annotated[str, typer.Option(
        "--format", metavar="[table|csv|markdown|json]",
        help="table for people; csv, markdown or json for files and scripts.")
    ] = "table",
    columns: Annotated[Optional[str], typer.Option(
        help="The table's columns after the run's name, comma-separated: config keys (short or "
             "dotted) or results, e.g. dev_error,learning_rate,optimizer.")] = None,
    transpose: Annotated[bool, typer.Option(
        "--transpose", help="Runs as columns and keys as rows (for a handful of runs).")] = False,
    plot: Annotated[Optional[Path], typer.Option(
        help="Write the dev and train curves of the rows shown to this image (.png, .pdf, .svg).")
    ] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where run directories are looked for.")
                        ] = Path("runs"),
):
    """Compare runs side by side: how each run did, and the config keys that differ."""
    from .compare import collect as compare_module  # lazy: see OneLineUsageErrors
    from .compare import terminal, view
    from .compare.plot import check_plot_path, legend_path, plot_curves
    from .console import console, err_console

    view.check_format(output_format, view.FORMATS)
    if plot is not None:
        check_plot_path(plot)
    comparison = compare_module.compare(
        paths or [runs_dir], runs_dir, filters=filters or (), sort_by=sort, top=top,
        optimize=optimize, satisfy=satisfy or (), group=group_seeds, all_params=all_params,
        required_tags=tag or ())
    if output_format == "table":
        layout_notes = []
        names = [n.strip() for n in columns.split(",") if n.strip()] if columns else None
        if len(comparison.table):
            show = terminal.transposed if transpose else terminal.terminal_table
            table, layout_notes = show(comparison, console.width, names)
            console.print(table, no_wrap=True, overflow="crop")
        for line in terminal.footer(comparison, layout_notes):
            console.print(line, highlight=False)
    else:
        writer = {"csv": view.to_csv, "markdown": view.to_markdown,
                  "json": view.to_json}[output_format]
        typer.echo(writer(comparison), nl=False)
        warning = view.dev_set_warning(comparison)
        if warning:  # stdout stays the file's; people still see it
            err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if plot is not None:
        notes = plot_curves(comparison, plot)
        # Keep stdout clean for csv/json; people see the same lines either way.
        out = console if output_format == "table" else err_console
        for note in notes:
            out.print(f"[yellow]*[/yellow] {note}", highlight=False)
        out.print(f"curves written to {plot}, their labels in full to {legend_path(plot)}",
                  highlight=False)


@app.command()
@user_errors
def report(
    paths: Annotated[Optional[list[Path]], typer.Argument(
        metavar="RUNS_OR_SWEEPS", show_default=False,
        help="Run directories, sweep directories, directories of runs, or the beginning of run "
             "names in --runs-dir (default: --runs-dir).")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")
                      ] = Path("report.html"),
    runs_dir: Annotated[Path, typer.Option(help="Where run directories are looked for.")
                        ] = Path("runs"),
):
    """Write one self-contained HTML page of runs and sweeps: their table, interactive curves,
    diagnoses and figures, and for a sweep which hyperparameters matter. Opens from disk, no
    network (pip install "dlrun\\[report]" for plotly)."""
    from .console import console  # lazy: see OneLineUsageErrors
    from .report import page

    written, comparison = page.write(paths or [runs_dir], output, runs_dir)
    console.print(f"{len(comparison.table)} runs in {written} "
                  f"({written.stat().st_size / 1e6:.1f} MB)", highlight=False, soft_wrap=True)


@app.command()
@user_errors
def diff(
    run_a: Annotated[Path, typer.Argument(help="The run to compare from.")],
    run_b: Annotated[Path, typer.Argument(help="The run to compare to.")],
    output_format: Annotated[str, typer.Option(
        "--format", metavar="[table|json]", help="table for people, json for scripts.")
    ] = "table",
    runs_dir: Annotated[Path, typer.Option(help="Where run names are looked up.")] = Path("runs"),
):
    """Show which config keys changed between two runs (old → new) and how the results moved."""
    from .compare import view  # lazy: see OneLineUsageErrors
    from .compare.diff import diff as compare_runs
    from .compare.find import resolve_run
    from .console import console

    view.check_format(output_format, ("table", "json"))
    result = compare_runs(resolve_run(run_a, runs_dir), resolve_run(run_b, runs_dir))
    if output_format == "json":
        typer.echo(view.diff_json(result), nl=False)
        return
    for renderable in view.diff_tables(result):
        console.print(renderable, highlight=False)


@app.command("config")
@user_errors
def show_config(
    config: Annotated[Path, typer.Argument(help="Experiment spec (YAML).", show_default=False)],
    overrides: Annotated[Optional[list[str]], typer.Argument(
        help="Dotted overrides, e.g. train.learning_rate=0.01")] = None,
    origin: Annotated[bool, typer.Option(
        "--origin", help="Say where each value comes from: default, FILE:LINE or the override.")
    ] = False,
):
    """Print the resolved config (the files it extends merged, every default filled in), as
    dlrun train would save it, and check it against its data without training."""
    from .training.start import resolved_text  # lazy: see OneLineUsageErrors

    typer.echo(resolved_text(config, list(overrides or []), origin), nl=False)


RUNS_DIR_HELP = "The directory of runs."


@app.command("ls")
@user_errors
def list_runs(
    runs_dir: Annotated[Optional[Path], typer.Argument(
        help=RUNS_DIR_HELP + " [default: runs]", show_default=False)] = None,
    runs_dir_option: Annotated[Optional[Path], typer.Option(
        "--runs-dir", help="The same, as every other command names it.")] = None,
    status: Annotated[Optional[list[str]], typer.Option(
        metavar="STATUS", help="Only runs with this status (repeatable): completed, running, "
                               "stale, interrupted, diverged, failed, pruned, corrupt.")] = None,
    tag: Annotated[Optional[list[str]], typer.Option(
        metavar="TAG", help="Only runs with this tag (repeat: with every one).")] = None,
    since: Annotated[Optional[str], typer.Option(
        metavar="WHEN", help="Only runs started since: an age (12h, 7d) or a date "
                             "(2025-01-31, 2025-01-31T14:30).")] = None,
    trials: Annotated[bool, typer.Option("--trials", help="List each sweep's trials under it.")
                      ] = False,
    output_format: Annotated[str, typer.Option(
        "--format", metavar="[table|csv|json]", help="table for people; csv or json for scripts.")
    ] = "table",
):
    """List runs and sweeps, newest first: status, start, duration, dev error, verdict, tags."""
    from .console import console  # lazy: see OneLineUsageErrors
    from .rundir import catalog, listview

    if output_format not in listview.FORMATS:
        raise ConfigError(f"--format: expected {', '.join(listview.FORMATS)}, got "
                          f"{output_format!r}")
    if runs_dir is not None and runs_dir_option is not None and runs_dir != runs_dir_option:
        raise ConfigError(f"give the directory of runs once: {runs_dir} or --runs-dir "
                          f"{runs_dir_option}")
    runs_dir = runs_dir or runs_dir_option or Path("runs")
    found, total = catalog.listing(runs_dir, status or (), tag or (), since)
    if output_format != "table":
        writer = listview.to_json if output_format == "json" else listview.to_csv
        typer.echo(writer(found, trials), nl=False)
        return
    if found:
        text, notes = listview.table(found, console.width, trials)
        console.print(text, no_wrap=True, overflow="crop", end="")
        for note in notes:
            console.print(f"[dim]{note}[/dim]", highlight=False)
    console.print(listview.footer(found, total), highlight=False)


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


@app.command("rm")
@user_errors
def remove_runs(
    runs: Annotated[Optional[list[str]], typer.Argument(
        metavar="RUN", show_default=False,
        help="Runs or sweeps to remove: names, beginnings of names, or paths inside --runs-dir.")
    ] = None,
    status: Annotated[Optional[list[str]], typer.Option(
        metavar="STATUS", help="Only runs with this status, e.g. failed (repeatable).")] = None,
    older_than: Annotated[Optional[str], typer.Option(
        metavar="AGE", help="Only runs started longer ago than this: 30m, 12h, 7d, 2w.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Remove without asking.")] = False,
    runs_dir: Annotated[Path, typer.Option(help=RUNS_DIR_HELP)] = Path("runs"),
):
    """Remove run (and sweep) directories; asks first, and never touches a run still training."""
    from .console import console  # lazy: see OneLineUsageErrors
    from .rundir import catalog

    chosen = catalog.removal(runs_dir, runs or (), status or (), older_than)
    if not chosen:
        console.print("nothing to remove: no run matches", highlight=False)
        return
    if not yes:
        if not _stdin_is_terminal():
            raise ConfigError(f"rm: {len(chosen)} run(s) would be removed; standard input is not "
                              "a terminal to ask, so confirm with --yes")
        for entry in chosen:
            console.print(f"  {entry.path}  {entry.status}", highlight=False, markup=False)
        if not typer.confirm(f"Remove these {len(chosen)}?", default=False):
            console.print("nothing removed")
            raise typer.Exit(1)
    removed = catalog.remove(chosen)
    console.print(f"removed {len(removed)}: {', '.join(p.name for p in removed)}",
                  highlight=False, markup=False, soft_wrap=True)


@app.command(context_settings={"ignore_unknown_options": True})
@user_errors
def tag(
    run: Annotated[str, typer.Argument(metavar="RUN", help="A run or sweep: its name, the "
                                                            "beginning of it, or its path.")],
    changes: Annotated[Optional[list[str]], typer.Argument(
        metavar="+TAG|-TAG", help="+TAG adds a tag, -TAG removes one; none: show the tags.")
    ] = None,
    runs_dir: Annotated[Path, typer.Option(help=RUNS_DIR_HELP)] = Path("runs"),
):
    """Add or remove tags of a run (kept in its meta.json, apart from its config)."""
    from .rundir import catalog  # lazy: see OneLineUsageErrors
    from .rundir import tags as tags_module

    added, removed = tags_module.parse_changes(list(changes or []))
    directory = catalog.find(runs_dir, run)
    meta = (tags_module.retag(directory, added, removed) if added or removed
            else tags_module.read(directory))
    typer.echo(f"{directory.name}: {', '.join(meta['tags']) or '(no tags)'}")


@app.command()
@user_errors
def note(
    run: Annotated[str, typer.Argument(metavar="RUN", help="A run or sweep: its name, the "
                                                            "beginning of it, or its path.")],
    text: Annotated[Optional[str], typer.Argument(
        metavar="NOTE", help="The note (replaces the one there; \"\" clears it); none: show it.")
    ] = None,
    runs_dir: Annotated[Path, typer.Option(help=RUNS_DIR_HELP)] = Path("runs"),
):
    """Write (or show) the note of a run, kept in its meta.json."""
    from .rundir import catalog  # lazy: see OneLineUsageErrors
    from .rundir import tags as tags_module

    directory = catalog.find(runs_dir, run)
    meta = tags_module.annotate(directory, text) if text is not None else \
        tags_module.read(directory)
    typer.echo(meta["note"] or f"{directory.name}: (no note)")


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
        "--format", metavar="[table|json]", help="table (for people) or json (for scripts).")
    ] = "table",
):
    """Prove backpropagation right: compare every gradient with two-sided differences of the
    cost, in float64. Exit status 0 when nothing fails, 1 when a gradient is wrong."""
    from . import config as config_module  # lazy: see OneLineUsageErrors
    from .console import console, err_console
    from .gradcheck import check as gradcheck_module
    from .gradcheck.engine_sweep import check_engine
    from .gradcheck.report import progress_bar, show, to_json

    gradcheck_module.validate(epsilon, batch, samples, after_steps, output_format)
    experiment = config_module.load(config, list(overrides or [])) if config is not None else None
    with progress_bar(err_console) as advance:
        if experiment is None:
            report = check_engine(epsilon, batch, samples, after_steps, seed, progress=advance)
        else:
            report = gradcheck_module.check_config(experiment, epsilon, batch, samples,
                                                   after_steps, progress=advance)
    if output_format == "json":
        typer.echo(to_json(report))
    else:
        show(report, console)
    if report.verdict == "fail":
        raise typer.Exit(1)


@app.command()
@user_errors
def sweep(
    ctx: typer.Context,
    config: Annotated[Optional[Path], typer.Argument(
        help="Experiment spec whose values may be distributions, e.g. "
             "learning_rate: {loguniform: [1e-4, 1]}.")] = None,
    overrides: Annotated[Optional[list[str]], typer.Argument(
        help="Dotted overrides, e.g. 'train.learning_rate={loguniform: [1e-4, 1e-1]}'")] = None,
    trials: Annotated[int, typer.Option(min=1, help="Trials to run (with --grid: at most).")] = 20,
    workers: Annotated[Optional[int], typer.Option(
        min=1, help="Local worker processes, each on one BLAS thread \\[default: one per core].")] = None,
    sampler: Annotated[str, typer.Option(
        help="random (independent draws), grid, or tpe (learns from the trials so far; "
             "pip install \"dlrun\\[search]\").")] = "random",
    grid: Annotated[bool, typer.Option("--grid", help="The same as --sampler grid.")] = False,
    optimize: Annotated[str, typer.Option(
        help="The metric that ranks trials and that pruning and tpe watch, as in compare "
             "(-NAME: highest first).")] = "dev_error",
    satisfy: Annotated[Optional[list[str]], typer.Option(
        "--satisfy", help="A constraint the chosen trial must meet, as in compare, e.g. "
                          "'duration<2'; repeatable.")] = None,
    seed: Annotated[Optional[int], typer.Option(
        min=0, help="Sweep seed; every trial's values and seed derive from it and its number "
                    "\\[default: the config's seed; after --refine, the refined sweep's seed + 1].")] = None,
    refine: Annotated[Optional[Path], typer.Option(
        help="A sweep directory: sweep again, each range narrowed to its --top best trials.")] = None,
    top: Annotated[int, typer.Option(min=1, help="Best trials --refine narrows around.")] = 5,
    resume: Annotated[Optional[Path], typer.Option(
        help="A sweep directory that was stopped or killed: run its missing, failed and "
             "interrupted trials with the sweep's own options; the stored ones are kept.")] = None,
    seeds: Annotated[int, typer.Option(
        min=1, help="Train every point with N seeds (the config's seed + 0..N-1) and rank by "
                    "the mean dev error; the data stays the config's.")] = 1,
    prune: Annotated[bool, typer.Option(
        "--prune", help="Asynchronous successive halving (ASHA): every trial pauses at each "
                        "rung; one in the best 1/FACTOR there so far goes on from its checkpoint "
                        "as soon as a worker is free.")] = False,
    prune_factor: Annotated[int, typer.Option(
        min=2, help="Each rung keeps the best 1/FACTOR and multiplies the epochs by FACTOR.")] = 3,
    prune_min_epochs: Annotated[Optional[int], typer.Option(
        min=1, help="Epochs of the first rung \\[default: the epochs / FACTOR²].")] = None,
    batch: Annotated[Optional[int], typer.Option(
        min=1, help="Trials tpe proposes before it learns from them; with the seed it fixes "
                    "the trials \\[default: one per worker].")] = None,
    cluster: Annotated[Optional[str], typer.Option(
        help="Run trials on a Dask scheduler, e.g. tcp://HOST:8786 (pip install \"dlrun\\[cluster]\").")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where the sweep directory is created.")] = Path("runs"),
    name: Annotated[Optional[str], typer.Option(help="Sweep name (overrides the config's name).")] = None,
    show: Annotated[int, typer.Option(min=1, help="Best trials listed at the end.")] = 5,
    stack: Annotated[bool, typer.Option(
        "--stack/--no-stack", help="Train trials that share an architecture, batch size and "
                                   "epochs as one stacked computation (same numbers).")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live display or table.")] = False,
):
    """Train many trials drawn from a search space, in parallel, and rank them by dev error."""
    from .console import console, err_console  # lazy: see OneLineUsageErrors
    from .sweep import launch
    from .sweep.run import Options
    from .sweep.view import LiveSweep

    if grid and sampler not in ("random", "grid"):
        raise ConfigError(f"--grid is --sampler grid; it cannot go with --sampler {sampler}")
    def note(text: str) -> None:
        err_console.print(f"note: {text}", markup=False, highlight=False)

    if resume is not None:
        if config is not None or overrides or refine is not None or name is not None:
            raise ConfigError(f"--resume {resume}: give the sweep directory alone (no CONFIG, "
                              "overrides, --refine or --name); it goes on with its own sweep.yaml")
        given = {key: value for key, value in ctx.params.items() if key in SWEEP_OPTIONS
                 and ctx.get_parameter_source(key).name != "DEFAULT"}
        if given.pop("grid", False):
            given["sampler"] = "grid"
        restack = stack if ctx.get_parameter_source("stack").name != "DEFAULT" else None
        try:
            swept = launch.resume(resume, given, workers, cluster, None if quiet else LiveSweep,
                                  restack, None if quiet else note)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/yellow]: finished trials are kept")
            raise typer.Exit(130)
        _show_sweep(swept, quiet, show)
        return
    space, refined_from = launch.search_space(config, overrides or [], name, refine, top)
    options = Options(trials=trials, sampler="grid" if grid else sampler, seed=seed, prune=prune,
                      prune_factor=prune_factor, prune_min_epochs=prune_min_epochs,
                      optimize=optimize, satisfy=list(satisfy or []), batch=batch, seeds=seeds,
                      stack=stack)
    try:
        swept = launch.sweep(space, options, runs_dir, workers, cluster, refined_from,
                             None if quiet else LiveSweep, note)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: finished trials are kept")
        raise typer.Exit(130)
    _show_sweep(swept, quiet, show)


SWEEP_OPTIONS = ("trials", "sampler", "grid", "optimize", "satisfy", "seed", "seeds", "prune",
                 "prune_factor", "prune_min_epochs", "batch")  # what --resume takes from sweep.json


def _show_sweep(swept, quiet: bool, show: int) -> None:
    from .sweep.run import draw_best  # lazy: see OneLineUsageErrors
    from .sweep.view import show_afterword, show_results

    if quiet:
        typer.echo(str(swept.directory))
    else:
        show_results(swept, show)
    page = show_afterword(swept, quiet)  # the report page, written once the figures are drawn
    draw_best(swept, later=True, then=page)  # by a detached child, while this exits
    if not any(trial.summary["status"] == "completed" for trial in swept.finished.values()):
        raise typer.Exit(1)


@app.command()
@user_errors
def refit(
    run_dir: Annotated[Path, typer.Argument(help="A completed run directory.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
):
    """Train the final model on train + dev for the epochs the run chose on dev, into RUN/refit,
    and report its test error (train.refit: true does this after training)."""
    from .console import ProgressReporter, console  # lazy: see OneLineUsageErrors
    from .training import refit as refit_module
    from .training.signals import sigterm_as_interrupt

    with sigterm_as_interrupt():
        summary = refit_module.refit(run_dir, None if quiet else ProgressReporter(run_dir.name))
    console.print(refit_module.describe(summary), highlight=False, soft_wrap=True)


@app.command()
@user_errors
def errors(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by dlrun train.")],
    split: Annotated[str, typer.Option(help="The split to analyse: dev, test, train or train_dev.")
                     ] = "dev",
    top: Annotated[int, typer.Option(min=1, help="Worst examples shown (and drawn).")] = 10,
    tags: Annotated[Optional[Path], typer.Option(
        metavar="ERRORS_CSV", help="errors.csv with its tag column filled in (several tags: "
                                   "'blurry; dark'): the share of the errors each tag covers and "
                                   "the error fixing it could reach.")] = None,
):
    """Error analysis: the confusion matrix, per-class figures and the misclassified examples by
    loss (regression: the largest residuals); writes errors.csv to tag and confusion.png."""
    from .console import console  # lazy: see OneLineUsageErrors
    from .diagnosis import error_table, error_view

    error_view.render(error_table.report(run_dir, split, top, tags), console, top)


@app.command("learning-curve")
@user_errors
def learning_curve(
    config: Annotated[Path, typer.Argument(help="Experiment spec (YAML).")],
    overrides: Annotated[Optional[list[str]], typer.Argument(
        help="Dotted overrides, e.g. train.epochs=300")] = None,
    sizes: Annotated[str, typer.Option(
        help="Shares of the training split to train on, comma-separated.")] = "0.1,0.2,0.4,0.7,1.0",
    seeds: Annotated[int, typer.Option(min=1, help="Runs per size (seeds seed, seed + 1, ...).")
                     ] = 1,
    runs_dir: Annotated[Path, typer.Option(help="Where the curve's directory is created.")
                        ] = Path("runs"),
):
    """Train on growing shares of the training split, same dev set, and say whether more data
    is likely to help; writes learning_curve.csv and .png beside the runs."""
    from . import config as config_module  # lazy: see OneLineUsageErrors
    from .console import console
    from .strategy import learning_curve as curve_module
    from .strategy.view import curve_table, run_line
    from .training.signals import sigterm_as_interrupt

    shares = curve_module.parse_sizes(sizes)
    experiment = config_module.load(config, list(overrides or []))
    with sigterm_as_interrupt():
        try:
            curve = curve_module.learning_curve(
                experiment, runs_dir, shares, seeds,
                on_run=lambda point, summary: console.print(run_line(point, summary),
                                                            highlight=False))
        except ConfigError as error:  # found once the data is loaded: say where the key is
            raise config_module.located(error, config, overrides or []) from None
    console.print(curve_table(curve))
    console.print(f"[bold]{curve.verdict}[/bold]: {curve.reason}", highlight=False)
    console.print(f"table and figure in {curve.directory}", highlight=False, soft_wrap=True)


@app.command()
@user_errors
def plot(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by dlrun train.")],
):
    """Re-draw a run's figures: curves.png, and boundary.png for 2-D inputs."""
    from . import plots  # lazy: see OneLineUsageErrors
    from .console import console, err_console

    written, notes = plots.redraw(run_dir)
    for note in notes:
        err_console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    for path in written:
        console.print(str(path), highlight=False)


if __name__ == "__main__":
    app()
