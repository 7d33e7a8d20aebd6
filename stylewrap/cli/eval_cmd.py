"""`stylewrap eval`."""

from __future__ import annotations

from pathlib import Path

import click

from stylewrap.cli.options import (checkpoint_option, config_option, dry_run_option, echo_next, open_in_browser, open_option,
                                   set_option)


@click.command(name="eval")
@click.argument("run", required=False, metavar="[RUN]")
@click.option("--endpoint", metavar="URL", default=None, help="An OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.")
@click.option("--model", "models", multiple=True, metavar="NAME", help="A model at --endpoint to evaluate (repeatable).")
@click.option("--system", default=None, help="System prompt sent to the --endpoint models (e.g. the style asked for in words).")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True, help="Variable holding the endpoint's API key.")
@click.option("--style", default=None, metavar="PRESET_OR_YAML", help="The style to measure [default: the config's style.preset].")
@click.option("--style-prompt", default=None,
              help="System prompt of the run's base+style variant [default: style.system_prompt, else the preset's].")
@click.option("--probes", default=None, metavar="NAME_OR_FILE",
              help="Built-in probe set (standard, classical, chatglm, english, translational) or a .txt/.jsonl file "
                   "[default: the style's own set: its `probes:`, e.g. translational for the translational style].")
@click.option("--style-data", type=click.Path(exists=True, path_type=Path), default=None,
              help="Plain/styled text for the p_style classifier: a JSONL of {plain, styled} or a datagen folder "
                   "[default: the run's datagen folder, else datagen.output_dir].")
@click.option("--judge-model", default=None, help="Also judge each variant against the reference with this model "
                                                  "(datagen's endpoint and key).")
@click.option("--persona", default=None, help="The name the model should give on identity probes [default: style.persona].")
@click.option("--reference", default=None, help="The variant others are compared with [default: base, else the first].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder [default: the run's eval/<time>, else ./eval/<time>].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap, the classifier and the endpoints.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--template", default=None, help="Chat template to prompt the run's variants with [default: the run's].")
@checkpoint_option
@open_option
@config_option
@set_option
@dry_run_option
def eval_command(run, endpoint, models, system, api_key_env, style, style_prompt, probes, style_data, judge_model,
                 persona, reference, out_dir, seed, max_new_tokens, template, checkpoint, open_page, config_path, overrides,
                 dry_run) -> None:
    """Measure a style: a run's tuned model, its base and the base told the style (RUN), and/or
    models behind an OpenAI-compatible --endpoint; writes eval.json, report.md and report.html."""
    from stylewrap.backends.runs import find_run
    from stylewrap.config import load_config
    from stylewrap.eval.entry import EvalRequest, plan_eval

    config = load_config(config_path, overrides)
    request = EvalRequest(run_dir=find_run(config, run) if run else None, endpoint=endpoint, models=list(models), system=system,
                          api_key_env=api_key_env, style=style, style_system=style_prompt, probes=probes,
                          style_data=style_data, judge_model=judge_model, persona=persona, out_dir=out_dir, seed=seed,
                          max_new_tokens=max_new_tokens, template=template, reference=reference, checkpoint=checkpoint)
    plan = plan_eval(request, config)
    run_and_show(plan, dry_run=dry_run, open_page=open_page)


def run_and_show(plan, *, dry_run: bool, open_page: bool) -> None:
    """What `eval` and `compare` (its view) both do with a plan: describe it, or run it and print the
    summary, open the page, name the next command."""
    from stylewrap.eval.entry import describe_eval, run_eval
    from stylewrap.eval.report import summary_lines

    if dry_run:
        click.echo(describe_eval(plan))
        return
    result = run_eval(plan)
    click.echo("\n".join(summary_lines(result)))
    if open_page:
        open_in_browser(result.html)
    if plan.run:
        echo_next(f"stylewrap deploy --run {plan.run.run_dir.name} --detach", f"stylewrap export {plan.run.run_dir.name}")
