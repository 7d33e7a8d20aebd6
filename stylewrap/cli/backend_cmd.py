from __future__ import annotations

import click

from stylewrap.backends.registry import backend_names
from stylewrap.backends.flags import TRACKERS
from stylewrap.cli.options import config_option, echo_next, json_option, set_option


def versions_text(versions: dict[str, str]) -> str:
    return ", ".join(f"{package} {version}" for package, version in versions.items()) or "-"


@click.group()
def backend() -> None:
    """Install and check the backends' own environments."""


@backend.command()
@click.argument("name", type=click.Choice(backend_names()))
@click.option("--gpu", is_flag=True, help="Install the CUDA build of torch instead of the CPU one.")
@click.option("--python", "python", type=click.Path(dir_okay=False), default=None,
              help="Interpreter to create the venv with [default: the one running stylewrap].")
@click.option("--force", is_flag=True, help="Rebuild even when the env already matches the pins.")
@click.option("--deepspeed", is_flag=True, help="Add DeepSpeed (ZeRO for multi-GPU runs; train.deepspeed).")
@click.option("--webui", is_flag=True, help="Add Gradio for the backend's own training UI (`stylewrap webui`).")
@click.option("--with", "trackers", multiple=True, type=click.Choice([t for t in TRACKERS if t != "none"]),
              help="Add an experiment tracker for train.report_to (repeatable); swanlab runs in local mode.")
@click.option("--torch-index-url", default=None, metavar="URL",
              help="Extra index for torch, e.g. https://download.pytorch.org/whl/cpu on plain PyPI.")
@config_option
@set_option
def install(name, gpu, python, force, deepspeed, webui, trackers, torch_index_url, config_path, overrides) -> None:
    """Create NAME's managed venv from the pinned requirements shipped with stylewrap."""
    from rich.console import Console

    from stylewrap.backends.envinstall import install as install_env
    from stylewrap.config import load_config

    config = load_config(config_path, overrides)
    console = Console(stderr=True)
    with console.status(f"installing {name}") as status:
        result = install_env(
            name,
            gpu=gpu,
            python=python,
            force=force,
            torch_index_url=torch_index_url,
            extras=[extra for extra, wanted in (("deepspeed", deepspeed), ("webui", webui)) if wanted] + list(trackers),
            config=config,
            on_step=lambda step: console.print(f"{name}: {step}", highlight=False),
            on_line=lambda line: status.update(f"[bold]{name}[/]: {line[:120]}"),
        )
    verb = "installed" if result.installed else "already up to date"
    click.echo(f"{name}: {verb} at {result.location} ({versions_text(result.versions)})")


@backend.command(name="list")
@json_option
@config_option
@set_option
def list_(as_json, config_path, overrides) -> None:
    """Each backend's environment, status, executable and key versions."""
    from stylewrap.backends.envcheck import list_envs
    from stylewrap.config import load_config

    summaries = list_envs(load_config(config_path, overrides))
    if as_json:
        import json

        click.echo(json.dumps([{"name": s.name, "status": s.status, "location": str(s.location),
                                "executable": str(s.executable) if s.executable else None, "versions": s.versions}
                               for s in summaries], indent=2))
        return
    for summary in summaries:
        click.echo(f"{summary.name:<13} {summary.status:<15} {summary.location}")
        click.echo(f"{'':<13} executable: {summary.executable or '-'}")
        click.echo(f"{'':<13} versions:   {versions_text(summary.versions)}")


@backend.command()
@click.argument("names", nargs=-1, type=click.Choice(backend_names()))
@config_option
@set_option
def doctor(names, config_path, overrides) -> None:
    """Check each environment for real; print what is wrong and the fix. Exit 1 on any problem."""
    from rich.console import Console

    from stylewrap.backends.envcheck import doctor_all
    from stylewrap.config import load_config

    # each check on its own line as it starts (importing torch takes seconds), on stderr
    console = Console(stderr=True, highlight=False)
    names = list(names or backend_names())
    with console.status(f"checking {', '.join(names)}"):
        reports = doctor_all(names, load_config(config_path, overrides),
                             on_check=lambda name, what: console.print(f"{name}: {what} …"))
    for report in reports:
        click.echo(f"{report.name}: {'ok' if report.ok else 'PROBLEMS'}  ({report.location or '-'})")
        click.echo(f"  python {report.python or '-'}; {versions_text(report.versions)}")
        click.echo(f"  executable: {report.executable or '-'}")
        for problem in report.problems:
            click.echo(f"  x {problem.what}")
            click.echo(f"    fix: {problem.fix}")
    if not all(report.ok for report in reports):
        raise SystemExit(1)
    echo_next(f"stylewrap train --backend {names[0]}" if len(names) == 1 else "stylewrap train")
