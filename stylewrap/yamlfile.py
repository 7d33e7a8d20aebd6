"""YAML files as stylewrap reads them (stylewrap.yaml, training presets, styles): safe, with the
line of every key for file:line errors, duplicate keys refused, and bounded in depth and in what
aliases expand to."""

from __future__ import annotations

from typing import Any

import yaml

from stylewrap.errors import ConfigError, Location


# Bounds on what a YAML file may expand to: a config has ~150 values and nests 4 levels. Aliases
# make a document of 1 kB stand for 10^9 values ("billion laughs"), deep nesting exhausts the stack.
MAX_YAML_DEPTH = 64
MAX_YAML_NODES = 100_000


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every mapping key, rejects duplicate keys, and refuses
    documents nested deeper than MAX_YAML_DEPTH or expanding (aliases followed) past MAX_YAML_NODES."""

    depth = 0

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise ConfigError(f"nested deeper than {MAX_YAML_DEPTH} levels",
                                  location=Location(getattr(self, "name", None), mark.line + 1))
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _check_expansion(node: yaml.Node, name: str) -> None:
    """Count the values `node` stands for with every alias expanded, in time linear in the document."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(item: yaml.Node) -> int:
        key = id(item)
        if key in sizes:
            return sizes[key]
        if key in in_progress:
            raise ConfigError("an alias refers to a value that contains it", location=Location(name, item.start_mark.line + 1))
        in_progress.add(key)
        children = item.value if isinstance(item, yaml.SequenceNode) else (
            [part for pair in item.value for part in pair] if isinstance(item, yaml.MappingNode) else [])
        total = 1 + sum(size(child) for child in children)
        in_progress.discard(key)
        if total > MAX_YAML_NODES:
            raise ConfigError(f"expands to more than {MAX_YAML_NODES} values through its aliases (&anchor / *alias)",
                              location=Location(name, item.start_mark.line + 1), hint="write the values out instead of aliasing them")
        sizes[key] = total
        return total

    size(node)


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    mapping: dict = {}
    lines: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise ConfigError(
                f"duplicate key {key!r}",
                location=Location(getattr(loader, "name", None), key_node.start_mark.line + 1, str(key)),
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
        lines[key] = key_node.start_mark.line + 1
    loader.key_lines[id(mapping)] = lines
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml_mapping(text: str, name: str) -> dict:
    """A YAML mapping, bounded like stylewrap.yaml (depth, alias expansion), errors as file:line."""
    return load_yaml_with_lines(text, name)[0]


def load_yaml_with_lines(text: str, name: str) -> tuple[dict, dict[tuple, int]]:
    """The mapping in `text`, and the line of every key path in it: {("train", "model"): 12, ...}."""
    loader = _LineLoader(text)
    loader.name = name
    loader.key_lines = {}
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node, name)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(
            f"not valid YAML: {exc.problem}",
            location=Location(name, mark.line + 1 if mark else None),
        ) from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("top level must be a mapping of sections", location=Location(name, 1))
    flat: dict[tuple, int] = {}

    def walk(obj: Any, prefix: tuple) -> None:
        if isinstance(obj, dict):
            for key, line in loader.key_lines.get(id(obj), {}).items():
                flat[prefix + (key,)] = line
                walk(obj[key], prefix + (key,))

    walk(data, ())
    return data, flat
