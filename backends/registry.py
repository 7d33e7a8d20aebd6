"""The one registry of backends everything reads: CLI choices, `backends.<name>` config sections,
environments, dataset registration, deploy.

Built-ins are registered exactly as a third-party package registers its own: an entry point in
the `stylewrap.backends` group naming a `TableBackend` subclass (see pyproject.toml and
ARCHITECTURE.md, "Add a backend"). `register_backend` adds one at run time. Listing names reads
only installed package metadata; a backend's module is imported when it is first used, so
`stylewrap --help` and config loading never import one.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import metadata
from typing import TYPE_CHECKING, Callable

from stylewrap.errors import InputError, Location

if TYPE_CHECKING:
    from stylewrap.backends.base import TableBackend

ENTRY_POINT_GROUP = "stylewrap.backends"

_RUNTIME: dict[str, Callable[..., TableBackend]] = {}


def register_backend(name: str, factory: Callable[..., TableBackend]) -> None:
    _RUNTIME[name] = factory


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def backend_names() -> list[str]:
    """Every registered backend, sorted."""
    return sorted({*_entry_points(), *_RUNTIME})


def backend_class(name: str) -> Callable[..., TableBackend]:
    """The class (or factory) of backend `name`, imported now; a one-line error for an unknown name."""
    if name in _RUNTIME:
        return _RUNTIME[name]
    if name not in _entry_points():
        raise InputError(f"unknown backend {name!r}", location=Location(field="train.backend"),
                         hint=f"one of {', '.join(backend_names()) or '(none registered)'}")
    return _entry_points()[name].load()
