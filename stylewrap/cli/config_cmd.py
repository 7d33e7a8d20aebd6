from __future__ import annotations

import click

from stylewrap.cli.options import config_option, set_option


@click.group()
def config() -> None:
    """Show or validate the effective configuration."""


@config.command()
@config_option
@set_option
def show(config_path, overrides) -> None:
    """Print the effective config (file + env + --set), secrets excluded."""
    from stylewrap.config import config_as_yaml, load_config

    click.echo(config_as_yaml(load_config(config_path, overrides)), nl=False)


@config.command()
@config_option
@set_option
def validate(config_path, overrides) -> None:
    """Check the config; exit 2 with file:line: field on the first problem."""
    from stylewrap.config import find_config, load_config

    load_config(config_path, overrides)
    click.echo(f"ok: {config_path or find_config() or '<defaults>'}")
