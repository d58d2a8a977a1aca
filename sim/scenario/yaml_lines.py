"""Read YAML while remembering the line of every key, so errors can name ``file:line``."""

from __future__ import annotations

import yaml


class ScenarioYamlLoader(yaml.SafeLoader):
    """Safe YAML without implicit timestamps: dates stay text, so the schema checks them with file:line
    (PyYAML would raise a bare ValueError, without a line, for a date like 2026-02-30)."""


ScenarioYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class YamlSyntaxError(ValueError):
    def __init__(self, line: int, message: str):
        self.line = line
        super().__init__(message)


def load_with_lines(text: str) -> tuple[object, dict[tuple, int], list[tuple[tuple, int]]]:
    """Parse YAML text; return (data, {path: 1-based line}, [(path, line) of duplicate keys]).

    Paths are tuples of mapping keys (strings) and list indices (ints), the shape pydantic uses.
    """
    try:
        node = yaml.compose(text, Loader=ScenarioYamlLoader)
        data = yaml.load(text, Loader=ScenarioYamlLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlSyntaxError(line, f"YAML syntax: {exc.problem or exc}") from None
    lines: dict[tuple, int] = {}
    duplicates: list[tuple[tuple, int]] = []
    if node is not None:
        _walk(node, (), lines, duplicates)
    return data, lines, duplicates


def _walk(node, path, lines, duplicates) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, value_node in node.value:
            key = key_node.value
            child = path + (key,)
            if key in seen:
                duplicates.append((child, key_node.start_mark.line + 1))
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            _walk(value_node, child, lines, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, path + (index,), lines, duplicates)
