"""`stylewrap compare`: the eval report of one run (base, base+style, tuned), under RUN_DIR/compare."""

from __future__ import annotations

from pathlib import Path

import click

from stylewrap.cli.options import config_option, dry_run_option, set_option


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--probes", default="classical", show_default=True,
              help="Built-in probe set (standard, classical, chatglm, translational), a .txt (one question per line) or .jsonl.")
@click.option("--style-prompt", default=None,
              help="System prompt for the base model, asking for the style in words; a built-in name (classical) "
                   "uses the tutorial's prompt. Default: style.system_prompt, else the preset's.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--template", default=None, help="Chat template to prompt both models with (default: the run's).")
@config_option
@set_option
@dry_run_option
def compare(run_dir, probes, style_prompt, max_new_tokens, template, config_path, overrides, dry_run) -> None:
    """Base vs tuned answers side by side (the eval report; its metrics when stylewrap[eval] is installed)."""
    from stylewrap.config import load_config
    from stylewrap.eval.entry import EvalRequest, describe_eval, missing_extra, plan_eval, run_eval
    from stylewrap.eval.report import summary_lines

    request = EvalRequest(run_dir=run_dir, probes=probes, style_system=style_prompt, max_new_tokens=max_new_tokens,
                          template=template, report_kind="compare")
    plan = plan_eval(request, load_config(config_path, overrides), measure=not missing_extra())
    if dry_run:
        click.echo(describe_eval(plan))
        return
    click.echo("\n".join(summary_lines(run_eval(plan))))
