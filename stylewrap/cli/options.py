"""Options shared by several commands (config file, --set overrides, --dry-run)."""

from __future__ import annotations

from pathlib import Path

import click

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="stylewrap.yaml to use [default: the nearest one upward from here, up to the project root or home].",
)
set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config value, e.g. --set train.learning_rate=1e-4 (repeatable).",
)
dry_run_option = click.option("--dry-run", is_flag=True, help="Print the commands, env and files instead of running.")
checkpoint_option = click.option(
    "--checkpoint", default=None, metavar="N|best|last",
    help="Which weights of the run: N (its checkpoint-N), best (lowest eval loss among the kept checkpoints) "
         "or last (the final weights) [default: last].",
)


def server_chooser():
    """For chat and app: with several stylewrap servers running, ask which one at a terminal
    (None elsewhere: the library then names them all in its error)."""
    import sys

    if not sys.stdin.isatty():
        return None

    def choose(records):
        from stylewrap.serve.deploy import describe_server

        click.echo(f"{len(records)} stylewrap servers are running:", err=True)
        for number, record in enumerate(records, 1):
            click.echo(f"  {number}. {describe_server(record)}", err=True)
        picked = click.prompt("which one", type=click.IntRange(1, len(records)), default=1, err=True)
        return records[picked - 1]

    return choose


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")


def backend_option(help: str, **kwargs):
    """--backend as a fixed choice of the registered backends (entry-point metadata: no backend
    module is imported, so help stays fast and a misspelt name fails with the list)."""
    from stylewrap.backends.registry import backend_names

    return click.option("--backend", type=click.Choice(backend_names()), help=help, **kwargs)


open_option = click.option("--open", "open_page", is_flag=True, help="Open the HTML page in the browser when written.")


def open_in_browser(page) -> None:
    """Open a written HTML page with the webbrowser module; where no browser can show it (no
    display, e.g. over SSH) say so and print where it is instead."""
    import os
    import sys
    import webbrowser
    from pathlib import Path

    url = Path(page).resolve().as_uri()
    headless = sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if headless or not webbrowser.open(url):
        click.echo(f"no browser to open it here (no display); open {url}", err=True)


def echo_next(*commands: str) -> None:
    """The line every step ends with, in one format: `next: COMMAND`, then `  or: COMMAND` for each
    alternative (a note in parentheses after a command says why)."""
    for index, command in enumerate(commands):
        click.echo(f"{'next' if index == 0 else '  or'}: {command}")


def shell_words(*words: str | Path) -> str:
    """Words as a shell command the user can paste (paths with spaces quoted)."""
    import shlex

    return shlex.join(str(word) for word in words)
