"""Load a scenario: YAML -> typed ``Scenario``, reporting every problem with file, line and field.

Pipeline (one implementation for files, ``--set`` and ``with_overrides``):
bytes (at most ``MAX_SCENARIO_BYTES``, UTF-8) -> YAML (``yaml_lines``) -> raw data (+ overrides) ->
raw value checks (``values``) and pydantic validation -> catalog/registry checks -> ``Scenario``.
All problems found are collected and raised together as one ``ScenarioError``.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ValidationError

from sim.scenario.errors import Problem, ScenarioError, format_path, shown, suggest
from sim.scenario.overrides import OverrideError, apply_overrides
from sim.scenario.schema import Scenario
from sim.scenario.values import RawProblem, Unreadable, size_problems, value_problems
from sim.scenario.yaml_lines import YamlSyntaxError, load_with_lines

MAX_SCENARIO_BYTES = 1_000_000  # a scenario describes; bulk data (jobs, requests) belongs in trace files
_BOUND_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


@dataclass(frozen=True)
class Origin:
    """Where a scenario's data came from, to turn a field path into ``file:line``."""

    file: str
    lines: dict[tuple, int] = field(default_factory=dict)
    overridden: dict[tuple, str] = field(default_factory=dict)

    def locate(self, path: tuple) -> str:
        for overridden, text in self.overridden.items():
            if overridden[: len(path)] == tuple(path):  # the error sits above what a --set created
                return f"{self.file} ({text})"
        for length in range(len(path), -1, -1):  # an override replaced everything below it, file lines too
            prefix = tuple(path[:length])
            if prefix in self.overridden:
                return f"{self.file} ({self.overridden[prefix]})"
        for length in range(len(path), -1, -1):
            prefix = tuple(path[:length])
            if prefix in self.lines:
                return f"{self.file}:{self.lines[prefix]}"
        return self.file

    @property
    def directory(self) -> Path:
        path = Path(self.file)
        return path.parent if path.suffix else Path(".")


def load(path: str | Path) -> Scenario:
    """Read and validate a scenario file; raise ``ScenarioError`` listing every problem."""
    path = Path(path)
    label = str(path)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_SCENARIO_BYTES + 1)
    except (OSError, ValueError) as exc:
        raise ScenarioError([Problem(label, "", f"cannot read file: {getattr(exc, 'strerror', None) or exc}")]) \
            from None
    if len(raw) > MAX_SCENARIO_BYTES:
        raise ScenarioError([Problem(label, "", f"file is larger than {MAX_SCENARIO_BYTES / 1e6:g} MB; accepted: "
                                                f"at most {MAX_SCENARIO_BYTES:,} bytes (a scenario describes a "
                                                "run; put bulk data such as jobs or requests in a trace file)")])
    return load_text(_decode(raw, label), label)


