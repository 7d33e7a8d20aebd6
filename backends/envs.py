"""Each backend's own virtual environment: where it lives, how it is installed, what is wrong with it.

llamafactory and ms-swift pin incompatible transformers/datasets versions, so each gets its own venv
under `envs_dir/<name>` (default ~/.cache/stylewrap/envs; override with STYLEWRAP_ENVS_DIR or
`backends.envs_dir`). A user who already has the program points `backends.<name>.executable` or
`backends.<name>.venv` at it instead.

Managed envs are installed from pinned requirement files shipped in the package
(`templates/envs/<name>.txt`, torch pinned by `constraints-cpu.txt` / `constraints-gpu.txt`) and
carry an `env.json` recording what they were built from.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Callable

from stylewrap.config import StylewrapConfig
from stylewrap.errors import ConfigError, InputError, Location, RunFailed
from stylewrap.fsutil import atomic_write_json
from stylewrap.runner import Invocation, python_of_venv, run

ENVS_DIR_VAR = "STYLEWRAP_ENVS_DIR"
DEFAULT_ENVS_DIR = Path("~/.cache/stylewrap/envs")
ENV_RECORD = "env.json"
# present while `install` is writing the env: a crash leaves it behind and the env counts as absent
INSTALLING_MARKER = ".stylewrap-installing"
PROBE_SCRIPT = Path(__file__).with_name("_env_probe.py")
KEY_PACKAGES = ("torch", "transformers", "datasets", "peft", "accelerate", "trl")


@dataclass(frozen=True)
class BackendSpec:
    """What a backend's environment must provide. The differences between backends are data."""

    name: str
    distribution: str
    cli: str
    cli_check: tuple[str, ...]
    # `module` or `module:attribute`; each must import for the env to be usable
    imports: tuple[str, ...]
    # installed as dependencies but unusable with CPU torch (CUDA-only builds): removed on CPU
    cpu_removals: tuple[str, ...] = ()
    # packages whose native extension is a CUDA build; on CPU the extension files are deleted and the
    # package runs in its supported pure-Python mode (torchaudio: resample and friends still work)
    cpu_strip_native: tuple[str, ...] = ()

    def requirements_file(self) -> Path:
        return shipped_file(f"{self.name}.txt")


BACKENDS: dict[str, BackendSpec] = {
    "llamafactory": BackendSpec(
        name="llamafactory",
        distribution="llamafactory",
        cli="llamafactory-cli",
        cli_check=("version",),
        imports=(
            "torch",
            "transformers:Qwen2ForCausalLM",
            "datasets",
            "peft",
            "torchaudio",
            "llamafactory.data",
        ),
        cpu_removals=("torchvision",),
        cpu_strip_native=("torchaudio",),
    ),
    "swift": BackendSpec(
        name="swift",
        distribution="ms-swift",
        cli="swift",
        cli_check=("sft", "--help"),
        imports=("torch", "transformers:Qwen2ForCausalLM", "datasets", "peft", "swift.dataset", "swift.template"),
    ),
}


# ---------------------------------------------------------------- locations


def envs_dir(config: StylewrapConfig | None = None) -> Path:
    if os.environ.get(ENVS_DIR_VAR):
        return Path(os.environ[ENVS_DIR_VAR]).expanduser()
    if config is not None and config.backends.envs_dir:
        return Path(config.backends.envs_dir).expanduser()
    return DEFAULT_ENVS_DIR.expanduser()


def own_venv(name: str, config: StylewrapConfig | None) -> Path | None:
    """The user's own venv for backend `name` (`backends.<name>.venv`), if configured."""
    if config is None:
        return None
    own = getattr(config.backends, name).venv
    return Path(own).expanduser() if own else None


def env_dir(name: str, config: StylewrapConfig | None = None) -> Path:
    """The venv folder for backend `name`: the user's own venv if configured, else the managed one."""
    return own_venv(name, config) or envs_dir(config) / name


def env_python(name: str, config: StylewrapConfig | None = None) -> Path | None:
    """The python of backend `name`'s environment, or None when it is not (completely) installed."""
    folder = env_dir(name, config)
    python = python_of_venv(folder)
    return python if python.exists() and not (folder / INSTALLING_MARKER).exists() else None


def backend_executable(name: str, config: StylewrapConfig | None = None) -> Path | None:
    """The backend's CLI: `backends.<name>.executable` if set, else the one in its environment."""
    spec = get_spec(name)
    configured = getattr(config.backends, name).executable if config is not None else None
    if configured:
        found = shutil.which(os.path.expanduser(configured))
        return Path(found) if found else None
    if env_python(name, config) is None:
        return None
    executable = python_of_venv(env_dir(name, config)).parent / spec.cli
    return executable if executable.exists() else None


