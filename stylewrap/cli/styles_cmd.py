from __future__ import annotations

import click


@click.group()
def styles() -> None:
    """List and show style presets (templates/styles/*.yaml, or your own YAML of the same shape)."""


@styles.command("list")
def list_styles() -> None:
    """Built-in presets: name, title, description."""
    from stylewrap.datagen.presets import preset_summaries

    for name, title, description in preset_summaries():
        click.echo(f"{name:<16} {title}  {description}")


@styles.command()
@click.argument("name")
@click.option("--prompts", is_flag=True, help="Also print the rendered stylize prompt and its few-shot messages.")
def show(name: str, prompts: bool) -> None:
    """Show preset NAME (a built-in name or a YAML path), validated."""
    from stylewrap.datagen.presets import describe_preset

    click.echo(describe_preset(name, with_prompts=prompts), nl=False)
