"""`stylewrap eval`."""

from __future__ import annotations

from pathlib import Path

import click

from stylewrap.cli.options import config_option, dry_run_option, set_option


@click.command(name="eval")
@click.argument("run_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--endpoint", metavar="URL", default=None, help="An OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.")
@click.option("--model", "models", multiple=True, metavar="NAME", help="A model at --endpoint to evaluate (repeatable).")
@click.option("--system", default=None, help="System prompt sent to the --endpoint models (e.g. the style asked for in words).")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True, help="Variable holding the endpoint's API key.")
@click.option("--style", default=None, metavar="PRESET_OR_YAML", help="The style to measure (default: the config's style.preset).")
@click.option("--style-prompt", default=None,
              help="System prompt of the run's base+style variant (default: style.system_prompt, else the preset's).")
@click.option("--probes", default="standard", show_default=True, metavar="NAME_OR_FILE",
              help="Built-in probe set (standard, classical, chatglm, translational) or a .txt/.jsonl file.")
@click.option("--style-data", type=click.Path(exists=True, path_type=Path), default=None,
              help="Plain/styled text for the p_style classifier: a JSONL of {plain, styled} or a datagen folder "
                   "(default: the run's datagen folder, else datagen.output_dir).")
@click.option("--judge-model", default=None, help="Also judge each variant against the reference with this model "
                                                  "(datagen's endpoint and key).")
@click.option("--persona", default=None, help="The name the model should give on identity probes (default: style.persona).")
@click.option("--reference", default=None, help="The variant others are compared with (default: base, else the first).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: RUN_DIR/eval/<time>, else ./eval/<time>).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap, the classifier and the endpoints.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--template", default=None, help="Chat template to prompt the run's variants with (default: the run's).")
@config_option
@set_option
@dry_run_option
def eval_command(run_dir, endpoint, models, system, api_key_env, style, style_prompt, probes, style_data, judge_model,
                 persona, reference, out_dir, seed, max_new_tokens, template, config_path, overrides, dry_run) -> None:
    """Measure a style: a run's tuned model, its base and the base told the style (RUN_DIR), and/or
    models behind an OpenAI-compatible --endpoint; writes eval.json, report.md and report.html."""
    from stylewrap.config import load_config
    from stylewrap.eval.entry import EvalRequest, describe_eval, plan_eval, run_eval
    from stylewrap.eval.report import summary_lines

    request = EvalRequest(run_dir=run_dir, endpoint=endpoint, models=list(models), system=system,
                          api_key_env=api_key_env, style=style, style_system=style_prompt, probes=probes,
                          style_data=style_data, judge_model=judge_model, persona=persona, out_dir=out_dir, seed=seed,
                          max_new_tokens=max_new_tokens, template=template, reference=reference)
    plan = plan_eval(request, load_config(config_path, overrides))
    if dry_run:
        click.echo(describe_eval(plan))
        return
    result = run_eval(plan)
    click.echo("\n".join(summary_lines(result)))
