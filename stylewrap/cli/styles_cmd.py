from __future__ import annotations

import click


@click.group()
def styles() -> None:
    """List and show styles (templates/styles/*.yaml, or your own YAML of the same shape)."""


@styles.command("list")
def list_styles() -> None:
    """Built-in styles: name, title, description."""
    from stylewrap.datagen.styles import style_summaries

    for name, title, description in style_summaries():
        click.echo(f"{name:<16} {title}  {description}")


@styles.command()
@click.argument("name")
@click.option("--prompts", is_flag=True, help="Also print the rendered stylize prompt and its few-shot messages.")
def show(name: str, prompts: bool) -> None:
    """Show style NAME (a built-in name or a YAML path), validated."""
    from stylewrap.datagen.styles import describe_style

    click.echo(describe_style(name, with_prompts=prompts), nl=False)
