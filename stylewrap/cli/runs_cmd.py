"""`stylewrap runs list|show`."""

from __future__ import annotations

import click

from stylewrap.cli.options import config_option, set_option


@click.group()
def runs() -> None:
    """List and show training runs."""


@runs.command("list")
@config_option
@set_option
def list_(config_path, overrides) -> None:
    """The runs under train.output_dir, newest first."""
    from rich.console import Console

    from stylewrap.backends.runs import list_runs, runs_table
    from stylewrap.config import load_config

    Console(width=200).print(runs_table(list_runs(load_config(config_path, overrides))))


@runs.command()
@click.argument("run")
@config_option
@set_option
def show(run, config_path, overrides) -> None:
    """Everything run.json records about RUN (a run id or directory)."""
    from stylewrap.backends.runs import find_run, show_run
    from stylewrap.config import load_config

    click.echo(show_run(find_run(load_config(config_path, overrides), run)))
