"""`stylewrap train --launcher slurm`: the run folder as for a local run, plus `config/sbatch.sh`
(one srun task per node, each starting the backend's own launcher, which starts torchrun from the
backend env with NNODES / NODE_RANK / MASTER_ADDR / MASTER_PORT / NPROC_PER_NODE), submitted with
`sbatch`. stylewrap does not wait for the job: Ctrl-C never reaches it, `stylewrap runs cancel`
(scancel) does. `stylewrap runs show` asks squeue, then sacct, for the job's state, and once the job
has ended writes the run's outcome (weights, progress, loss curve) as a local run does.

The run folder, the backend env and the model must be at the same paths on every node (a shared
file system); docs/cluster.md walks through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from stylewrap.backends.base import OUTPUT_DIR, Launch, get_backend
from stylewrap.backends.render import render
from stylewrap.backends.train import (COMMAND_FILE, CONFIG_DIR, DATA_DIR, LOG_FILE, TrainPlan, TrainRequest, plan_training,
                                      prepare_run, record_outcome, shell_exports)
from stylewrap.backends.trainlog import ProgressFeed
from stylewrap.config import SlurmConfig
from stylewrap.errors import InputError, Location, RunFailed
from stylewrap.fsutil import atomic_write_text
from stylewrap.rundir import RunInfo
from stylewrap.runner import query

SBATCH_FILE = f"{CONFIG_DIR}/sbatch.sh"
# set per node by the script, from the job (the rendered config keeps the plan's numbers)
LAUNCH_VARIABLES = ("NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "NPROC_PER_NODE")
# the scheduler gives each node its GPUs; a value chosen on the login node would point at the wrong ones
SCHEDULER_OWNED = ("CUDA_VISIBLE_DEVICES",)
# squeue / sacct states after which the job will not run again
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
         "DEADLINE", "REVOKED"}
WAITING = {"PENDING", "CONFIGURING", "REQUEUED", "RESIZING", "SUSPENDED"}


@dataclass
class Job:
    """A submitted (or, with --dry-run, only written) Slurm job of one run folder."""

    run_dir: Path
    script: Path
    job_id: str | None
    notices: list[str] = field(default_factory=list)


def cluster_launch(slurm: SlurmConfig, nproc_per_node: int) -> Launch:
    """The plan's processes: one per GPU asked for on each node, else `nproc_per_node` CPU processes."""
    return Launch(nproc_per_node=slurm.gpus_per_node or nproc_per_node, nnodes=slurm.nodes, node_rank=0,
                  master_addr="$MASTER_ADDR" if slurm.nodes > 1 else None, master_port=slurm.master_port)


def plan_job(request: TrainRequest) -> TrainPlan:
    """The training plan for the nodes of the job, not for this (login) machine."""
    config, options = request.resolve()
    slurm = config.slurm
    if slurm.gpus_per_node and config.train.auto and config.train.gpu_memory_gib is None:
        raise InputError("the batch size is planned from GPU memory, and this machine's GPUs are not the nodes'",
                         location=Location(field="train.gpu_memory_gib"),
                         hint="set train.gpu_memory_gib to the nodes' free GPU memory (e.g. 80), or train.auto: false")
    if not slurm.gpus_per_node and config.train.gpu_memory_gib is None:
        config = config.model_copy(update={"train": config.train.model_copy(update={"gpu_memory_gib": 0})})
    launch = cluster_launch(slurm, options["launch"].nproc_per_node)
    return plan_training(config, **{**options, "launch": launch})


def sbatch_script(plan: TrainPlan) -> str:
    slurm = plan.config.slurm
    env = {key: value for key, value in shell_exports(plan.invocation).items()
           if key not in LAUNCH_VARIABLES and key not in SCHEDULER_OWNED
           and not (key == "ACCELERATE_USE_CPU" and slurm.gpus_per_node)}
    program = Path(plan.invocation.argv[0])
    files = [name for name in plan.files if name != COMMAND_FILE] + [f"{DATA_DIR}/"]
    return render("sbatch.sh.j2", backend=plan.backend.name, script=SBATCH_FILE, files=files,
                  job_name=f"stylewrap-{plan.run_dir.name}", nodes=slurm.nodes, processes=plan.launch.nproc_per_node,
                  gpus_per_node=slurm.gpus_per_node, cpus_per_task=slurm.cpus_per_task, partition=slurm.partition,
                  time=slurm.time, account=slurm.account, sbatch_args=slurm.sbatch_args,
                  log=str((plan.run_dir / LOG_FILE).resolve()), run_dir=str(plan.run_dir.resolve()), env=env,
                  master_port=slurm.master_port, program=program.name, env_bin=str(program.parent),
                  argv=plan.invocation.argv)


