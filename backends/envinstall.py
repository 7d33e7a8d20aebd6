"""`stylewrap backend install`: a backend's managed venv, built from its pins and proven to work."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from stylewrap.backends.envcheck import check_cli, probe_env
from stylewrap.backends.envs import (
    ENV_RECORD,
    INSTALLING_MARKER,
    configured_executable,
    constraints_file,
    extra_files,
    envs_dir,
    own_venv,
    read_record,
    requirement_files,
    requirements_hash,
)
from stylewrap.backends.registry import backend_class
from stylewrap.config import StylewrapConfig
from stylewrap.errors import InputError, RunFailed
from stylewrap.fsutil import atomic_write_json
from stylewrap.runner import Invocation, python_of_venv, run

if TYPE_CHECKING:
    from stylewrap.backends.base import TableBackend

    Backend = type[TableBackend]


# ---------------------------------------------------------------- install


@dataclass
class InstallResult:
    name: str
    location: Path
    installed: bool  # False: it already matched the pins and was left alone
    versions: dict[str, str]


def is_up_to_date(backend: Backend, folder: Path, gpu: bool) -> bool:
    record = read_record(folder)
    return (
        record is not None
        and not (folder / INSTALLING_MARKER).exists()
        and python_of_venv(folder).exists()
        and record.get("requirements_hash") == requirements_hash(backend, gpu)
    )


def install(
    name: str,
    *,
    gpu: bool = False,
    python: str | Path | None = None,
    force: bool = False,
    torch_index_url: str | None = None,
    extras: Iterable[str] = (),
    config: StylewrapConfig | None = None,
    on_step: Callable[[str], None] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> InstallResult:
    """Create backend `name`'s managed venv from the shipped pins, then prove it works.

    A venv cannot be renamed (its scripts name their python by absolute path), so it is built in
    place with a marker file that makes it count as absent until it has passed its checks; an
    existing env is moved aside first and put back if the new one fails.
    """
    backend = backend_class(name)
    if own_venv(name, config) is not None or configured_executable(name, config):
        raise InputError(
            f"backends.{name} points at your own installation; stylewrap installs only managed envs",
            hint=f"remove backends.{name}.venv/.executable from stylewrap.yaml to use one",
        )
    folder = envs_dir(config) / name
    extras = sorted(set(extras))
    steps = InstallSteps(on_step, on_line)
    if not force and is_up_to_date(backend, folder, gpu):
        added = add_extras(backend, folder, extras, steps)
        return InstallResult(name, folder, installed=bool(added), versions=(read_record(folder) or {}).get("versions", {}))
    base_python = Path(python) if python else Path(sys.executable)
    aside = folder.with_name(f"{name}.previous")
    if aside.exists():
        shutil.rmtree(aside)
    if folder.exists() or folder.is_symlink():
        folder.rename(aside)
    try:
        versions = _build(backend, folder, base_python, gpu, torch_index_url, steps)
        add_extras(backend, folder, extras, steps)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        if aside.exists():
            aside.rename(folder)
        raise
    if aside.is_symlink():
        aside.unlink()
    elif aside.exists():
        shutil.rmtree(aside)
    return InstallResult(name, folder, installed=True, versions=versions)


@dataclass
class InstallSteps:
    """Reports each install step and the output of the commands it runs."""

    on_step: Callable[[str], None] | None
    on_line: Callable[[str], None] | None

    def step(self, what: str) -> None:
        if self.on_step:
            self.on_step(what)

    def run(self, argv: list[str], what: str) -> None:
        self.step(what)
        result = run(Invocation(argv), on_line=self.on_line, tail_lines=15)
        if not result.ok:
            raise RunFailed(f"{what} failed: {' | '.join(line for line in result.tail[-4:] if line.strip())}")


def _build(
    backend: Backend,
    folder: Path,
    base_python: Path,
    gpu: bool,
    torch_index_url: str | None,
    progress: InstallSteps,
) -> dict[str, str]:
    folder.parent.mkdir(parents=True, exist_ok=True)
    progress.run([str(base_python), "-m", "venv", str(folder)], f"creating {folder}")
    (folder / INSTALLING_MARKER).write_text("installing\n", encoding="utf-8")
    python = python_of_venv(folder)
    pip_argv = [str(python), "-m", "pip", "install", "--no-input", "--progress-bar", "off", "--disable-pip-version-check"]
    for requirements in requirement_files(backend, gpu):
        pip_argv += ["-r", str(requirements)]
    pip_argv += ["-c", str(constraints_file(gpu))]
    if torch_index_url:
        pip_argv += ["--extra-index-url", torch_index_url]
    progress.run(pip_argv, f"installing {backend.distribution} and its pinned dependencies")
    if not gpu:
        if backend.env.cpu_removals:
            progress.run(
                [str(python), "-m", "pip", "uninstall", "-y", *backend.env.cpu_removals],
                f"removing CUDA-only {', '.join(backend.env.cpu_removals)}",
            )
        for package in backend.env.cpu_strip_native:
            progress.step(f"using {package} without its CUDA-only native extension")
            strip_native_extension(python, package)
    progress.step("checking imports and the CLI")
    probe = probe_env(python, backend.env.imports)
    if probe.import_errors:
        target, error = next(iter(probe.import_errors.items()))
        raise RunFailed(f"the new {backend.name} env cannot import {target}: {error}")
    answered, last = check_cli(python.parent / backend.program, backend.env.cli_check)
    if not answered:
        raise RunFailed(f"the new {backend.name} env's `{backend.program} {' '.join(backend.env.cli_check)}` fails: {last}")
    versions = probe.key_versions(backend)
    atomic_write_json(
        folder / ENV_RECORD,
        {
            "name": backend.name,
            "gpu": gpu,
            "python": probe.python,
            "requirements": backend.env.requirements.name,
            "constraints": constraints_file(gpu).name,
            "requirements_hash": requirements_hash(backend, gpu),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": versions,
        },
    )
    (folder / INSTALLING_MARKER).unlink()
    return versions


def extras_argv(python: Path, extras: Iterable[str], gpu: bool) -> list[str]:
    """pip adding optional parts (`EXTRAS`) to a built env, held to the same constraints."""
    argv = [str(python), "-m", "pip", "install", "--no-input", "--progress-bar", "off", "--disable-pip-version-check"]
    for requirements in extra_files(extras):
        argv += ["-r", str(requirements)]
    return argv + ["-c", str(constraints_file(gpu))]


def add_extras(backend: Backend, folder: Path, extras: list[str], progress: InstallSteps) -> list[str]:
    """Install the extras the env does not have yet (pip adds, the base pins stay); the ones added."""
    record = read_record(folder) or {}
    missing = [extra for extra in extras if extra not in record.get("extras", [])]
    if not missing:
        return []
    python = python_of_venv(folder)
    progress.run(extras_argv(python, missing, bool(record.get("gpu"))), f"adding {', '.join(missing)} to {backend.name}'s env")
    probe = probe_env(python, backend.env.imports)
    if probe.import_errors:
        target, error = next(iter(probe.import_errors.items()))
        raise RunFailed(f"after adding {', '.join(missing)}, {backend.name}'s env cannot import {target}: {error}")
    record["extras"] = sorted({*record.get("extras", []), *missing})
    record["versions"] = probe.key_versions(backend)
    atomic_write_json(folder / ENV_RECORD, record)
    return missing


def strip_native_extension(python: Path, package: str) -> list[Path]:
    """Delete `package`'s compiled libraries (its `lib/*.so`) in the env of `python`."""
    removed = []
    for lib_dir in python.parent.parent.glob(f"lib/python3*/site-packages/{package}/lib"):
        for library in lib_dir.glob("*.so"):
            library.unlink()
            removed.append(library)
    return removed

