from __future__ import annotations

from pathlib import Path

import click

from stylewrap.cli.options import backend_option


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default="stylewrap-demo")
@backend_option("Which backend the demo trains and serves with.", default="llamafactory", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Serve on this port [default: the demo config's].")
@click.option("--force", is_flag=True, help="Rebuild an existing demo folder.")
@click.option("--setup-only", is_flag=True, help="Only write the project; run it later with `stylewrap run DIRECTORY`.")
def demo(directory: Path, backend: str, port: int | None, force: bool, setup_only: bool) -> None:
    """An offline demo project (a tiny local model, embedded style rows, a CPU-sized config), then
    `stylewrap run` on it: data, train, export, eval and deploy.

    With OPENAI_API_KEY and OPENAI_BASE_URL set, the run first generates its rows through that
    endpoint (datagen). scripts/demo.sh runs this, then chats with the server and stops it.
    """
    from stylewrap.cli.run_cmd import show_result
    from stylewrap.pipeline.entry import run_demo

    result = run_demo(directory, backend=backend, force=force, port=port, setup_only=setup_only, report=click.echo)
    if result is None:
        click.echo(f"run it: stylewrap run {directory}")
        return
    show_result(result)
