from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default="stylewrap-demo")
@click.option("--backend", type=click.Choice(["llamafactory", "swift"]), default="llamafactory", show_default=True)
@click.option("--force", is_flag=True, help="Rebuild an existing demo folder.")
def demo(directory: Path, backend: str, force: bool) -> None:
    """Set up an offline demo project: a tiny local model that speaks plain Chinese, styled rows, a CPU-sized config.

    Then, in DIRECTORY: stylewrap train, export RUN, compare RUN, deploy --run RUN (scripts/demo.sh
    runs the whole path).
    """
    from stylewrap.demo import prepare_demo

    click.echo("tiny model: built once per machine (about a minute on two CPU cores), then reused")
    project = prepare_demo(directory, backend=backend, force=force, on_build_line=lambda line: click.echo(f"  {line}"))
    click.echo(f"model:  {project.model_dir}\ndata:   {project.data_file}\nconfig: {project.config_file}")
