from __future__ import annotations

import click

from stylewrap.cli.options import server_chooser


@click.command()
@click.option("--base-url", default=None, help="OpenAI-compatible endpoint [default: the running stylewrap server (asks which when several are); with none, http://127.0.0.1:8000/v1].")
@click.option("--model", default=None, help="Model name [default: the server's tuned model, else its first].")
@click.option("--system", default=None, help="System prompt (change it later with /system).")
@click.option("--api-key-env", default=None, metavar="VAR", help="Env var holding the endpoint's API key [default: the one the stylewrap server there requires; else no key is sent].")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="Cap each reply.")
@click.option("--temperature", type=click.FloatRange(0, 2), default=None, help="Sampling temperature.")
def chat(base_url, model, system, api_key_env, max_tokens, temperature) -> None:
    """Chat in the terminal with any OpenAI-compatible endpoint.

    Replies stream as they are generated; the conversation is kept across turns.
    At the prompt: /reset, /system [TEXT], /exit; arrow keys edit and recall lines; Ctrl-C stops a
    reply or clears the line, Ctrl-D leaves.
    """
    import sys

    from stylewrap.serve.chat import Conversation, chat_loop, line_editing, resolve_endpoint

    options = {k: v for k, v in {"max_tokens": max_tokens, "temperature": temperature}.items() if v is not None}
    endpoint = resolve_endpoint(base_url, model, api_key_env, choose=server_chooser())
    line_editing(sys.stdin)
    chat_loop(endpoint, Conversation(system=system), read=input, write=lambda text: click.echo(text, nl=False), **options)
