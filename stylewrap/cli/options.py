"""Options shared by several commands (config file, --set overrides, --dry-run)."""

from __future__ import annotations

from pathlib import Path

import click

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="stylewrap.yaml to use (default: the nearest one upward from here, up to the project root or home).",
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
         "or last (the final weights) [last].",
)
