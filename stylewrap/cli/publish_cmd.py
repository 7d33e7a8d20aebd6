from __future__ import annotations

from pathlib import Path

import click

from stylewrap.cli import debug_enabled
from stylewrap.cli.options import checkpoint_option, config_option, echo_next, set_option, shell_words

repo_option = click.option("--repo", "repo_id", metavar="OWNER/NAME",
                           help="ModelScope repo [default: publish.model_repo / publish.dataset_repo].")
visibility_option = click.option("--private/--public", "private", default=None,
                                 help="Visibility of a repo this creates [default: private; publish.private].")
license_option = click.option("--license", "license", default=None, help="License id [default: publish.license].")
dry_run_option = click.option("--dry-run", is_flag=True,
                              help="List the files and sizes that would go up and print the card; upload nothing.")


@click.group()
def publish() -> None:
    """Publish a model or dataset to ModelScope.

    Token from $MODELSCOPE_API_TOKEN (or `modelscope login`); endpoint from $MODELSCOPE_ENDPOINT.
    """


def _size(count: float) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    index = 0
    while count >= 1024 and index < len(units) - 1:
        count /= 1024
        index += 1
    return f"{count:.0f} B" if index == 0 else f"{count:.1f} {units[index]}"


def _show(result) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    plan = result.plan
    table = Table(title=f"{plan.repo_type} {plan.repo_id} ({'private' if plan.private else 'public'})")
    table.add_column("file")
    table.add_column("size", justify="right")
    table.add_column("note")
    for planned in plan.files:
        table.add_row(planned.path_in_repo, _size(planned.size), planned.note)
    console.print(table)
    if plan.skipped:
        skipped = Table(title="left out")
        skipped.add_column("path")
        skipped.add_column("why")
        for item in plan.skipped:
            skipped.add_row(item.path, item.reason)
        console.print(skipped)
    console.print(f"{len(plan.files)} files, {_size(plan.total_size)} ({plan.total_size} bytes)")
    if result.dry_run:
        card = plan.file("README.md")
        if card is not None and card.content is not None:
            # the card is what a reader sees first: show it whole, as it would go up
            click.echo(f"--- README.md (the {plan.repo_type} card)")
            click.echo(card.content.decode("utf-8"))
            click.echo("--- end of README.md")
        console.print("dry run: nothing uploaded")
        return
    for note in result.notes:
        console.print(f"note: {note}")
    console.print(f"{'created' if result.created else 'updated'} ({result.visibility}): {result.url}")


def _quiet_sdk_logs() -> None:
    """The SDK logs every step at INFO; stylewrap reports progress itself. Its logger only adds its
    own handler (and resets its level) when it has none, so a WARNING handler set first stays."""
    import logging

    sdk = logging.getLogger("modelscope_hub")
    if debug_enabled() or sdk.handlers:
        return
    handler = logging.StreamHandler()
    handler.setLevel(logging.WARNING)
    sdk.addHandler(handler)
    sdk.propagate = False


def _run(function, source, config_path, overrides, *, run_names: bool = False, **kwargs) -> None:
    from rich.console import Console

    from stylewrap.config import load_config

    config = load_config(config_path, overrides)
    if run_names and not Path(source).exists():   # a run's id, prefix or `latest`
        from stylewrap.backends.runs import find_run

        source = find_run(config, source)
    source = Path(source)
    _quiet_sdk_logs()
    console = Console(stderr=True, log_path=False)
    with console.status("publishing") as status:
        result = function(source, config.publish, report=lambda msg: status.update(msg) or console.log(msg),
                          key_envs=config.key_envs(), **kwargs)
    _show(result)
    _show_next(result)


def _show_next(result) -> None:
    import sys

    from stylewrap.publish.plan import unlinked_training_file

    if result.dry_run:
        echo_next(shell_words("stylewrap", *(word for word in sys.argv[1:] if word != "--dry-run"))
                  + "   (uploads the files above)")
    elif result.plan.repo_type == "dataset":
        echo_next("stylewrap publish model latest   (its card links this dataset)")
    elif (data := unlinked_training_file(result.plan.run_dir)) is not None:
        echo_next(shell_words("stylewrap", "publish", "dataset", data) + "   (the data it was trained on; "
                  "the model card links it once published)")
    else:
        echo_next(f"open {result.url}   (the model page; its card says how to use it)")


@publish.command()
@click.argument("source", metavar="RUN|MODEL_DIR")
@repo_option
@click.option("--merged", "variant", flag_value="merged", help="Upload the merged model of the run.")
@click.option("--adapter", "variant", flag_value="adapter", help="Upload the LoRA adapter of the run.")
@visibility_option
@license_option
@click.option("--base-model-id", default=None, metavar="OWNER/NAME",
              help="Hub id of the base model, written into adapter_config.json and the card.")
@click.option("--dataset-repo", "dataset_repos", multiple=True, metavar="OWNER/NAME",
              help="Dataset repo(s) the card links to (repeatable) [default: the repo the run's training file "
                   "was published to from here, if it was].")
@click.option("--allow-template-mismatch", is_flag=True,
              help="Publish a run even when its merged model's or Modelfile's chat template differs from training.")
@checkpoint_option
@dry_run_option
@config_option
@set_option
def model(source, repo_id, variant, private, license, base_model_id, dataset_repos, allow_template_mismatch, checkpoint,
          dry_run, config_path, overrides) -> None:
    """Upload a run's adapter or merged model (or a model folder) with a generated model card.

    Without --merged/--adapter a run directory publishes its merged model when one exists, else
    its adapter.
    """
    from stylewrap.publish.hub import publish_model

    _run(publish_model, source, config_path, overrides, run_names=True, repo_id=repo_id, dry_run=dry_run,
         variant=variant or "auto", private=private, license=license, base_model_id=base_model_id,
         dataset_repos=dataset_repos, checkpoint=checkpoint, allow_template_mismatch=allow_template_mismatch)


@publish.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path), metavar="FILE_OR_DIR")
@repo_option
@visibility_option
@license_option
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Generation manifest [default: manifest.json beside the data].")
@click.option("--stages", is_flag=True, help="From a datagen folder, also upload its stages (topics, plain and "
                                              "stylized dialogues) under stages/; by default only the training file and manifest.")
@dry_run_option
@config_option
@set_option
def dataset(source, repo_id, private, license, manifest, stages, dry_run, config_path, overrides) -> None:
    """Upload a dataset file or folder with a card: formats, row counts, how it was generated."""
    from stylewrap.publish.hub import publish_dataset

    _run(publish_dataset, source, config_path, overrides, repo_id=repo_id, dry_run=dry_run, private=private,
         license=license, manifest=manifest, stages=stages)
