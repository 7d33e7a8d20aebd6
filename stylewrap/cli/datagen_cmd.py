from __future__ import annotations

import functools
from pathlib import Path

import click

from stylewrap.backends.registry import backend_names

from stylewrap.cli.options import config_option, echo_next, set_option

TEACHER_OPTIONS = [
    click.option("--style", help="Style name (`stylewrap styles list`) or a style YAML path."),
    click.option("--model", help="Teacher model name."),
    click.option("--base-url", help="OpenAI-compatible endpoint [default: $OPENAI_BASE_URL, else OpenAI]."),
    click.option("--api-key-env", metavar="VAR", help="Environment variable holding the API key [default: OPENAI_API_KEY]."),
    click.option("--temperature", type=float),
    click.option("--max-tokens", type=int, help="Per reply; a reply cut at this length is rejected."),
    click.option("--concurrency", type=int, help="Requests in flight at once."),
    click.option("--rpm", type=int, help="Requests-per-minute limit."),
    click.option("--tpm", type=int, help="Tokens-per-minute limit."),
    click.option("--price-in", type=float, help="USD per 1k input tokens, for the cost column."),
    click.option("--price-out", type=float, help="USD per 1k output tokens."),
    click.option("--timeout", type=float, help="Seconds per request."),
    click.option("--max-retries", type=int, help="Retries per request on 429/5xx/timeouts."),
    click.option("--max-attempts", type=int, help="Asks per item while its replies are rejected."),
    click.option("--json-mode/--no-json-mode", default=None, help="Send response_format=json_object."),
    click.option("--seed", type=int),
    click.option("--quiet", is_flag=True, help="No progress bar."),
    click.option("--retry-errors", is_flag=True, help="Send the items in errors.jsonl again (e.g. after raising --max-tokens)."),
]
OUTPUT_OPTIONS = [
    click.option("-o", "--output", type=click.Path(file_okay=False), help="Output folder (resumes what is there)."),
    click.option("--format", "fmt", help="Training file format (any adapters format) [default: sharegpt]."),
    click.option("--train-file", help="Training file name in the output folder [default: train.jsonl]; "
                                      "a .json name writes one JSON array, e.g. --format alpaca --train-file TslDial.json."),
    config_option,
    set_option,
]
num_topics_option = click.option("--num-topics", type=int, help="Topics to generate.")
topics_file_option = click.option("--topics-file", type=click.Path(dir_okay=False, path_type=Path), help="Use these topics (one per line).")
DIALOGUE_OPTIONS = [
    click.option("--num-dialogues", type=int, help="Distinct dialogues, balanced over the topics."),
    click.option("--turns", type=int, help="User/assistant exchanges per dialogue."),
    click.option("--dedup-attempts", type=int, help="Asks per dialogue while its first question repeats an earlier one."),
]


def with_options(*groups):
    def decorate(func):
        for option in reversed([o for group in groups for o in group]):
            func = option(func)
        return func

    return decorate


def _run(stages: tuple[str, ...], config_path, overrides, quiet=False, retry_errors=False, topics_file=None, input_file=None,
         register=None, register_backend=None, **flags) -> None:
    from rich.console import Console

    from stylewrap.datagen.entry import exit_status, run_with_flags
    from stylewrap.datagen.manifest import summary_table

    manifest = run_with_flags(stages, config_path, overrides, flags, show_progress=not quiet, retry_errors=retry_errors,
                              topics_file=topics_file, input_file=input_file, register_dir=register,
                              register_backend=register_backend)
    Console().print(summary_table(manifest))
    code = exit_status(manifest)
    if code:
        raise click.exceptions.Exit(code)
    if "build" in stages:
        echo_next("stylewrap train   (data.train_file: the training file above)",
                  "stylewrap data stats FILE --html stats.html --open   (look at it first)")


def stage_command(stages: tuple[str, ...], *groups):
    def decorate(func):
        @functools.wraps(func)
        def command(**kwargs):
            _run(stages, **kwargs)

        return datagen.command(func.__name__)(with_options(*groups)(command))

    return decorate


@click.group()
def datagen() -> None:
    """Generate a style dataset through an OpenAI-compatible API.

    Stages: topics -> dialogues (plain answers) -> stylize (answers rewritten in the style) ->
    build (the training file). `run` does all four. Every stage resumes where it stopped: run
    the same command again after Ctrl-C or a crash. The key comes from $OPENAI_API_KEY.
    """


REGISTER_OPTIONS = [
    click.option("--register", type=click.Path(file_okay=False, path_type=Path), metavar="DATASET_DIR",
                 help="Also register the training file in this folder's dataset_info.json (LLaMA-Factory) "
                      "or custom_dataset_info.json (ms-swift)."),
    click.option("--register-backend", type=click.Choice(backend_names()), default=None,
                 help="Whose registration --register writes [default: train.backend]."),
]


@stage_command(("topics", "dialogues", "stylize", "build"), TEACHER_OPTIONS, [num_topics_option, topics_file_option],
               DIALOGUE_OPTIONS, OUTPUT_OPTIONS, REGISTER_OPTIONS)
def run() -> None:
    """All stages: topics, dialogues, stylize, build."""


@stage_command(("topics",), TEACHER_OPTIONS, [num_topics_option, topics_file_option], OUTPUT_OPTIONS)
def topics() -> None:
    """Generate the topics (or take them from --topics-file)."""


@stage_command(("dialogues",), TEACHER_OPTIONS, DIALOGUE_OPTIONS, [topics_file_option], OUTPUT_OPTIONS)
def dialogues() -> None:
    """Generate distinct plain dialogues per topic (topics from --topics-file or the output folder)."""


@stage_command(("stylize",), TEACHER_OPTIONS, OUTPUT_OPTIONS,
               [click.option("-i", "--input", "input_file", type=click.Path(dir_okay=False, path_type=Path),
                             help="Dataset of plain answers, any format [default: the output folder's dialogues]."),
                click.option("--distinct-questions", is_flag=True, default=None,
                             help="Keep only the first row for each first question (normalized).")])
def stylize() -> None:
    """Rewrite the answers of a dataset in the style; questions stay unchanged."""


@stage_command(("build",), OUTPUT_OPTIONS, REGISTER_OPTIONS)
def build() -> None:
    """Write the training file from the stylized dialogues."""