def get_spec(name: str) -> BackendSpec:
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}", hint=f"one of: {', '.join(BACKENDS)}")
    return BACKENDS[name]


def env_script_invocation(python: Path, script: Path, *args: str, env: dict[str, str] | None = None) -> Invocation:
    """Run a stylewrap helper script in a foreign python without putting stylewrap on its path.

    Run as `python script.py`, the script's folder would come first on sys.path, and stylewrap's
    own modules there (`secrets.py`, `swift.py`) would shadow the standard library or the backend.
    `runpy.run_path` runs the file without touching sys.path; `-I` keeps PYTHON* variables and
    the user's site-packages out.
    """
    launcher = "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    return Invocation([str(python), "-I", "-c", launcher, str(script), *args], env=dict(env or {}))


# ---------------------------------------------------------------- pins


def shipped_file(name: str) -> Path:
    return Path(str(resources.files("stylewrap.templates") / "envs" / name))


def constraints_file(gpu: bool) -> Path:
    return shipped_file("constraints-gpu.txt" if gpu else "constraints-cpu.txt")


def requirement_files(spec: BackendSpec, gpu: bool) -> list[Path]:
    """The backend's pins, plus on GPUs the kernels stylewrap's GPU defaults use (Liger)."""
    return [spec.requirements_file(), *([shipped_file("gpu-extras.txt")] if gpu else [])]


def canonical_name(name: str) -> str:
    """PEP 503 normalized distribution name: `Jinja2`, `typing_extensions` -> `jinja2`, `typing-extensions`."""
    return re.sub(r"[-_.]+", "-", name).lower()


PIN_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(===|==)\s*([A-Za-z0-9.+!_-]+)$")


def parse_pins(text: str, source: str | Path) -> dict[str, str]:
    """`name==version` lines of a requirement/constraints file -> {canonical name: version}.

    Comments, blank lines and pip options (`-r`, `--extra-index-url`) are skipped; anything else
    that is not an exact pin is an error with file:line, because these files must be reproducible.
    """
    pins: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#") or line.startswith("-"):
            continue
        match = PIN_LINE.match(line)
        if not match:
            raise ConfigError(
                f"not an exact pin: {line!r}", location=Location(source, number), hint="write name==version"
            )
        name = canonical_name(match.group(1))
        if name in pins:
            raise ConfigError(f"{name} is pinned twice", location=Location(source, number))
        pins[name] = match.group(3)
    return pins


def read_pins(path: Path) -> dict[str, str]:
    return parse_pins(path.read_text(encoding="utf-8"), path)


def pins_for(spec: BackendSpec, gpu: bool) -> dict[str, str]:
    pins = {}
    for path in (*requirement_files(spec, gpu), constraints_file(gpu)):
        pins.update(read_pins(path))
    return pins


def version_matches(installed: str, pinned: str) -> bool:
    """2.13.0+cpu satisfies a 2.13.0 pin (PEP 440 ignores the local label for ==)."""
    return installed == pinned or installed.split("+", 1)[0] == pinned


def requirements_hash(spec: BackendSpec, gpu: bool) -> str:
    digest = hashlib.sha256()
    for path in (*requirement_files(spec, gpu), constraints_file(gpu)):
        digest.update(path.read_bytes())
    digest.update(repr((spec.cpu_removals, spec.cpu_strip_native) if not gpu else ()).encode())
    return digest.hexdigest()


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

    def key_versions(self, spec: BackendSpec) -> dict[str, str]:
        names = (*KEY_PACKAGES, canonical_name(spec.distribution))
        return {name: self.packages[name] for name in names if name in self.packages}


def probe_env(python: Path, targets: tuple[str, ...]) -> Probe:
    """Import `targets` inside the environment of `python` and list its distributions."""
    result = run(
        env_script_invocation(python, PROBE_SCRIPT, *targets, env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}),
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


def python_of_executable(executable: Path) -> Path | None:
    """The interpreter in a console script's `#!` line (how pip-installed CLIs start)."""
    try:
        with open(executable, "rb") as handle:
            first = handle.readline(512).decode("utf-8", "replace").strip()
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    candidate = Path(first[2:].strip().split()[0])
    return candidate if "python" in candidate.name and candidate.exists() else None


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


