from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--force", is_flag=True, help="Overwrite an existing stylewrap.yaml.")
def init(directory: Path, force: bool) -> None:
    """Scaffold a project in DIRECTORY: a stylewrap.yaml with every section commented."""
    from stylewrap.project import init_project

    path = init_project(directory, force=force)
    click.echo(f"wrote {path}")
