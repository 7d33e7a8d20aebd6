"""`stylewrap runs list|show`."""

from __future__ import annotations

import click

from stylewrap.cli.options import config_option, echo_next, json_option, set_option


@click.group()
def runs() -> None:
    """List, show and cancel training runs.
    """


@runs.command("list")
@json_option
@config_option
@set_option
def list_(as_json, config_path, overrides) -> None:
    """The runs under train.output_dir, newest first; the id is what other commands take as RUN.
    """
    from stylewrap.backends.runs import list_runs, run_record, runs_table
    from stylewrap.config import load_config

    found = list_runs(load_config(config_path, overrides))
    if as_json:
        click.echo(dump_json([run_record(path) for path, _ in found]))
        return
    if not found:
        click.echo("no runs yet; train one: stylewrap train")
        return
    from rich.console import Console

    Console().print(runs_table(found))
    echo_next(f"stylewrap runs show {found[0][1].run_id}")


@runs.command()
@click.argument("run", metavar="RUN")
@json_option
@config_option
@set_option
def show(run, as_json, config_path, overrides) -> None:
    """What run.json records about RUN: an id as `runs list` shows it, a unique prefix, latest, or a folder.
    """
    from stylewrap.backends.runs import find_run, run_record, show_run
    from stylewrap.config import load_config

    run_dir = find_run(load_config(config_path, overrides), run)
    if as_json:
        click.echo(dump_json(run_record(run_dir, refresh=True)))
        return
    click.echo(show_run(run_dir))   # ends with the next command, which depends on the run's state


@runs.command()
@click.argument("run", metavar="RUN")
@config_option
@set_option
def cancel(run, config_path, overrides) -> None:
    """Cancel RUN's Slurm job (scancel); a local run stops with Ctrl-C in its terminal.
    """
    from stylewrap.backends.runs import cancel_run

    info = cancel_run(config_path, overrides, run)
    click.echo(f"cancelled Slurm job {info.extra['slurm']['job_id']} of run {info.run_id}")


def dump_json(value) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, indent=2)
