from __future__ import annotations

import click

from stylewrap.cli.options import server_chooser


@click.command()
@click.option("--base-url", default=None, help="OpenAI-compatible endpoint [default: the running stylewrap server (asks which when several are); with none, http://127.0.0.1:8000/v1].")
@click.option("--model", default=None, help="Model selected first [default: the server's tuned model].")
@click.option("--api-key-env", default=None, metavar="VAR", help="Env var holding the endpoint's API key, kept on the server side [default: the one the stylewrap server there requires; else no key is sent].")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the page listens on.")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True, help="Port the page listens on.")
def app(base_url, model, api_key_env, host, port) -> None:
    """A web chat page for a deployed model.

    Streams replies; when the endpoint serves several models (ms-swift serves base and tuned),
    a "side by side" switch asks the tuned and the base model the same question. Ctrl-C stops it.
    """
    from stylewrap.serve.webapp import run_app

    run_app(base_url, model, api_key_env, host, port, choose=server_chooser(), on_ready=lambda url: click.echo(f"chat page on {url}  (Ctrl-C stops)"))
