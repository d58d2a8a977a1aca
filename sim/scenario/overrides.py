"""Dotted-path overrides, shared by ``dcsim run --set a.b=1`` and ``Scenario.with_overrides``.

A path is dotted keys with list positions as numbers or ``[n]``; a list of named entries (the fleet)
may also be addressed by name: ``fleet.h100-a.count``, ``fleet[0].count`` and ``fleet.0.count`` are
the same field. Overrides edit the scenario's source data, which is then validated exactly like a file.
"""

from __future__ import annotations

import copy
import re

import yaml

from sim.scenario.errors import shown
from sim.scenario.yaml_lines import ScenarioYamlLoader

_INDEX_RE = re.compile(r"^(.*?)\[(\d+)\]$")


class OverrideError(ValueError):
    pass


def parse_path(dotted: str) -> list[object]:
    """``fleet[0].count`` -> ``['fleet', 0, 'count']``; numeric segments become ints."""
    parts: list[object] = []
    for segment in dotted.split("."):
        indices = []
        match = _INDEX_RE.match(segment)
        while match:
            indices.insert(0, int(match.group(2)))
            segment = match.group(1)
            match = _INDEX_RE.match(segment)
        if segment == "" and not indices:
            raise OverrideError(f"empty segment in path {dotted!r}")
        if segment:
            parts.append(int(segment) if segment.isascii() and segment.isdigit() else segment)
        parts.extend(indices)
    return parts


def parse_assignment(text: str) -> tuple[str, object]:
    """``'site.power_cap_mw=80'`` -> ``('site.power_cap_mw', 80)``; the value is read as YAML."""
    if "=" not in text:
        raise OverrideError(f"--set expects PATH=VALUE, got {text!r}")
    path, raw = text.split("=", 1)
    try:
        value = yaml.load(raw, Loader=ScenarioYamlLoader) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return path.strip(), value


def apply_overrides(data: dict, overrides: dict[str, object], via: str = "override"
                    ) -> tuple[dict, dict[tuple, str]]:
    """Return (a deep copy of ``data`` with overrides applied, {canonical path: the override's text}).

    Missing mappings along a path are created, so validation can report unknown keys by name. ``via``
    starts each override's text in errors: ``override site.pue=9`` (Python) or ``--set site.pue=9`` (CLI).
    """
    result = copy.deepcopy(data) if data is not None else {}
    origins: dict[tuple, str] = {}
    for dotted, value in overrides.items():
        if not isinstance(dotted, str):
            raise OverrideError(f"path must be dotted text like 'site.pue', got {shown(dotted)}")
        parts = parse_path(dotted)
        node = result
        canonical: list[object] = []
        for position, part in enumerate(parts):
            last = position == len(parts) - 1
            key = _resolve(node, part, dotted)
            canonical.append(key)
            if last:
                node[key] = value
            else:
                if isinstance(node, dict) and key not in node:
                    node[key] = {}
                node = node[key]
        origins[tuple(canonical)] = f"{via} {dotted}={shown(value, 60)}"
    return result, origins


def _resolve(node: object, part: object, dotted: str) -> object:
    if isinstance(node, list):
        if isinstance(part, int):
            if not 0 <= part < len(node):
                raise OverrideError(f"{dotted}: index {part} out of range (list has {len(node)} entries)")
            return part
        names = [item.get("name") for item in node if isinstance(item, dict)]
        if part in names:
            return names.index(part)
        raise OverrideError(f"{dotted}: no entry named {part!r}; names: {', '.join(map(str, names))}")
    if isinstance(node, dict):
        return part
    raise OverrideError(f"{dotted}: cannot descend into a {type(node).__name__} at {part!r}")