def _decode(raw: bytes, label: str) -> str:
    """UTF-8 text of a scenario file (a UTF-8 byte-order mark is dropped); other encodings are errors."""
    def fail(line: int, message: str):
        raise ScenarioError([Problem(f"{label}:{line}", "", message + "; accepted: UTF-8 text (save the file "
                                                                      "as UTF-8)")])

    if raw.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        fail(1, "the file is UTF-32 (it starts with a UTF-32 byte-order mark)")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        fail(1, "the file is UTF-16 (it starts with a UTF-16 byte-order mark)")
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    head = raw[:400]
    if head and max(head[0::2].count(0), head[1::2].count(0)) > len(head) / 4:
        fail(1, "the file looks like UTF-16 (every other byte is NUL)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        fail(line, f"byte 0x{raw[exc.start]:02X} at column {column} is not UTF-8")


def load_text(text: str, label: str = "<scenario>") -> Scenario:
    """Validate scenario YAML text; ``label`` names it in errors (usually the file path)."""
    if len(text) > MAX_SCENARIO_BYTES:
        raise ScenarioError([Problem(label, "", f"text is {len(text):,} characters; accepted: at most "
                                                f"{MAX_SCENARIO_BYTES:,} (put bulk data in a trace file)")])
    try:
        data, lines, duplicates = load_with_lines(text.removeprefix("\ufeff"))
    except YamlSyntaxError as exc:
        raise ScenarioError([Problem(f"{label}:{exc.line}", "", str(exc))]) from None
    origin = Origin(label, lines)
    problems = [Problem(origin.locate(path), format_path(path), "duplicate key (the later one would win)")
                for path, _ in duplicates]
    return build(data, origin, problems)


@dataclass(frozen=True)
class SemanticChecks:
    """The checks beyond the schema (catalog names, fleet layout, power, data files). They need the
    packages above this one (fleet, workload, serving), so ``sim.validation`` registers them here when
    the ``sim`` package is imported, instead of this module importing upward."""

    raw_names: typing.Callable  # (raw data, Origin) -> problems, run alongside schema errors
    scenario: typing.Callable  # (Scenario, Origin) -> problems, run once the schema holds


_CHECKS: list[SemanticChecks] = []


def register_checks(checks: SemanticChecks) -> None:
    """Install the semantic checks every load, ``--set`` and ``with_overrides`` runs (one set)."""
    _CHECKS[:] = [checks]


def build(data: object, origin: Origin, problems: list[Problem] | None = None) -> Scenario:
    """Validate source data into a ``Scenario`` (pydantic first, then catalog and registry checks)."""
    check_raw_names, check_scenario = _CHECKS[0].raw_names, _CHECKS[0].scenario
    problems = list(problems or [])
    if not isinstance(data, dict):
        problems.append(Problem(origin.file, "", "a scenario is a YAML mapping of sections (name, fleet, ...)"))
        raise ScenarioError(problems)
    try:
        raw_problems = value_problems(data, Scenario)
    except Unreadable as exc:
        shown_path = format_path(exc.path[:8]) + ("…" if len(exc.path) > 8 else "")
        raise ScenarioError(problems + [Problem(origin.locate(exc.path), shown_path, str(exc))]) from None
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems.extend(_merged(_pydantic_problems(exc, data, origin), raw_problems, origin))
        problems.extend(check_raw_names(_for_name_checks(data), origin))  # catalog typos too, in the same report
        raise ScenarioError(problems) from None
    if raw_problems:  # values the schema accepted (true as 1, a custom chip's 1e300): the checks would trip
        problems.extend(_merged([], raw_problems, origin))
        problems.extend(check_raw_names(_for_name_checks(data), origin))
        raise ScenarioError(problems)
    problems.extend(check_scenario(scenario, origin))
    problems.extend(Problem(origin.locate(path), format_path(path), message)
                    for path, message in size_problems(scenario))
    if problems:
        raise ScenarioError(problems)
    object.__setattr__(scenario, "_source", (data, origin))
    return scenario


def _merged(schema: list[tuple[tuple, Problem]], raw: list[RawProblem], origin: Origin) -> list[Problem]:
    """The schema's problems and the raw values' ones, one message per path: NaN, infinity and true/false
    get the raw message; other raw problems only where the schema said nothing (for a key: nor about
    its mapping)."""
    numbers = {problem.path for problem in raw if problem.kind == "number"}
    reported = {path for path, _ in schema}
    merged = [problem for path, problem in schema if path not in numbers]
    for path, message, kind in raw:
        if kind == "number" or (path not in reported and not (kind == "key" and path[:-1] in reported)):
            merged.append(Problem(origin.locate(path), format_path(path), message))
    return merged


def _for_name_checks(data: dict) -> dict:
    """``data`` for ``check_raw_names`` on data the schema rejected: ``accelerators`` only as a list of
    mappings with a plain id (it reads their ids to know the scenario's own chips)."""
    accelerators = data.get("accelerators")
    if not isinstance(accelerators, list):
        return {**data, "accelerators": []}
    return {**data, "accelerators": [a for a in accelerators if isinstance(a, dict) and isinstance(a.get("id"), str)]}


def with_overrides(scenario: Scenario, overrides: dict[str, object], via: str = "override") -> Scenario:
    """A new scenario with dotted-path overrides applied and validated like the original file.

    ``via`` names the overrides in errors: ``(override site.pue=9)``; the CLI passes ``"--set"``."""
    data, origin = source_of(scenario)
    try:
        changed, overridden = apply_overrides(data, overrides, via)
    except OverrideError as exc:
        raise ScenarioError([Problem(origin.file, "", f"{via} {exc}")]) from None
    new_origin = Origin(origin.file, origin.lines, {**origin.overridden, **overridden})
    return build(changed, new_origin)


def source_of(scenario: Scenario) -> tuple[dict, Origin]:
    """The source data and origin a scenario was built from (a programmatic one gets its own dump)."""
    source = getattr(scenario, "_source", None)
    if source is None:
        return scenario.model_dump(mode="json", exclude_defaults=True), Origin("<python>")
    return source


def _pydantic_problems(exc: ValidationError, data: dict, origin: Origin) -> list[tuple[tuple, Problem]]:
    errors = [(_clean_loc(err["loc"], err["type"], data), err) for err in exc.errors()]
    paths = [path for path, _ in errors]
    messages: dict[tuple, list[str]] = {}
    out_of_range = {path for path, err in errors if err["type"] in _BOUND_ERRORS}
    for path, err in errors:
        # a union member's "not a string" is noise when the mapping form has its own, deeper errors
        if any(other[: len(path)] == path and len(other) > len(path) for other in paths):
            continue
        # and its "not a mapping" is noise when a number was given and the number form finds it out of range
        if err["type"] in _MAPPING_ERRORS and path in out_of_range and _is_number(err.get("input")):
            continue
        text = _message(path, err)
        if text not in messages.setdefault(path, []):
            messages[path].append(text)
    # several messages at one path come from the alternatives of a union: any one of them would do
    return [(path, Problem(origin.locate(path), format_path(path), " — or — ".join(texts)))
            for path, texts in messages.items()]


_MAPPING_ERRORS = ("model_type", "dict_type", "model_attributes_type")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _clean_loc(loc: tuple, kind: str, data: object) -> tuple:
    """Drop pydantic's union/validator tags from ``loc`` so it matches the data's own path.

    A segment is kept when it exists in the data; the last one also when it names a missing or an
    unknown field. Anything else (``str``, ``AcceleratorSpec``, ``function-after[...]``) is a tag.
    """
    path, node = [], data
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and str(part) in node:
            path.append(str(part))
            node = node[str(part)]
        elif last and kind in ("missing", "extra_forbidden") and isinstance(part, (str, int)):
            path.append(part)
    return tuple(path)


def _message(path: tuple, err: dict) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        accepted = _fields_at(path[:-1])
        return f"unknown field {shown(path[-1])}" + (suggest(str(path[-1]), accepted) if accepted else "")
    if kind == "missing":
        return "required field is missing"
    message = err["msg"]
    message = message.removeprefix("Value error, ")
    found = err.get("input")
    if kind in _BOUND_ERRORS + ("int_parsing_size",) and (accepted := _accepted_at(path)):
        return f"found {shown(found)}; accepted: {accepted}"
    if not isinstance(found, (dict, list)):
        return f"found {shown(found)}: {message}"
    return message


def _accepted_at(path: tuple) -> str | None:
    """The documented range of the bounded field at ``path`` (``base.bounded``), if it is one."""
    models: list[type[BaseModel]] = [Scenario]
    for position, part in enumerate(path):
        if isinstance(part, int):
            continue
        infos = [model.model_fields[part] for model in models if part in model.model_fields]
        if not infos:
            return None
        if position == len(path) - 1:
            extra = infos[0].json_schema_extra
            return extra.get("accepted") if isinstance(extra, dict) else None
        models = [found for info in infos for found in _models_in(info.annotation)]
    return None


def _fields_at(path: tuple) -> list[str]:
    """Field names of the model that sits at ``path`` in a scenario (for 'accepted: ...' hints)."""
    model: type[BaseModel] | None = Scenario
    for part in path:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        model = _model_in(info.annotation) if info else None
    return sorted(model.model_fields) if model else []


def _model_in(annotation) -> type[BaseModel] | None:
    models = _models_in(annotation)
    return models[0] if models else None


def _models_in(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]
