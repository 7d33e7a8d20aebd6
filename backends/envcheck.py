"""`stylewrap backend doctor` and `backend list`: what is wrong with each backend's environment.

`doctor` checks for real (its python runs, the backend's imports work, versions match the pins,
the CLI answers); `list` reads files only. What each backend needs is its unit's `EnvSpec`.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from stylewrap.backends.envs import (
    ENV_RECORD,
    INSTALLING_MARKER,
    backend_executable,
    canonical_name,
    configured_executable,
    env_dir,
    own_venv,
    pins_for,
    python_of_executable,
    read_record,
    requirements_hash,
    version_matches,
)
from stylewrap.backends.registry import backend_class, backend_names
from stylewrap.config import StylewrapConfig
from stylewrap.errors import RunFailed
from stylewrap.runner import Invocation, python_of_venv, run, script_invocation

if TYPE_CHECKING:
    from stylewrap.backends.base import TableBackend

    Backend = type[TableBackend]

PROBE_SCRIPT = Path(__file__).with_name("_env_probe.py")
KEY_PACKAGES = ("torch", "transformers", "datasets", "peft", "accelerate", "trl")


# ---------------------------------------------------------------- probing


@dataclass
class Probe:
    """What `_env_probe.py` saw inside an environment."""

    python: str
    packages: dict[str, str]
    imports: dict[str, str | None]
    torch_cuda_build: bool

    @property
    def import_errors(self) -> dict[str, str]:
        return {target: error for target, error in self.imports.items() if error}

    def key_versions(self, backend: Backend) -> dict[str, str]:
        names = (*KEY_PACKAGES, canonical_name(backend.distribution))
        return {name: self.packages[name] for name in names if name in self.packages}


def probe_env(python: Path, targets: tuple[str, ...]) -> Probe:
    """Import `targets` inside the environment of `python` and list its distributions."""
    result = run(
        script_invocation(python, PROBE_SCRIPT, *targets, env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}),
        tail_lines=400,
    )
    for line in reversed(result.tail):
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                break
            return Probe(data["python"], data["packages"], data["imports"], data["torch_cuda_build"])
    raise RunFailed(f"{python} could not report on its environment: {' | '.join(result.tail[-3:]) or 'no output'}")


def check_cli(executable: Path, args: tuple[str, ...]) -> tuple[bool, str]:
    """Run the backend's CLI once; (answered, last output line)."""
    result = run(Invocation([str(executable), *args], env={"HF_HUB_OFFLINE": "1"}), tail_lines=20)
    last = next((line for line in reversed(result.tail) if line.strip()), "")
    return result.ok, last.strip()


# ---------------------------------------------------------------- doctor


@dataclass
class Problem:
    what: str
    fix: str


@dataclass
class EnvReport:
    """`doctor`'s verdict on one backend environment."""

    name: str
    location: Path | None
    executable: Path | None = None
    python: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    record: dict | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def diagnose(
    backend: Backend,
    folder: Path,
    *,
    pins: dict[str, str] | None,
    expected_hash: str | None,
    executable: Path | None,
    reinstall: str,
    on_check: Callable[[str], None] = lambda what: None,
) -> EnvReport:
    """Check one environment for real: its python runs, imports work, versions match `pins`
    (None: not compared, a user's own env), `env.json` matches `expected_hash`, the CLI answers.
    `reinstall` is the fix for an env that must be rebuilt; `on_check(what)` is told each check
    as it starts (the imports and the CLI take seconds each)."""
    report = EnvReport(backend.name, folder, executable=executable)
    rebuild = f"{reinstall} --force" if pins is not None else reinstall
    python = python_of_venv(folder)
    if not python.exists():
        report.problems.append(Problem(f"no environment at {folder}", reinstall))
        return report
    if (folder / INSTALLING_MARKER).exists():
        report.problems.append(Problem(f"{folder} is a half-finished install", rebuild))
        return report
    on_check(f"importing {', '.join(target.split(':')[0] for target in backend.env.imports)}")
    try:
        probe = probe_env(python, backend.env.imports)
    except RunFailed as exc:
        report.problems.append(Problem(f"its python does not run: {exc.message}", rebuild))
        return report
    report.python = probe.python
    report.versions = probe.key_versions(backend)
    pip = python.parent / "pip"
    trapped = [pkg for pkg in backend.env.cpu_removals if pkg in probe.packages and not probe.torch_cuda_build]
    for pkg in trapped:
        report.problems.append(
            Problem(
                f"{pkg} {probe.packages[pkg]} is a CUDA build next to CPU torch; transformers then fails to import",
                f"{pip} uninstall -y {pkg}",
            )
        )
    for target, error in probe.import_errors.items():
        if any(pkg in error for pkg in trapped):
            continue  # the trap above already names the cause and the fix
        report.problems.append(Problem(f"import {target} fails: {error}", rebuild))
    on_check("comparing versions with the pins")
    if pins is not None:
        wrong = [
            f"{name} {probe.packages.get(name, 'missing')} (pinned {version})"
            for name, version in sorted(pins.items())
            if name not in backend.env.cpu_removals and not version_matches(probe.packages.get(name, ""), version)
        ]
        if wrong:
            shown = ", ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
            report.problems.append(Problem(f"versions differ from the pins: {shown}", rebuild))
    if expected_hash is not None:
        report.record = read_record(folder)
        if report.record is None:
            report.problems.append(Problem(f"no {ENV_RECORD}: not installed by stylewrap", rebuild))
        elif report.record.get("requirements_hash") != expected_hash:
            report.problems.append(Problem("installed from other pins than this stylewrap ships", rebuild))
    if executable is None:
        report.problems.append(Problem(f"no {backend.program} in {folder}", rebuild))
    else:
        on_check(f"running `{executable.name} {' '.join(backend.env.cli_check)}`")
        answered, last = check_cli(executable, backend.env.cli_check)
        if not answered:
            report.problems.append(Problem(f"`{executable.name} {' '.join(backend.env.cli_check)}` fails: {last}", rebuild))
    return report


