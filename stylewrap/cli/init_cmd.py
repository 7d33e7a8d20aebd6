from __future__ import annotations

from pathlib import Path

import click

from stylewrap.cli.options import echo_next, shell_words


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--force", is_flag=True, help="Overwrite an existing stylewrap.yaml.")
def init(directory: Path, force: bool) -> None:
    """Scaffold a project in DIRECTORY: a stylewrap.yaml with every section commented."""
    from stylewrap.config import MUST_SET
    from stylewrap.project import init_project

    path = init_project(directory, force=force)
    click.echo(f"wrote {path}")
    click.echo("set the keys marked REQUIRED in it:")
    for key, what in MUST_SET.items():
        click.echo(f"  {key}: {what}")
    echo_next("stylewrap run" if directory == Path(".") else shell_words("stylewrap", "run", directory),
              "stylewrap demo   (try it offline first)")