def read_record(folder: Path) -> dict | None:
    try:
        return json.loads((folder / ENV_RECORD).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def diagnose(
    spec: BackendSpec,
    folder: Path,
    *,
    pins: dict[str, str] | None,
    expected_hash: str | None,
    executable: Path | None,
    reinstall: str,
) -> EnvReport:
    """Check one environment for real: its python runs, imports work, versions match `pins`
    (None: not compared, a user's own env), `env.json` matches `expected_hash`, the CLI answers.
    `reinstall` is the fix for an env that must be rebuilt."""
    report = EnvReport(spec.name, folder, executable=executable)
    rebuild = f"{reinstall} --force" if pins is not None else reinstall
    python = python_of_venv(folder)
    if not python.exists():
        report.problems.append(Problem(f"no environment at {folder}", reinstall))
        return report
    if (folder / INSTALLING_MARKER).exists():
        report.problems.append(Problem(f"{folder} is a half-finished install", rebuild))
        return report
    try:
        probe = probe_env(python, spec.imports)
    except RunFailed as exc:
        report.problems.append(Problem(f"its python does not run: {exc.message}", rebuild))
        return report
    report.python = probe.python
    report.versions = probe.key_versions(spec)
    pip = python.parent / "pip"
    trapped = [pkg for pkg in spec.cpu_removals if pkg in probe.packages and not probe.torch_cuda_build]
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
    if pins is not None:
        wrong = [
            f"{name} {probe.packages.get(name, 'missing')} (pinned {version})"
            for name, version in sorted(pins.items())
            if name not in spec.cpu_removals and not version_matches(probe.packages.get(name, ""), version)
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
        report.problems.append(Problem(f"no {spec.cli} in {folder}", rebuild))
    else:
        answered, last = check_cli(executable, spec.cli_check)
        if not answered:
            report.problems.append(Problem(f"`{executable.name} {' '.join(spec.cli_check)}` fails: {last}", rebuild))
    return report


def doctor(name: str, config: StylewrapConfig | None = None) -> EnvReport:
    """Everything that is wrong with backend `name`'s environment (the user's own or the managed one)."""
    spec = get_spec(name)
    configured_executable = getattr(config.backends, name).executable if config is not None else None
    if configured_executable:
        executable = backend_executable(name, config)
        if executable is None:
            report = EnvReport(name, None)
            report.problems.append(
                Problem(f"backends.{name}.executable {configured_executable!r} not found", "fix the path in stylewrap.yaml")
            )
            return report
        python = python_of_executable(executable)
        folder = python.parent.parent if python is not None else executable.parent.parent
        repair = f"repair {folder}, or remove backends.{name}.executable from stylewrap.yaml to use the managed env"
        return diagnose(spec, folder, pins=None, expected_hash=None, executable=executable, reinstall=repair)
    folder = env_dir(name, config)
    own = own_venv(name, config) is not None
    record = read_record(folder)
    gpu = bool(record and record.get("gpu"))
    executable = python_of_venv(folder).parent / spec.cli
    return diagnose(
        spec,
        folder,
        pins=None if own else pins_for(spec, gpu),
        expected_hash=None if own else requirements_hash(spec, gpu),
        executable=executable if executable.exists() else None,
        reinstall=(
            f"repair {folder}, or remove backends.{name}.venv from stylewrap.yaml to use the managed env"
            if own
            else f"stylewrap backend install {name}"
        ),
    )


def doctor_all(names: list[str], config: StylewrapConfig | None = None) -> list[EnvReport]:
    """`doctor` for several backends at once (each spends most of its time importing torch)."""
    with ThreadPoolExecutor(max_workers=len(names) or 1) as pool:
        return list(pool.map(lambda name: doctor(name, config), names))


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
    for name, spec in BACKENDS.items():
        folder = env_dir(name, config)
        record = read_record(folder) or {}
        executable = backend_executable(name, config)
        if getattr(config.backends, name).executable if config is not None else None:
            status = "own executable" if executable else "missing"
        elif (folder / INSTALLING_MARKER).exists():
            status = "incomplete"
        elif not python_of_venv(folder).exists():
            status = "missing"
        elif own_venv(name, config) is not None:
            status = "own venv"
        elif not record:
            status = "unmanaged"
        elif record.get("requirements_hash") != requirements_hash(spec, bool(record.get("gpu"))):
            status = "outdated"
        else:
            status = "installed"
        summaries.append(EnvSummary(name, folder, status, executable, record.get("versions", {})))
    return summaries


# ---------------------------------------------------------------- install


@dataclass
class InstallResult:
    name: str
    location: Path
    installed: bool  # False: it already matched the pins and was left alone
    versions: dict[str, str]


def is_up_to_date(spec: BackendSpec, folder: Path, gpu: bool) -> bool:
    record = read_record(folder)
    return (
        record is not None
        and not (folder / INSTALLING_MARKER).exists()
        and python_of_venv(folder).exists()
        and record.get("requirements_hash") == requirements_hash(spec, gpu)
    )


def install(
    name: str,
    *,
    gpu: bool = False,
    python: str | Path | None = None,
    force: bool = False,
    torch_index_url: str | None = None,
    config: StylewrapConfig | None = None,
    on_step: Callable[[str], None] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> InstallResult:
    """Create backend `name`'s managed venv from the shipped pins, then prove it works.

    A venv cannot be renamed (its scripts name their python by absolute path), so it is built in
    place with a marker file that makes it count as absent until it has passed its checks; an
    existing env is moved aside first and put back if the new one fails.
    """
    spec = get_spec(name)
    if own_venv(name, config) is not None or (config is not None and getattr(config.backends, name).executable):
        raise InputError(
            f"backends.{name} points at your own installation; stylewrap installs only managed envs",
            hint=f"remove backends.{name}.venv/.executable from stylewrap.yaml to use one",
        )
    folder = envs_dir(config) / name
    if not force and is_up_to_date(spec, folder, gpu):
        return InstallResult(name, folder, installed=False, versions=(read_record(folder) or {}).get("versions", {}))
    base_python = Path(python) if python else Path(sys.executable)
    aside = folder.with_name(f"{name}.previous")
    if aside.exists():
        shutil.rmtree(aside)
    if folder.exists() or folder.is_symlink():
        folder.rename(aside)
    try:
        versions = _build(spec, folder, base_python, gpu, torch_index_url, Progress(on_step, on_line))
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
class Progress:
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
    spec: BackendSpec,
    folder: Path,
    base_python: Path,
    gpu: bool,
    torch_index_url: str | None,
    progress: Progress,
) -> dict[str, str]:
    folder.parent.mkdir(parents=True, exist_ok=True)
    progress.run([str(base_python), "-m", "venv", str(folder)], f"creating {folder}")
    (folder / INSTALLING_MARKER).write_text("installing\n", encoding="utf-8")
    python = python_of_venv(folder)
    pip_argv = [str(python), "-m", "pip", "install", "--no-input", "--progress-bar", "off", "--disable-pip-version-check"]
    for requirements in requirement_files(spec, gpu):
        pip_argv += ["-r", str(requirements)]
    pip_argv += ["-c", str(constraints_file(gpu))]
    if torch_index_url:
        pip_argv += ["--extra-index-url", torch_index_url]
    progress.run(pip_argv, f"installing {spec.distribution} and its pinned dependencies")
    if not gpu:
        if spec.cpu_removals:
            progress.run(
                [str(python), "-m", "pip", "uninstall", "-y", *spec.cpu_removals],
                f"removing CUDA-only {', '.join(spec.cpu_removals)}",
            )
        for package in spec.cpu_strip_native:
            progress.step(f"using {package} without its CUDA-only native extension")
            strip_native_extension(python, package)
    progress.step("checking imports and the CLI")
    probe = probe_env(python, spec.imports)
    if probe.import_errors:
        target, error = next(iter(probe.import_errors.items()))
        raise RunFailed(f"the new {spec.name} env cannot import {target}: {error}")
    answered, last = check_cli(python.parent / spec.cli, spec.cli_check)
    if not answered:
        raise RunFailed(f"the new {spec.name} env's `{spec.cli} {' '.join(spec.cli_check)}` fails: {last}")
    versions = probe.key_versions(spec)
    atomic_write_json(
        folder / ENV_RECORD,
        {
            "name": spec.name,
            "gpu": gpu,
            "python": probe.python,
            "requirements": spec.requirements_file().name,
            "constraints": constraints_file(gpu).name,
            "requirements_hash": requirements_hash(spec, gpu),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": versions,
        },
    )
    (folder / INSTALLING_MARKER).unlink()
    return versions


def strip_native_extension(python: Path, package: str) -> list[Path]:
    """Delete `package`'s compiled libraries (its `lib/*.so`) in the env of `python`."""
    removed = []
    for lib_dir in python.parent.parent.glob(f"lib/python3*/site-packages/{package}/lib"):
        for library in lib_dir.glob("*.so"):
            library.unlink()
            removed.append(library)
    return removed

