"""`stylewrap runs list|show`."""

from __future__ import annotations

import click

from stylewrap.cli.options import config_option, echo_next, json_option, set_option


@click.group()
def runs() -> None:
    """List and show training runs.
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
        click.echo(dump_json(run_record(run_dir)))
        return
    click.echo(show_run(run_dir))
    echo_next(f"stylewrap compare {run_dir.name}", f"stylewrap deploy --run {run_dir.name}")


def dump_json(value) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, indent=2)
