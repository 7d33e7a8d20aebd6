"""A real single-host Slurm for tests: Debian's munged, slurmctld and slurmd on localhost, every
file (config, key, sockets, state, logs) under one temporary folder, the daemons in the foreground
(-D/-F) as children of the test, stopped by PID. Nothing is read from /etc/slurm or /etc/munge."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from ports import free_port

PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sacct", "scancel", "scontrol", "sinfo")
INSTALL_HINT = "apt-get install -y slurm-wlm munge (.ci/run does it where it may)"


def missing_programs() -> list[str]:
    # the daemons live in /usr/sbin, which a non-root PATH may leave out
    return [name for name in PROGRAMS if not (shutil.which(name) or Path("/usr/sbin", name).is_file())]


def program(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


SLURM_CONF = """\
ClusterName=stylewrap-test
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={socket}
SlurmUser={user}
SlurmdUser={user}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
# no cgroups: processes are tracked through /proc, nothing is confined
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
NodeName=localhost CPUs={cpus} RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


class SlurmCluster:
    """Started by `start()`, stopped by `stop()`; `env` is what a client (sbatch, stylewrap) needs."""

    def __init__(self, root: Path, cpus: int = 2):
        self.root = Path(root)
        self.cpus = cpus
        self.processes: list[subprocess.Popen] = []
        self.conf = self.root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self, timeout: float = 60) -> None:
        for folder in ("state", "spool", "log", "munge", "socket"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        (self.root / "munge").chmod(0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        socket_path = self.root / "socket" / "munge.socket"
        self.conf.write_text(SLURM_CONF.format(ctld_port=free_port(), slurmd_port=free_port(), socket=socket_path,
                                               user=getpass.getuser(), root=self.root, cpus=self.cpus))
        self._daemon("munged", "-F", "-f", f"--key-file={key}", f"--socket={socket_path}",
                     f"--pid-file={self.root / 'munge' / 'munged.pid'}", f"--seed-file={self.root / 'munge' / 'seed'}",
                     f"--log-file={self.root / 'log' / 'munged.log'}")
        self._wait(lambda: socket_path.exists(), timeout, "munged never made its socket")
        self._daemon("slurmctld", "-D", "-i")
        self._wait(lambda: self._answers("sinfo"), timeout, "slurmctld never answered sinfo")
        self._daemon("slurmd", "-D", "-N", "localhost")
        self._wait(lambda: self._node_state() in ("idle", "mixed", "allocated"), timeout, "slurmd never came up idle")

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
                         for path in sorted((self.root / "log").glob("*")))

    def _daemon(self, name: str, *args: str) -> None:
        log = open(self.root / "log" / f"{name}.out", "a")
        self.processes.append(subprocess.Popen([program(name), *args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, cwd=self.root))
        log.close()

    def _answers(self, *argv: str) -> bool:
        return subprocess.run([program(argv[0]), *argv[1:]], env=self.env, capture_output=True).returncode == 0

    def _node_state(self) -> str:
        done = subprocess.run([program("sinfo"), "--noheader", "--format=%T"], env=self.env, capture_output=True, text=True)
        return done.stdout.strip()

    def _wait(self, ready, timeout: float, failure: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(proc.poll() is not None for proc in self.processes):
                raise RuntimeError(f"a Slurm daemon exited: {failure}\n{self.logs()}")
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"{failure} in {timeout:g} s\n{self.logs()}")
