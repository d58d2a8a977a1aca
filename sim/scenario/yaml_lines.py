"""Read YAML while remembering the line of every key, so errors can name ``file:line``.

Hostile input ends in a ``YamlSyntaxError`` with a line, never a traceback or a hang: control characters
are refused before parsing, nesting is at most ``MAX_DEPTH`` levels, an alias may not refer to a node that
contains it, and aliases may add at most ``MAX_ALIAS_NODES`` nodes to the document ("billion laughs").
"""

from __future__ import annotations

import re

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

MAX_DEPTH = 64  # nesting levels of mappings and lists; a scenario needs fewer than 10
MAX_ALIAS_NODES = 100_000  # nodes that aliases may add beyond those written out

# what YAML itself forbids (PyYAML's reader rejects them without a line): C0 controls but tab, line feed
# and carriage return; DEL; C1 controls but NEL; lone surrogates; U+FFFE and U+FFFF
_UNREADABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")


class ScenarioYamlLoader(yaml.SafeLoader):
    """Safe YAML without implicit timestamps: dates stay text, so the schema checks them with file:line
    (PyYAML would raise a bare ValueError, without a line, for a date like 2026-02-30).

    Composing also enforces ``MAX_DEPTH``, refuses recursive aliases and counts the nodes aliases add."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._open_anchors: set[str] = set()
        self._expanded: dict[int, int] = {}  # id(node) -> nodes in it with aliases written out
        self._written = 0  # nodes written out in the text
        self.aliases_used = False

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open_anchors:
                raise ComposerError(None, None, f"alias *{event.anchor} refers to a node that contains it "
                                                "(a recursive alias); accepted: aliases of finished nodes",
                                    event.start_mark)
            self.aliases_used = True
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels; accepted: at most "
                                            f"{MAX_DEPTH}", event.start_mark)
        if event.anchor is not None:
            self._open_anchors.add(event.anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open_anchors.discard(event.anchor)
        self._count(node)
        return node

    def _count(self, node) -> None:
        self._written += 1
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        size = 1 + sum(self._expanded.get(id(child), 1) for child in children)
        self._expanded[id(node)] = size
        if size > self._written + MAX_ALIAS_NODES:
            raise ComposerError(None, None, f"aliases expand this node to {size:.3g} nodes; accepted: aliases "
                                            f"adding at most {MAX_ALIAS_NODES:,} nodes", node.start_mark)

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, OverflowError) as exc:  # e.g. `!!float abc`, `!!bool maybe`
            raise ConstructorError(None, None, f"cannot read {node.tag} value {str(node.value)[:40]!r} ({exc})",
                                   node.start_mark) from None


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

    Paths are tuples of mapping keys (strings) and list indices (ints), the shape pydantic uses. Data
    reached through aliases is copied, so no two places of the result share a mapping or list.
    """
    check_characters(text)
    loader = ScenarioYamlLoader(text)
    lines: dict[tuple, int] = {}
    duplicates: list[tuple[tuple, int]] = []
    try:
        node = loader.get_single_node()
        if node is not None:
            _walk(node, (), lines, duplicates)  # before constructing, which rewrites merge keys in place
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlSyntaxError(line, f"YAML syntax: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(1, f"YAML syntax: {exc}") from None
    finally:
        loader.dispose()
    if loader.aliases_used:
        data = _unshared(data)
    return data, lines, duplicates


def check_characters(text: str) -> None:
    """Refuse characters YAML does not allow (NUL, other control characters), naming their line."""
    match = _UNREADABLE.search(text)
    if match is None:
        return
    line = text.count("\n", 0, match.start()) + 1
    column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
    code = f"U+{ord(match.group()):04X}"
    what = "a NUL character" if match.group() == "\x00" else f"control character {code}"
    hint = " (is the file UTF-16? save it as UTF-8)" if match.group() == "\x00" else ""
    raise YamlSyntaxError(line, f"{what} at column {column}{hint}; accepted: printable UTF-8 text "
                                "(tabs and line breaks are fine)")


def _unshared(value: object) -> object:
    """A copy in which every mapping and list is its own object (aliases share them after loading)."""
    if isinstance(value, dict):
        return {key: _unshared(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unshared(item) for item in value]
    return value


def _walk(node, path, lines, duplicates) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # a mapping or list as a key: the constructor reports it
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
