"""Checks on a scenario's raw values before and beside the schema, for data from files, overrides and Python.

* nesting is at most ``MAX_DEPTH`` levels (Python data may even refer to itself), and there are at most
  ``MAX_VALUES`` values (Python data may share lists, like YAML aliases);
* numbers are finite and within ``MAX_MAGNITUDE`` (so every count fits a 64-bit integer), also where the
  schema has no field-specific range (a scenario's own accelerators and models);
* ``true``/``false`` are not numbers (pydantic would read them as 1 and 0);
* names, keys and values contain no control characters (free text may have tabs and line breaks).

The schema (``sim.scenario.schema``) guides the walk, to know where a number is expected.
"""

from __future__ import annotations

import math
import re
import types
import typing
from typing import NamedTuple

from pydantic import BaseModel

from sim.scenario.base import MAX_REQUESTS
from sim.scenario.errors import number_text
from sim.scenario.yaml_lines import MAX_DEPTH

MAX_MAGNITUDE = 2**63 - 1
MAX_VALUES = 2_000_000  # a 1 MB file with its aliases written out holds fewer
FREE_TEXT = frozenset({"description", "notes", "display_name"})  # and every value under `sources`
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class RawProblem(NamedTuple):
    """A problem with a raw value. ``kind``: 'number' (NaN, infinity, true/false where a number is
    expected: clearer than what the schema says about them), 'value' (too large, control characters: where
    the schema has nothing more specific to say) or 'key' (a mapping key: its container may say more)."""

    path: tuple
    message: str
    kind: str


class Unreadable(ValueError):
    """Data nested too deep (or referring to itself) or too large: nothing else can be checked."""

    def __init__(self, path: tuple, message: str):
        self.path = path
        super().__init__(message)


def value_problems(data: object, schema: type[BaseModel]) -> list[RawProblem]:
    """Every value that breaks the rules above; raises ``Unreadable`` first."""
    problems: list[RawProblem] = []
    _visit(data, (), schema, False, problems, [0])
    return problems


def _visit(value: object, path: tuple, annotation, free_text: bool, problems: list, visited: list) -> None:
    if len(path) > MAX_DEPTH:
        raise Unreadable(path, f"nested deeper than {MAX_DEPTH} levels (or refers to itself); accepted: at "
                               f"most {MAX_DEPTH} levels")
    visited[0] += 1
    if visited[0] > MAX_VALUES:
        raise Unreadable(path[:1], f"more than {MAX_VALUES:,} values; accepted: a scenario of at most that many")
    found = _scalar_problem(value, annotation, free_text, path)
    if found:
        problems.append(RawProblem(path, *found))
    if isinstance(value, dict):
        for key, item in value.items():
            key_message = _key_problem(key, annotation)
            if key_message:
                problems.append(RawProblem(path + (key,), key_message, "key"))
            child_free = free_text or key in FREE_TEXT or (path[-1:] == ("sources",))
            _visit(item, path + (key,), _child(annotation, key), child_free, problems, visited)
    elif isinstance(value, (list, tuple)):
        item_type = _item(annotation)
        for index, item in enumerate(value):
            _visit(item, path + (index,), item_type, free_text, problems, visited)


def _scalar_problem(value: object, annotation, free_text: bool, path: tuple) -> tuple[str, str] | None:
    """(message, kind) of a problem with one value, or None."""
    if isinstance(value, bool):
        if _expects_number(annotation):
            return (f"found {str(value).lower()}: a number is expected here; accepted: a number "
                    "(true/false are not)", "number")
        return None
    if isinstance(value, float) and not math.isfinite(value):
        name = path[-1] if path and isinstance(path[-1], str) else "the value"
        return f"found {value}: {name} must be finite (not NaN or infinite); accepted: a finite number", "number"
    if isinstance(value, (int, float)) and abs(value) > MAX_MAGNITUDE:
        return (f"found {number_text(value)}: beyond any quantity a scenario describes; accepted: magnitudes up to "
                f"{MAX_MAGNITUDE:.3g} (64-bit integers)", "value")
    if isinstance(value, str) and _expects_number(annotation):  # the schema reads "1e400" or "nan" as a number
        return _number_text_problem(value, path)
    if isinstance(value, str):
        match = (_CONTROL_BUT_LINES if free_text else _CONTROL).search(value)
        if match:
            return (f"found {_short(value)}: control character U+{ord(match.group()):04X} in a name or value; "
                    "accepted: printable text" + ("" if free_text else " on one line"), "value")
    return None


