"""`stylewrap run`: the whole path from one stylewrap.yaml."""

from __future__ import annotations

from pathlib import Path

import click

from stylewrap.cli.options import set_option
from stylewrap.pipeline.stages import STAGE_NAMES

stage_choice = click.Choice(STAGE_NAMES)


@click.command()
@click.argument("config", required=False, type=click.Path(path_type=Path))
@click.option("--from", "from_stage", type=stage_choice, default=None,
              help="Run this stage and every stage after it, even when up to date.")
@click.option("--to", "to_stage", type=stage_choice, default=None, help="Stop after this stage.")
@click.option("--force", multiple=True, type=stage_choice, help="Run this stage (and the ones after it) again (repeatable).")
@set_option
@click.option("--dry-run", is_flag=True, help="Print what each stage would do and why; run and write nothing.")
@click.option("--quiet", is_flag=True, help="No progress bars inside the stages.")
def run(config, from_stage, to_stage, force, overrides, dry_run, quiet) -> None:
    """Run datagen -> data -> train -> export -> eval -> deploy -> publish from CONFIG.

    CONFIG is a stylewrap.yaml or its folder [default: the nearest one upward]. datagen runs only
    with a datagen section (and no data.train_file), deploy and publish only with their sections.
    Each stage's inputs are fingerprinted into stylewrap.lock beside the config: a stage whose
    config, input files and upstream stages are unchanged is skipped; a changed one runs again
    with every stage after it. After a crash or Ctrl-C the same command resumes (training from
    its last checkpoint). The summary is also written as summary.json and summary.md in the run
    folder.
    """
    from rich.console import Console

    from stylewrap.pipeline.entry import RunRequest, run as run_pipeline

    request = RunRequest(config_path=config, overrides=overrides, from_stage=from_stage, to_stage=to_stage,
                         force=force, dry_run=dry_run, show_progress=not quiet)
    result = run_pipeline(request, console=Console(stderr=True), report=click.echo)
    if dry_run:
        click.echo("dry run: nothing ran, nothing written")
        return
    show_result(result)


def show_result(result) -> None:
    """The summary table on stdout, and where its files are."""
    from rich.console import Console
    from rich.table import Table

    from stylewrap.pipeline.summary import COLUMNS, rows

    table = Table(title=f"stylewrap run: {result.config_path}")
    for column in COLUMNS:
        table.add_column(column)
    for row in rows(result):
        table.add_row(*row)
    Console().print(table)
    for path in result.summary_files:
        click.echo(f"summary: {path}")
