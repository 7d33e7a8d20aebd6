from __future__ import annotations

import click

from stylewrap.cli.options import echo_next, shell_words


@click.group()
def styles() -> None:
    """List and show styles (templates/styles/*.yaml, or your own YAML of the same shape)."""


@styles.command("list")
def list_styles() -> None:
    """Built-in styles: name, title, description."""
    from stylewrap.datagen.styles import style_summaries

    summaries = style_summaries()
    for name, title, description in summaries:
        click.echo(f"{name:<16} {title}  {description}")
    echo_next(f"stylewrap styles show {summaries[0][0] if summaries else 'NAME'}   (its rules and examples)")


@styles.command()
@click.argument("name")
@click.option("--prompts", is_flag=True, help="Also print the rendered stylize prompt and its few-shot messages.")
def show(name: str, prompts: bool) -> None:
    """Show style NAME (a built-in name or a YAML path), validated."""
    from stylewrap.datagen.styles import describe_style

    click.echo(describe_style(name, with_prompts=prompts), nl=False)
    echo_next(shell_words("stylewrap", "datagen", "run", "--style", name) + "   (a dataset in this style)")
