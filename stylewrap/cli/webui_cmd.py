"""`stylewrap webui`."""

from __future__ import annotations

import click

from stylewrap.cli.options import backend_option, config_option, dry_run_option, set_option


@click.command()
@backend_option("Whose training UI [default: train.backend].", default=None)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0 exposes it to the network).")
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True)
@config_option
@set_option
@dry_run_option
def webui(backend, host, port, config_path, overrides, dry_run) -> None:
    """The backend's own training UI (`swift web-ui`, LLaMA Board) from its managed env.

    Needs Gradio in the env: `stylewrap backend install NAME --webui`.
    """
    import sys

    from stylewrap.backends.webui import plan_webui, run_webui
    from stylewrap.config import load_config
    from stylewrap.runner import describe

    invocation = plan_webui(load_config(config_path, overrides), backend, host, port)
    if dry_run:
        click.echo(describe(invocation))
        return
    click.echo(f"training UI: http://{host}:{port}/ (Ctrl-C stops it)", err=True)
    try:
        code = run_webui(invocation, echo=sys.stdout)
    except KeyboardInterrupt:
        code = 0
    if code:
        raise click.exceptions.Exit(code)
