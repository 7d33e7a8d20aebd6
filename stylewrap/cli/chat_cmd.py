from __future__ import annotations

import click


@click.command()
@click.option("--base-url", default=None, help="OpenAI-compatible endpoint [the running stylewrap server, else http://127.0.0.1:8000/v1].")
@click.option("--model", default=None, help="Model name [the server's tuned model, else its first].")
@click.option("--system", default=None, help="System prompt (change it later with /system).")
@click.option("--api-key-env", default=None, metavar="VAR", help="Env var holding the API key [the server's, else OPENAI_API_KEY].")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="Cap each reply.")
@click.option("--temperature", type=click.FloatRange(0, 2), default=None, help="Sampling temperature.")
def chat(base_url, model, system, api_key_env, max_tokens, temperature) -> None:
    """Chat in the terminal with any OpenAI-compatible endpoint.

    Replies stream as they are generated; the conversation is kept across turns.
    At the prompt: /reset, /system [TEXT], /exit; Ctrl-C stops a reply, Ctrl-D leaves.
    """
    from stylewrap.serve.chat import Conversation, chat_loop, resolve_endpoint

    options = {k: v for k, v in {"max_tokens": max_tokens, "temperature": temperature}.items() if v is not None}
    endpoint = resolve_endpoint(base_url, model, api_key_env)
    chat_loop(endpoint, Conversation(system=system), read=input, write=lambda text: click.echo(text, nl=False), **options)
