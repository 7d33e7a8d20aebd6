"""`stylewrap compare`: the eval report of one run (base, base+style, tuned), under RUN_DIR/compare."""

from __future__ import annotations


import click

from stylewrap.cli.options import (checkpoint_option, config_option, dry_run_option, open_option,
                                   set_option)


@click.command()
@click.argument("run", metavar="RUN")
@click.option("--probes", default=None, metavar="NAME_OR_FILE",
              help="Built-in probe set (standard, classical, chatglm, english, translational) or a .txt/.jsonl file "
                   "[default: the style's own set: its `probes:`, e.g. translational for the translational style].")
@click.option("--style-prompt", default=None,
              help="System prompt for the base model, asking for the style in words; a built-in name (classical) "
                   "uses the tutorial's prompt. Default: style.system_prompt, else the preset's.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--template", default=None, help="Chat template to prompt both models with [default: the run's].")
@checkpoint_option
@open_option
@config_option
@set_option
@dry_run_option
def compare(run, probes, style_prompt, max_new_tokens, template, checkpoint, open_page, config_path, overrides, dry_run) -> None:
    """Base vs tuned answers side by side (the eval report; its metrics when stylewrap[eval] is installed)."""
    from stylewrap.backends.runs import find_run
    from stylewrap.config import load_config
    from stylewrap.cli.eval_cmd import run_and_show
    from stylewrap.eval.entry import EvalRequest, missing_extra, plan_eval

    config = load_config(config_path, overrides)
    request = EvalRequest(run_dir=find_run(config, run), probes=probes, style_system=style_prompt, max_new_tokens=max_new_tokens,
                          template=template, report_kind="compare", checkpoint=checkpoint)
    plan = plan_eval(request, config, measure=not missing_extra())
    run_and_show(plan, dry_run=dry_run, open_page=open_page)