def submit(request: TrainRequest, *, dry_run: bool = False, resume: bool = False) -> Job:
    """Write the run folder and its sbatch script; submit it unless `dry_run`."""
    if resume:
        raise InputError("--resume is for local runs, not --launcher slurm", location=Location(field="--resume"))
    plan = plan_job(request)
    info = prepare_run(plan, status="created" if dry_run else "submitting")
    script = plan.run_dir / SBATCH_FILE
    atomic_write_text(script, sbatch_script(plan))
    script.chmod(0o755)
    info.config_files = [*info.config_files, SBATCH_FILE]
    info.command = f"cd {plan.run_dir.resolve()} && sbatch {SBATCH_FILE}"
    info.extra["slurm"] = {"script": SBATCH_FILE, "job_id": None, "state": None, **plan.config.slurm.model_dump()}
    info.save(plan.run_dir)
    job = Job(run_dir=plan.run_dir, script=script, job_id=None, notices=plan.notices)
    if dry_run:
        return job
    done = query(["sbatch", "--parsable", SBATCH_FILE], cwd=plan.run_dir)
    if done.returncode != 0:
        info.status, info.extra["slurm"]["state"] = "failed", "NOT SUBMITTED"
        info.save(plan.run_dir)
        raise RunFailed(f"sbatch refused the job: {done.stderr.strip() or done.stdout.strip()}",
                        hint=f"fix it and submit by hand: cd {plan.run_dir} && sbatch {SBATCH_FILE}")
    job.job_id = done.stdout.strip().split(";")[0]   # --parsable: "<id>[;<cluster>]"
    info.status, info.extra["slurm"]["job_id"], info.extra["slurm"]["state"] = "submitted", job.job_id, "PENDING"
    info.save(plan.run_dir)
    return job


def describe_job(job: Job) -> str:
    lines = [f"run: {job.run_dir}", f"sbatch script: {job.script}"]
    if job.job_id is None:
        lines += ["not submitted (--dry-run); submit it with:", f"  cd {job.run_dir} && sbatch {SBATCH_FILE}",
                  "", f"--- {SBATCH_FILE}", job.script.read_text(encoding="utf-8").rstrip()]
    else:
        lines += [f"submitted: Slurm job {job.job_id} (it runs on without this terminal; Ctrl-C does not stop it)",
                  f"log: {job.run_dir / LOG_FILE}",
                  f"next: stylewrap runs show {job.run_dir.name}   (the job's state)",
                  f"  or: stylewrap runs cancel {job.run_dir.name}"]
    return "\n".join(lines)


# ---------------------------------------------------------------- a submitted job, later


def job_state(job_id: str) -> str | None:
    """The job's state from squeue (while the controller remembers it), else sacct; None when
    neither knows it (no accounting on this cluster and the job long gone)."""
    listed = query(["squeue", "--noheader", "--states=all", "--jobs", job_id, "--format=%T"])
    states = listed.stdout.split() if listed.returncode == 0 else []
    if states:
        return states[0]
    accounted = query(["sacct", "--noheader", "--parsable2", "--allocations", "--jobs", job_id, "--format=State"])
    states = accounted.stdout.split() if accounted.returncode == 0 else []
    return states[0] if states else None   # "CANCELLED by 0" -> "CANCELLED"


def refresh(run_dir: Path) -> RunInfo:
    """run.json brought up to the job's state; once the job has ended, its outcome recorded."""
    info = RunInfo.load(run_dir)
    slurm = info.extra.get("slurm")
    if not slurm or not slurm.get("job_id") or info.status not in ("submitted", "running"):
        return info
    state = job_state(slurm["job_id"])
    if state is None:
        return info
    slurm["state"] = state
    if state in ENDED:
        backend = get_backend(info.backend)
        feed = ProgressFeed(backend, Path(run_dir) / OUTPUT_DIR / backend.log_file)
        feed.poll()
        record_outcome(backend, Path(run_dir), info, feed, state == "COMPLETED")
        if state == "CANCELLED":
            info.status = "cancelled"
            info.save(run_dir)
        return info
    info.status = "submitted" if state in WAITING else "running"
    info.save(run_dir)
    return info


def cancel(run_dir: Path) -> RunInfo:
    """`stylewrap runs cancel`: scancel the run's job."""
    info = RunInfo.load(run_dir)
    job_id = (info.extra.get("slurm") or {}).get("job_id")
    if not job_id:
        raise InputError("not a submitted Slurm run: a local run stops with Ctrl-C in its terminal",
                         location=Location(run_dir))
    if info.status not in ("submitted", "running"):
        raise InputError(f"job {job_id} is over ({info.status})", location=Location(run_dir))
    done = query(["scancel", job_id])
    if done.returncode != 0:
        raise RunFailed(f"scancel {job_id} failed: {done.stderr.strip()}")
    info.extra["slurm"]["state"] = "CANCELLED"
    info.status = "cancelled"
    info.save(run_dir)
    return info


def slurm_line(info: RunInfo) -> str | None:
    """What `runs show` says about the run's job."""
    slurm = info.extra.get("slurm")
    if not slurm:
        return None
    if not slurm.get("job_id"):
        return f"not submitted: sbatch {slurm['script']}"
    shape = f"{slurm['nodes']} node(s)" + (f" x {slurm['gpus_per_node']} GPU(s)" if slurm.get("gpus_per_node") else "")
    return f"job {slurm['job_id']}: {slurm.get('state') or 'unknown'} ({shape}, {slurm['script']})"