def _number_text_problem(text: str, path: tuple) -> tuple[str, str] | None:
    try:
        number = float(text)
    except (ValueError, OverflowError):
        return None  # not a number at all: the schema says so
    if not math.isfinite(number):
        name = path[-1] if path and isinstance(path[-1], str) else "the value"
        return f"found {_short(text)}: {name} must be finite (not NaN or infinite); accepted: a finite number", "number"
    if abs(number) > MAX_MAGNITUDE:
        return (f"found {_short(text)}: beyond any quantity a scenario describes; accepted: magnitudes up to "
                f"{MAX_MAGNITUDE:.3g} (64-bit integers)", "value")
    return None


def _key_problem(key: object, annotation) -> str | None:
    if isinstance(key, bool) and _expects_number(_key_type(annotation)):
        return f"found key {str(key).lower()}: a number is expected here; accepted: a number (true/false are not)"
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        found = _scalar_problem(key, None, False, ())
        return found[0] if found else None
    if isinstance(key, str) and _CONTROL.search(key):
        return f"found key {_short(key)}: control character in a name; accepted: printable text on one line"
    return None


def _short(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= 60 else shown[:59] + "…"


# --- the schema's types at a path ---------------------------------------------------------------------

def _options(annotation) -> list:
    """The alternatives of a type: ``A | B | None`` -> [A, B, None]; ``Annotated[float, ...]`` -> [float]."""
    if annotation is None:
        return []
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _options(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [option for arg in typing.get_args(annotation) for option in _options(arg)]
    return [annotation]


def _expects_number(annotation) -> bool:
    options = _options(annotation)
    if bool in options:
        return False
    for option in options:
        if option in (int, float):
            return True
        if typing.get_origin(option) is typing.Literal and any(
                isinstance(arg, (int, float)) and not isinstance(arg, bool) for arg in typing.get_args(option)):
            return True
    return False


def _child(annotation, key: object):
    """The type of ``key`` inside a value of type ``annotation`` (a model's field or a dict's values)."""
    for option in _options(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel):
            info = option.model_fields.get(key) if isinstance(key, str) else None
            if info is not None:
                return info.annotation
        elif typing.get_origin(option) is dict:
            return typing.get_args(option)[1]
    return None


def _key_type(annotation):
    for option in _options(annotation):
        if typing.get_origin(option) is dict:
            return typing.get_args(option)[0]
    return None


def _item(annotation):
    for option in _options(annotation):
        if typing.get_origin(option) in (tuple, list):
            args = typing.get_args(option)
            return args[0] if args else None
    return None


# --- sizes that need the whole scenario (after validation) ---------------------------------------------

MAX_PERIODS = 1_000_000  # calm/burst periods of a bursty service over the horizon (drawn one by one)


def size_problems(scenario) -> list[tuple[tuple, str]]:
    """Work a valid scenario would make too large to hold or to simulate: requests held one by one at
    request fidelity, and calm/burst periods of a bursty generator."""
    problems = []
    for s, service in enumerate(scenario.workloads.inference):
        gen = service.traffic.generator
        if gen is None:
            continue
        path = ("workloads", "inference", s, "traffic", "generator")
        grown = gen.growth.mean(scenario.start, scenario.duration) if gen.growth is not None else 1.0
        requests = gen.rate_per_s * scenario.duration * grown
        if service.fidelity == "request" and requests > MAX_REQUESTS:
            with_growth = f" (growth × {grown:.3g} on average)" if gen.growth is not None else ""
            problems.append((path + ("rate_per_s",), (
                f"found {gen.rate_per_s:g} requests/s{with_growth}: {requests:.3g} requests over the horizon; "
                f"accepted: at most {MAX_REQUESTS:,} requests at fidelity request, each held in memory (a rate up to "
                f"{MAX_REQUESTS / scenario.duration / grown:.3g}/s), or fidelity: fluid")))
        if gen.bursty is not None:
            periods = scenario.duration / (gen.bursty.mean_burst_s + gen.bursty.mean_calm_s)
            if periods > MAX_PERIODS:
                problems.append((path + ("bursty",), (
                    f"mean_burst_s + mean_calm_s = {gen.bursty.mean_burst_s + gen.bursty.mean_calm_s:g} s: "
                    f"{periods:.3g} burst/calm periods over the horizon; accepted: at most {MAX_PERIODS:,} "
                    f"(periods of at least {scenario.duration / MAX_PERIODS:.3g} s together)")))
    return problems
