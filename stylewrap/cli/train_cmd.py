"""`stylewrap render` and `stylewrap train`."""

from __future__ import annotations

from pathlib import Path

import click

from stylewrap.backends.deepspeed import DEEPSPEED_PRESETS
from stylewrap.cli.options import backend_option, config_option, dry_run_option, echo_next, set_option
from stylewrap.config import PREFERENCE_METHODS

DEEPSPEED_HELP = f"A DeepSpeed preset ({', '.join(DEEPSPEED_PRESETS)}) or a DeepSpeed JSON file."


def training_options(func):
    for option in reversed([
        config_option,
        set_option,
        backend_option("Which backend trains [default: train.backend].", default=None),
        click.option("--preset", default=None, help="A built-in run (seed-translational, seed-classical) or a preset YAML."),
        click.option("--nproc-per-node", type=click.IntRange(min=1), default=None, help="Processes (GPUs) per node."),
        click.option("--nnodes", type=click.IntRange(min=1), default=None, help="Number of nodes."),
        click.option("--node-rank", type=click.IntRange(min=0), default=0, show_default=True, help="This node's rank."),
        click.option("--master-addr", default=None, help="Address of the rank-0 node."),
        click.option("--master-port", type=click.IntRange(1, 65535), default=None, help="Port of the rank-0 node."),
        click.option("--deepspeed", default=None, help=DEEPSPEED_HELP),
        click.option("--method", type=click.Choice(["sft", *PREFERENCE_METHODS]), default=None,
                     help="sft, or preference tuning on data.pairs_file: dpo, orpo, kto (pairs split into "
                          "desirable/undesirable rows) or simpo [default: train.preference.method, else sft]."),
        click.option("--from-run", type=click.Path(exists=True, file_okay=False), default=None,
                     help="Start from this SFT run's adapter (or full weights); DPO/KTO use it as the reference."),
    ]):
        func = option(func)
    return func


@click.command()
@training_options
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write the configs into (a run directory layout).")
def render(out_dir, **request) -> None:
    """Write the backend configs a training run would use."""
    from stylewrap.backends.train import TrainRequest, render_request

    plan = render_request(TrainRequest(**request), out_dir)
    for notice in plan.notices:
        click.echo(f"notice: {notice}", err=True)
    for name in plan.files:
        click.echo(out_dir / name)


def cluster_options(func):
    for option in reversed([
        click.option("--launcher", type=click.Choice(["local", "slurm"]), default=None,
                     help="local: train here; slurm: write config/sbatch.sh in the run folder and submit it with "
                          "sbatch [default: train.launcher, else local]."),
        click.option("--nodes", type=click.IntRange(min=1), default=None, help="Slurm: nodes of the job [slurm.nodes]."),
        click.option("--gpus-per-node", type=click.IntRange(min=0), default=None,
                     help="Slurm: GPUs on each node, one process each; 0 for CPU processes [slurm.gpus_per_node]."),
        click.option("--partition", default=None, help="Slurm: the partition [slurm.partition]."),
        click.option("--time", "time_limit", default=None, help="Slurm: the job's time limit, e.g. 1-00:00:00 [slurm.time]."),
        click.option("--account", default=None, help="Slurm: the account charged [slurm.account]."),
    ]):
        func = option(func)
    return func


@click.command()
@training_options
@cluster_options
@dry_run_option
@click.option("--resume", is_flag=True, help="Continue the latest unfinished run from its newest checkpoint.")
@click.option("--quiet", is_flag=True, help="No progress bar (the full log is in the run's train.log).")
def train(dry_run, resume, quiet, launcher, nodes, gpus_per_node, partition, time_limit, account, **request) -> None:
    """Fine-tune with LLaMA-Factory or ms-swift, here or as a Slurm job."""
    from stylewrap.backends.train import TrainRequest, describe_plan, execute, on_cluster, plan_request
    from stylewrap.backends.trainlog import summary

    request = TrainRequest(**request, launcher=launcher, cluster={
        "nodes": nodes, "gpus_per_node": gpus_per_node, "partition": partition, "time": time_limit, "account": account})
    if on_cluster(request):
        from stylewrap.backends.slurm import describe_job, submit

        job = submit(request, dry_run=dry_run, resume=resume)
        for notice in job.notices:
            click.echo(f"notice: {notice}", err=True)
        click.echo(describe_job(job))
        return
    plan = plan_request(request, resume=resume)
    for notice in plan.notices:
        click.echo(f"notice: {notice}", err=True)
    if dry_run:
        click.echo(describe_plan(plan))
        return
    info = execute(plan, show_progress=not quiet)
    click.echo(summary(info, plan.run_dir))
    if info.status == "succeeded":
        echo_next(f"stylewrap compare {info.run_id} --open   (base vs tuned answers, the loss curve)")
