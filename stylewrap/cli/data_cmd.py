"""`stylewrap data ...`: validate, convert, inspect and register datasets (logic in stylewrap.adapters)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from stylewrap.adapters import FORMATS
from stylewrap.cli.options import backend_option, echo_next, open_in_browser, open_option, shell_words

# the registry is plain Python (no heavy imports), so the choices are the registered formats
FORMAT_NAMES = sorted(FORMATS)

input_file = click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
format_option = click.option("--format", "fmt", type=click.Choice(FORMAT_NAMES), default=None, help="Input format [default: detected from the rows].")
to_option = click.option("--to", type=click.Choice(FORMAT_NAMES), default=None, help="Output format [default: the input's].")
output_option = click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
                             help="Output file: .json writes one JSON array, anything else JSON Lines.")
seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
tag_option = click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE",
                          help="sharegpt input role tag, e.g. --tag user_tag=user --tag assistant_tag=bot (repeatable).")


def train_on(path: Path, key: str = "data.train_file", *more: str) -> str:
    """The command that trains on a data file."""
    return shell_words("stylewrap", "train", *more, "--set", f"{key}={path}")


def look_at(path: Path) -> str:
    return shell_words("stylewrap", "data", "stats", path, "--html", "stats.html", "--open")


def _tags(tags: tuple[str, ...]) -> dict[str, str]:
    pairs = [tag.split("=", 1) for tag in tags]
    bad = [tag for tag, pair in zip(tags, pairs) if len(pair) != 2]
    if bad:
        raise click.BadParameter(f"expected KEY=VALUE, got {bad[0]!r}", param_hint="--tag")
    return dict(pairs)


@click.group()
def data() -> None:
    """Validate, convert, inspect and register datasets.

    Formats: alpaca, sharegpt, messages (OpenAI), swift (conversations of user/assistant) and qa
    (the seed pipeline's {"问", "答"} rows); preference rows: pairs, ranking (LLaMA-Factory),
    messages_pairs (ms-swift) and messages_kto. JSON arrays and JSON Lines, read as a stream.
    """


@data.command()
@input_file
@format_option
@click.option("--drop-invalid", is_flag=True, help="Write the good rows and a rejects file instead of failing.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Good rows [default: NAME.valid.EXT].")
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Rejected rows [default: NAME.rejects.jsonl].")
@tag_option
@click.pass_context
def validate(ctx, path, fmt, drop_invalid, output, rejects, tags) -> None:
    """Check every row; print each problem as file:line: field and exit 2 if there are any."""
    from stylewrap.adapters.validate import validate as validate_file

    report = validate_file(path, fmt, drop_invalid=drop_invalid, output=output, rejects=rejects, **_tags(tags))
    from stylewrap.errors import printable

    for problem in report.problems:
        click.echo(printable(str(problem)), err=True)
    if report.problem_count > len(report.problems):
        click.echo(f"... and {report.problem_count - len(report.problems)} more", err=True)
    for kind, count in report.kinds.most_common():
        click.echo(printable(f"  {count:>8}  {kind}"), err=True)
    click.echo(report.summary())
    if not report.ok and not drop_invalid:
        echo_next(shell_words("stylewrap", "data", "validate", path, "--drop-invalid")
                  + "   (keeps the good rows, the others go to a rejects file)")
        ctx.exit(2)
    good = report.good_path or path
    echo_next(train_on(good), look_at(good))


@data.command()
@input_file
@click.option("--to", type=click.Choice(FORMAT_NAMES), required=True, help="Output format.")
@output_option
@format_option
@tag_option
def convert(path, to, output, fmt, tags) -> None:
    """Rewrite PATH in another format (stops at the first bad row, writing nothing)."""
    from stylewrap.adapters.ops import convert as convert_file

    count = convert_file(path, output, to, fmt, **_tags(tags))
    click.echo(f"wrote {count} rows ({to}) to {output}")
    echo_next(train_on(output), look_at(output))


@data.command()
@input_file
@format_option
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write an HTML report with the length histogram.")
@open_option
@click.option("--tokenizer", type=click.Path(exists=True, path_type=Path), default=None,
              help="tokenizer.json (or a model folder) to count tokens per role; needs the `tokenizers` package.")
def stats(path, fmt, as_json, html_path, open_page, tokenizer) -> None:
    """Rows, turns, characters (and tokens) per role, duplicates and a length histogram."""
    from stylewrap.dataops import dataset_report, report_text

    numbers = dataset_report(path, fmt, tokenizer=tokenizer, html_path=html_path)
    click.echo(json.dumps(numbers, ensure_ascii=False, indent=2) if as_json else report_text(numbers))
    if html_path and not as_json:
        click.echo(f"wrote {html_path}")
    if html_path and open_page:
        open_in_browser(html_path)
    if as_json:
        return   # the output is for a script: JSON alone
    if numbers["duplicates"]["exact"]:
        echo_next(shell_words("stylewrap", "data", "dedup", path, "-o", path.with_name(f"{path.stem}.dedup.jsonl"))
                  + "   (drops the repeated rows)", train_on(path))
    else:
        echo_next(train_on(path))


@data.command()
@input_file
@output_option
@format_option
@to_option
@click.option("--normalized", is_flag=True, help="Compare text after NFKC, case folding, dropping spaces and punctuation.")
@click.option("--on", "on", type=click.Choice(["conversation", "prompt"]), default="conversation", show_default=True,
              help="What must be equal: the whole conversation or only the user turns.")
def dedup(path, output, fmt, to, normalized, on) -> None:
    """Drop repeated rows, keeping the first of each."""
    from stylewrap.adapters.ops import dedup as dedup_file

    result = dedup_file(path, output, fmt, to=to, normalized=normalized, prompt_only=on == "prompt")
    click.echo(f"kept {result.kept} of {result.rows} rows ({result.dropped} duplicates) in {output}")
    echo_next(train_on(output))


@data.command()
@click.option("--chosen", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="Rows with the preferred answers (e.g. the styled ones), any format.")
@click.option("--rejected", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="Rows with the answers to prefer less (e.g. the plain ones), any format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("pairs.jsonl"),
              show_default=True, help="The pairs file.")
@click.option("--to", type=click.Choice(["pairs", "ranking", "messages_pairs"]), default="pairs", show_default=True,
              help="pairs (stylewrap's, both backends read it), ranking (LLaMA-Factory), messages_pairs (ms-swift).")
def pairs(chosen, rejected, output, to) -> None:
    """Preference pairs from two files answering the same questions, matched by question.

    Rows without a partner and pairs whose answers read the same are counted and listed, never
    silently dropped.
    """
    from stylewrap.adapters.pairing import build_pairs

    report = build_pairs(chosen, rejected, output, to=to)
    for line in report.lines():
        click.echo(line)
    echo_next(train_on(output, "data.pairs_file", "--method", "dpo", "--from-run", "RUN")
              + "   (RUN: the SFT run to start from, `stylewrap runs list`)")


@data.command()
@input_file
@click.option("--train", "train_path", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Training rows file.")
@click.option("--val", "val_path", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Validation rows file.")
@click.option("--val-size", type=float, default=0.1, show_default=True, help="Fraction (<1) or number of rows for validation.")
@seed_option
@format_option
@to_option
def split(path, train_path, val_path, val_size, seed, fmt, to) -> None:
    """Seeded train/val split."""
    from stylewrap.adapters.ops import split as split_file

    train_count, val_count = split_file(path, train_path, val_path, val_size=val_size, seed=seed, fmt=fmt, to=to)
    click.echo(f"wrote {train_count} rows to {train_path} and {val_count} rows to {val_path}")
    echo_next(shell_words("stylewrap", "train", "--set", f"data.train_file={train_path}", "--set", f"data.val_file={val_path}"))


@data.command()
@input_file
@output_option
@click.option("-n", "count", type=int, required=True, help="Rows to draw.")
@seed_option
@format_option
@to_option
def sample(path, output, count, seed, fmt, to) -> None:
    """Draw N rows uniformly at random (seeded), kept in file order."""
    from stylewrap.adapters.ops import sample as sample_file

    written = sample_file(path, output, count, seed=seed, fmt=fmt, to=to)
    click.echo(f"wrote {written} rows to {output}")
    echo_next(look_at(output), train_on(output))


@data.command()
@input_file
@backend_option("Which backend's registration to write.", required=True)
@click.option("--dataset-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="llamafactory: the folder of dataset_info.json; swift: the folder of custom_dataset_info.json.")
@click.option("--name", required=True, help="Dataset name to register.")
@format_option
@click.option("--force", is_flag=True, help="Replace an existing entry of that name with a different definition.")
def register(path, backend, dataset_dir, name, fmt, force) -> None:
    """Register PATH with a backend (merged into its registry file, atomically)."""
    from stylewrap.dataops import register_dataset

    registration = register_dataset(backend, dataset_dir, name, path, fmt, force=force)
    click.echo(f"registered {name} in {registration.info} (the backend's own CLI: {registration.how_to_train})")
    echo_next(train_on(path))


@data.command()
def formats() -> None:
    """List the dataset formats stylewrap reads and writes."""
    for name, fmt in FORMATS.items():
        click.echo(f"{name:<10} {fmt.description}")
    echo_next("stylewrap data validate FILE   (the format is detected; --format NAME to insist)")
