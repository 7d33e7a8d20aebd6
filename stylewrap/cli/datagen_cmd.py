from __future__ import annotations

import functools
from pathlib import Path

import click

from stylewrap.cli.options import config_option, set_option

# flag -> config key; each flag is an override on top of stylewrap.yaml (and --set)
FLAG_KEYS = {
    "style": "style.preset",
    "model": "datagen.teacher_model",
    "base_url": "datagen.base_url",
    "api_key_env": "datagen.api_key_env",
    "num_topics": "datagen.num_topics",
    "num_dialogues": "datagen.num_dialogues",
    "turns": "datagen.turns",
    "temperature": "datagen.temperature",
    "max_tokens": "datagen.max_tokens",
    "concurrency": "datagen.concurrency",
    "rpm": "datagen.requests_per_minute",
    "tpm": "datagen.tokens_per_minute",
    "price_in": "datagen.price_input_per_1k",
    "price_out": "datagen.price_output_per_1k",
    "timeout": "datagen.request_timeout",
    "max_retries": "datagen.max_retries",
    "max_attempts": "datagen.max_attempts",
    "json_mode": "datagen.json_mode",
    "seed": "datagen.seed",
    "output": "datagen.output_dir",
    "fmt": "datagen.output_format",
}

TEACHER_OPTIONS = [
    click.option("--style", help="Style preset name (`stylewrap styles list`) or a preset YAML path."),
    click.option("--model", help="Teacher model name."),
    click.option("--base-url", help="OpenAI-compatible endpoint (default $OPENAI_BASE_URL, else OpenAI)."),
    click.option("--api-key-env", metavar="VAR", help="Environment variable holding the API key (default OPENAI_API_KEY)."),
    click.option("--temperature", type=float),
    click.option("--max-tokens", type=int, help="Per reply; a reply cut at this length is rejected."),
    click.option("--concurrency", type=int, help="Requests in flight at once."),
    click.option("--rpm", type=int, help="Requests-per-minute limit."),
    click.option("--tpm", type=int, help="Tokens-per-minute limit."),
    click.option("--price-in", type=float, help="USD per 1k input tokens, for the cost column."),
    click.option("--price-out", type=float, help="USD per 1k output tokens."),
    click.option("--timeout", type=float, help="Seconds per request."),
    click.option("--max-retries", type=int, help="Retries per request on 429/5xx/timeouts."),
    click.option("--max-attempts", type=int, help="Asks per item after a rejected reply or a duplicate."),
    click.option("--json-mode/--no-json-mode", default=None, help="Send response_format=json_object."),
    click.option("--seed", type=int),
    click.option("--quiet", is_flag=True, help="No progress bar."),
]
OUTPUT_OPTIONS = [
    click.option("-o", "--output", type=click.Path(file_okay=False), help="Output folder (resumes what is there)."),
    click.option("--format", "fmt", help="Training file format (any adapters format; default sharegpt)."),
    config_option,
    set_option,
]
COUNT_OPTIONS = [
    click.option("--num-topics", type=int, help="Topics to generate."),
    click.option("--num-dialogues", type=int, help="Distinct dialogues, balanced over the topics."),
    click.option("--turns", type=int, help="User/assistant exchanges per dialogue."),
    click.option("--topics-file", type=click.Path(dir_okay=False, path_type=Path), help="Use these topics (one per line)."),
]


def with_options(*groups):
    def decorate(func):
        for option in reversed([o for group in groups for o in group]):
            func = option(func)
        return func

    return decorate


def _run(stages: tuple[str, ...], config_path, overrides, quiet=False, topics_file=None, input_file=None, register=None, **flags) -> None:
    from rich.console import Console

    from stylewrap.config import load_config
    from stylewrap.datagen.pipeline import DatagenJob, run_datagen, summary_table

    flag_overrides = [f"{FLAG_KEYS[name]}={value}" for name, value in flags.items() if value is not None]
    config = load_config(config_path, [*flag_overrides, *overrides])
    job = DatagenJob(stages=stages, topics_file=topics_file, input_file=input_file, show_progress=not quiet,
                     register_llamafactory=register)
    manifest = run_datagen(config, job)
    Console(stderr=quiet).print(summary_table(manifest))
    if not manifest["complete"]:
        raise click.exceptions.Exit(1)


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


register_option = click.option("--register", type=click.Path(file_okay=False, path_type=Path), metavar="DATASET_DIR",
                               help="Also register the training file in this LLaMA-Factory dataset_info.json folder.")


@stage_command(("topics", "dialogues", "stylize", "build"), TEACHER_OPTIONS, COUNT_OPTIONS, OUTPUT_OPTIONS, [register_option])
def run() -> None:
    """All stages: topics, dialogues, stylize, build."""


@stage_command(("topics",), TEACHER_OPTIONS, COUNT_OPTIONS[:1] + COUNT_OPTIONS[3:], OUTPUT_OPTIONS)
def topics() -> None:
    """Generate the topics (or take them from --topics-file)."""


@stage_command(("dialogues",), TEACHER_OPTIONS, COUNT_OPTIONS[1:], OUTPUT_OPTIONS)
def dialogues() -> None:
    """Generate distinct plain dialogues per topic (topics from --topics-file or the output folder)."""


@stage_command(("stylize",), TEACHER_OPTIONS, OUTPUT_OPTIONS,
               [click.option("-i", "--input", "input_file", type=click.Path(dir_okay=False, path_type=Path),
                             help="Dataset of plain answers, any format (default: the output folder's dialogues).")])
def stylize() -> None:
    """Rewrite the answers of a dataset in the style; questions stay unchanged."""


@stage_command(("build",), OUTPUT_OPTIONS, [register_option])
def build() -> None:
    """Write the training file from the stylized dialogues."""