def doctor(name: str, config: StylewrapConfig | None = None, on_check: Callable[[str], None] = lambda what: None) -> EnvReport:
    """Everything that is wrong with backend `name`'s environment (the user's own or the managed one)."""
    backend = backend_class(name)
    configured = configured_executable(name, config)
    if configured:
        executable = backend_executable(name, config)
        if executable is None:
            report = EnvReport(name, None)
            report.problems.append(
                Problem(f"backends.{name}.executable {configured!r} not found", "fix the path in stylewrap.yaml")
            )
            return report
        python = python_of_executable(executable)
        folder = python.parent.parent if python is not None else executable.parent.parent
        repair = f"repair {folder}, or remove backends.{name}.executable from stylewrap.yaml to use the managed env"
        return diagnose(backend, folder, pins=None, expected_hash=None, executable=executable, reinstall=repair,
                        on_check=on_check)
    folder = env_dir(name, config)
    own = own_venv(name, config) is not None
    record = read_record(folder)
    gpu = bool(record and record.get("gpu"))
    executable = python_of_venv(folder).parent / backend.program
    return diagnose(
        backend,
        folder,
        pins=None if own else pins_for(backend, gpu),
        expected_hash=None if own else requirements_hash(backend, gpu),
        executable=executable if executable.exists() else None,
        reinstall=(
            f"repair {folder}, or remove backends.{name}.venv from stylewrap.yaml to use the managed env"
            if own
            else f"stylewrap backend install {name}"
        ),
        on_check=on_check,
    )


def doctor_all(names: list[str], config: StylewrapConfig | None = None,
               on_check: Callable[[str, str], None] = lambda name, what: None) -> list[EnvReport]:
    """`doctor` for several backends at once (each spends most of its time importing torch);
    `on_check(name, what)` hears each check start."""
    with ThreadPoolExecutor(max_workers=len(names) or 1) as pool:
        return list(pool.map(lambda name: doctor(name, config, lambda what: on_check(name, what)), names))


# ---------------------------------------------------------------- list


@dataclass
class EnvSummary:
    name: str
    location: Path
    # installed | missing | incomplete | outdated | unmanaged (no env.json) | own venv | own executable
    status: str
    executable: Path | None
    versions: dict[str, str]


def list_envs(config: StylewrapConfig | None = None) -> list[EnvSummary]:
    """One line per backend, from files only (fast; `doctor` runs the real checks)."""
    summaries = []
    for name in backend_names():
        backend = backend_class(name)
        folder = env_dir(name, config)
        record = read_record(folder) or {}
        executable = backend_executable(name, config)
        if configured_executable(name, config):
            status = "own executable" if executable else "missing"
        elif (folder / INSTALLING_MARKER).exists():
            status = "incomplete"
        elif not python_of_venv(folder).exists():
            status = "missing"
        elif own_venv(name, config) is not None:
            status = "own venv"
        elif not record:
            status = "unmanaged"
        elif record.get("requirements_hash") != requirements_hash(backend, bool(record.get("gpu"))):
            status = "outdated"
        else:
            status = "installed"
        summaries.append(EnvSummary(name, folder, status, executable, record.get("versions", {})))
    return summaries


