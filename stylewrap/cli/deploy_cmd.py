from __future__ import annotations

from pathlib import Path

import click

from stylewrap.cli.options import backend_option, checkpoint_option, config_option, dry_run_option, echo_next, set_option

port_option = click.option("--port", type=click.IntRange(1, 65535), default=None, help="Which server [default: the only one].")


@click.group(invoke_without_command=True)
@backend_option("Serving backend [default: the run's].", default=None)
@click.option("--run", "run", metavar="RUN", help="A training run: its id (`stylewrap runs list`), a unique prefix, latest, or its folder.")
@click.option("--model", default=None, help="Base or merged model: a folder or hub id.")
@click.option("--adapter", type=click.Path(file_okay=False, exists=True, path_type=Path), help="LoRA adapter folder for --model.")
@click.option("--host", default=None, help="Address to bind [127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port to bind [8000].")
@click.option("--served-model-name", default=None, help="Name of the tuned model in the API [default: default-lora].")
@click.option("--base-served-name", default=None,
              help="Name of the base model in the API, where it is served beside the adapter "
                   "[default: its folder or hub id's last part, lowercased: qwen2-7b-instruct].")
@checkpoint_option
@click.option("--api-key-env", default=None, metavar="VAR", help="Require the key held in this env var (401 without it).")
@click.option("--template", default=None, help="Chat template name [default: the run's].")
@click.option("--engine", type=click.Choice(["transformers", "vllm", "sglang", "lmdeploy"]), default=None,
              help="Inference engine of the backend's server [default: transformers]; refused where the backend has none.")
@click.option("--allow-template-mismatch", is_flag=True,
              help="Serve even when the server's chat template differs from the training template.")
@click.option("--detach", is_flag=True, help="Return once the server answers; it keeps running.")
@config_option
@set_option
@dry_run_option
@click.pass_context
def deploy(ctx, backend, run, model, adapter, host, port, served_model_name, base_served_name, checkpoint, api_key_env, template, engine,
           allow_template_mismatch, detach,
           config_path, overrides, dry_run) -> None:
    """Serve a model behind an OpenAI-compatible API.

    `stylewrap deploy --run RUN` serves the tuned model (and, with ms-swift, the base beside it)
    through the backend's own server; `status`, `logs` and `stop` manage it afterwards.
    """
    if ctx.invoked_subcommand is not None:
        return
    from stylewrap.serve import deploy as deploy_lib
    from stylewrap.config import load_config

    from stylewrap.backends.runs import find_run

    config = load_config(config_path, overrides)
    request = deploy_lib.DeployRequest(
        # with --model too the library refuses the pair, whatever RUN names
        run_dir=(Path(run) if model else find_run(config, run, field="--run")) if run else None, model=model, adapter=adapter, backend=backend, host=host, port=port,
        served_model_name=served_model_name, base_served_name=base_served_name, checkpoint=checkpoint,
        api_key_env=api_key_env, template=template,
        allow_template_mismatch=allow_template_mismatch, engine=engine,
    )
    if dry_run:
        click.echo(deploy_lib.plan(request, config).describe())
        return
    if detach:
        record = deploy_lib.start(request, config)
        _print_ready(record)
        click.echo(f"stop it with: stylewrap deploy stop --port {record.port}")
        echo_next(f"stylewrap chat --base-url {record.base_url}", f"stylewrap app --base-url {record.base_url}   (the web page)")
        return
    try:
        deploy_lib.serve(request, config, on_ready=_print_ready, on_line=click.echo)
    except KeyboardInterrupt:
        click.echo("server stopped")


def _print_ready(record) -> None:
    click.echo(f"serving on {record.base_url} (PID {record.pid}, {record.backend})")
    click.echo(f"models: {', '.join(record.models)}")
    click.echo(f"log: {record.log_file}")


@deploy.command()
def status() -> None:
    """List stylewrap servers and whether each answers."""
    from stylewrap.serve import deploy as deploy_lib

    rows = deploy_lib.status()
    if not rows:
        click.echo("no stylewrap server recorded")
    for row in rows:
        state = "answering" if row.answers else ("running, not answering" if row.running else "stopped")
        click.echo(f"{row.record.base_url}  PID {row.record.pid}  {row.record.backend}  {state}  {row.detail}")


@deploy.command()
@port_option
def stop(port) -> None:
    """Stop a server: its whole process tree, by PID."""
    from stylewrap.serve import deploy as deploy_lib

    record = deploy_lib.stop(port)
    click.echo(f"stopped PID {record.pid} ({record.base_url})")


@deploy.command()
@port_option
@click.option("-n", "--lines", type=int, default=50, show_default=True, help="How many lines.")
def logs(port, lines) -> None:
    """Print the last lines of a server's log."""
    from stylewrap.serve import deploy as deploy_lib

    record, text = deploy_lib.logs(port, lines)
    click.echo(f"== {record.log_file}", err=True)
    for line in text:
        click.echo(line)
