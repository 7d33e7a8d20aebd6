"""Training presets (`--preset NAME`): built-in runs in `templates/presets/*.yaml` (or a YAML path),
each a `config:` of stylewrap.yaml sections applied above the user's file and below their --set.
(Styles, the chat style datagen teaches, are another thing: `datagen/styles.py`.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from stylewrap.config import StylewrapConfig, load_config
from stylewrap.yamlfile import read_yaml_mapping
from stylewrap.errors import ConfigError, InputError, Location


def preset_path(name: str) -> Path:
    from importlib import resources

    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    builtin = resources.files("stylewrap.templates") / "presets" / f"{name}.yaml"
    if not builtin.is_file():
        raise InputError(f"unknown preset {name!r}", hint=f"built-in presets: {', '.join(list_presets())}")
    return Path(str(builtin))


def list_presets() -> list[str]:
    from importlib import resources

    folder = resources.files("stylewrap.templates") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> dict[str, Any]:
    path = preset_path(name)
    data = read_yaml_mapping(path.read_text(encoding="utf-8"), str(path))
    if not isinstance(data.get("config"), dict):
        raise ConfigError("a preset needs a `config:` mapping of stylewrap.yaml sections", location=Location(path))
    return data


def _as_overrides(sections: dict[str, Any]) -> list[str]:
    """Nested preset values as dotted `--set` overrides, so a preset's `extra_args.x` adds to the
    user's extra_args instead of replacing them."""
    out = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, child in value.items():
                walk(f"{prefix}.{key}", child)
        else:
            out.append(f"{prefix}={json.dumps(value, ensure_ascii=False)}")

    for section, values in sections.items():
        walk(section, values)
    return out


def preset_overrides(name: str, backend: str | None = None) -> list[str]:
    """A preset's config as `--set` overrides: above stylewrap.yaml, below the user's own --set.

    A preset may tune each backend differently (`backends: {swift: {...}}`): the two batch and pack
    differently, so that block goes on top of the shared `config` for the backend being used."""
    preset = load_preset(name)
    overrides = _as_overrides(preset["config"])
    block = (preset.get("backends") or {}).get(backend) if backend else None
    return overrides + _as_overrides(block or {})


# the sections whose values decide what a run trains (the rest: where files go, how to serve, ...)
RUN_SECTIONS = ("style", "data", "train")


def values_from_elsewhere(name: str, config_path: Path | None, overrides: Iterable[str] = (),
                          environ: dict[str, str] | None = None) -> list[str]:
    """Every value of a run a preset does not pin, that the project's stylewrap.yaml, the
    environment or --set gives instead, with where it came from: "train.lora_rank=64
    (stylewrap.yaml:12)". A preset reproducing a seed's run says so rather than silently mixing."""
    import os

    from stylewrap.config import ENV_PREFIX, find_config, parse_override
    from stylewrap.yamlfile import load_yaml_with_lines

    preset = load_preset(name)
    pinned = {tuple(item.split("=", 1)[0].split(".")) for item in _as_overrides(preset["config"])}
    for block in (preset.get("backends") or {}).values():
        pinned |= {tuple(item.split("=", 1)[0].split(".")) for item in _as_overrides(block or {})}
    found: dict[tuple, str] = {}
    path = Path(config_path) if config_path else find_config()
    if path is not None and path.is_file():
        data, lines = load_yaml_with_lines(path.read_text(encoding="utf-8"), str(path))
        for section in RUN_SECTIONS:
            for key, value in (data.get(section) or {}).items():
                found[(section, key)] = f"{json.dumps(value, ensure_ascii=False)} ({path.name}:{lines.get((section, key), '?')})"
    for variable, raw in (os.environ if environ is None else environ).items():
        parts = tuple(p.lower() for p in variable[len(ENV_PREFIX):].split("__")) if variable.startswith(ENV_PREFIX) else ()
        if len(parts) == 2 and parts[0] in RUN_SECTIONS:
            found[parts] = f"{raw} (${variable})"
    for item in overrides:
        parts, value = parse_override(item)
        if parts and parts[0] in RUN_SECTIONS:
            found[tuple(parts[:2])] = f"{json.dumps(value, ensure_ascii=False)} (--set)"
    return [f"{'.'.join(key)}={where}" for key, where in found.items()
            if key not in pinned and not any(key[: len(p)] == p for p in pinned)]


def load_train_config(config_path: Path | None, overrides: Iterable[str] = (), preset: str | None = None,
                      backend: str | None = None) -> StylewrapConfig:
    overrides = list(overrides)
    if not preset:
        return load_config(config_path, overrides)
    if backend is None:
        backend = load_config(config_path, [*preset_overrides(preset), *overrides]).train.backend
    return load_config(config_path, [*preset_overrides(preset, backend), *overrides])
