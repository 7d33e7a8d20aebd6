from __future__ import annotations

import click


@click.command()
@click.option("--base-url", default=None, help="OpenAI-compatible endpoint [the running stylewrap server, else http://127.0.0.1:8000/v1].")
@click.option("--model", default=None, help="Model selected first [the server's tuned model].")
@click.option("--api-key-env", default=None, metavar="VAR", help="Env var holding the endpoint's API key (stays on the server side).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the page listens on.")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True, help="Port the page listens on.")
def app(base_url, model, api_key_env, host, port) -> None:
    """A web chat page for a deployed model.

    Streams replies; when the endpoint serves several models (ms-swift serves base and tuned),
    a "side by side" switch asks two of them at once. Ctrl-C stops it.
    """
    from stylewrap.serve.webapp import run_app

    run_app(base_url, model, api_key_env, host, port, on_ready=lambda url: click.echo(f"chat page on {url}  (Ctrl-C stops)"))
