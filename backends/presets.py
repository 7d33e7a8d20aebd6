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


def load_train_config(config_path: Path | None, overrides: Iterable[str] = (), preset: str | None = None,
                      backend: str | None = None) -> StylewrapConfig:
    overrides = list(overrides)
    if not preset:
        return load_config(config_path, overrides)
    if backend is None:
        backend = load_config(config_path, [*preset_overrides(preset), *overrides]).train.backend
    return load_config(config_path, [*preset_overrides(preset, backend), *overrides])
