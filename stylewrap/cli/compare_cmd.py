"""`stylewrap compare`."""

from __future__ import annotations

from pathlib import Path

import click

from stylewrap.cli.options import config_option, dry_run_option, set_option


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--probes", default="classical", show_default=True,
              help="Built-in probe set (classical, chatglm, translational), a .txt (one question per line) or .jsonl.")
@click.option("--style-prompt", default=None,
              help="System prompt for the base model, asking for the style in words; a built-in name (classical) "
                   "uses the tutorial's prompt. Default: style.system_prompt.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--template", default=None, help="Chat template to prompt both models with (default: the run's).")
@config_option
@set_option
@dry_run_option
def compare(run_dir, probes, style_prompt, max_new_tokens, template, config_path, overrides, dry_run) -> None:
    """Base vs tuned answers side by side."""
    from rich.console import Console

    from stylewrap.backends.compare import describe_compare, plan_compare, run_compare
    from stylewrap.config import load_config

    config = load_config(config_path, overrides)
    plan = plan_compare(run_dir, config, probes=probes, base_system=style_prompt or config.style.system_prompt,
                        max_new_tokens=max_new_tokens, template=template)
    if dry_run:
        click.echo(describe_compare(plan))
        return
    console = Console(stderr=True)
    markdown, html = run_compare(plan, status_for=lambda variant: console.status(f"{plan.backend.name}: {variant} model answering"))
    click.echo(f"report: {markdown}\nreport: {html}")
