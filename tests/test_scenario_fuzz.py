"""Property-based fuzzing of scenario loading: any input ends in a ``Scenario`` or a located ``ScenarioError``.

(a) arbitrary bytes, and bytes spliced into a ready scenario file; (b) ready scenarios with values
deleted or replaced by hostile ones (NaN, infinity, huge, negative, true/false, text with control
characters, nested lists). Loaded scenarios are not run.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim
from tests.conftest import SCENARIOS

READY = {path.name: path.read_bytes() for path in sorted(SCENARIOS.glob("*.yaml"))}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _load_bytes(content: bytes, path: Path, data: object = None) -> sim.ScenarioError | None:
    """Load ``content`` written to ``path``: a Scenario whose numbers are all finite and fit 64 bits (and
    where ``data``, the source, had true/false, it has no number), or a ScenarioError (returned) whose
    problems are one line each and start with the file. Anything else (a traceback) fails the test."""
    path.write_bytes(content)
    try:
        scenario = sim.load(path)
    except sim.ScenarioError as exc:
        text = str(exc)
        assert len(text.splitlines()) == len(exc.problems) >= 1, text
        for problem in exc.problems:
            assert problem.location.startswith(str(path)), text
        return exc
    assert isinstance(scenario, sim.Scenario)
    dumped = scenario.model_dump()
    for number in _numbers(dumped):
        assert math.isfinite(number) and abs(number) < 2**63, number
    assert not _bools_read_as_numbers(data, dumped)
    return None


def _bools_read_as_numbers(source, dumped) -> bool:
    """Whether a true/false in the source data became a number in the loaded scenario."""
    if isinstance(source, bool):
        return isinstance(dumped, (int, float)) and not isinstance(dumped, bool)
    if isinstance(source, dict) and isinstance(dumped, dict):
        return any(_bools_read_as_numbers(item, dumped.get(key)) for key, item in source.items())
    if isinstance(source, list) and isinstance(dumped, (list, tuple)):
        return any(_bools_read_as_numbers(a, b) for a, b in zip(source, dumped))
    return False


def _numbers(value):
    """Every number in dumped scenario data, mapping keys included."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(key)
            yield from _numbers(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


@st.composite
def spliced(draw) -> bytes:
    """A ready scenario with a few random byte strings written over or into it."""
    content = bytearray(draw(st.sampled_from(sorted(READY.values()))))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(content)))
        patch = draw(st.binary(min_size=1, max_size=12))
        cut = draw(st.integers(0, 12))
        content[at:at + cut] = patch
    return bytes(content)


def test_any_bytes_load_or_give_a_located_error(tmp_path_factory):
    path = tmp_path_factory.mktemp("bytes") / "fuzzed.yaml"  # the ready scenarios use packaged traces only

    @FUZZ
    @given(st.one_of(st.binary(max_size=400), spliced()))
    def check(content):
        _load_bytes(content, path)

    check()


SPECIAL = [math.nan, math.inf, -math.inf, 1e308, -1.0, 0, 10**9, 10**30, 1e30, 2**63, -(2**63), True, False]
HOSTILE = st.one_of(
    st.sampled_from(SPECIAL), st.sampled_from(SPECIAL), st.none(),
    st.integers(), st.floats(),
    st.text(max_size=12), st.text(alphabet=st.characters(max_codepoint=0x9F), max_size=6),
    st.lists(st.integers(), max_size=3),
    st.recursive(st.integers(0, 9), lambda inner: st.lists(inner, min_size=1, max_size=2), max_leaves=8),
    st.dictionaries(st.text(max_size=6), st.floats(), max_size=2),
)


def _at(data, path):
    for part in path:
        data = data[part]
    return data


def _paths(data, prefix=()):
    """Every path below the root: mapping keys and list positions."""
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        yield prefix + (key,)
        yield from _paths(value, prefix + (key,))


@st.composite
def mutated(draw) -> dict:
    """A ready scenario's data with one to three values deleted or replaced by hostile ones (mostly
    numbers: a random one of all values, or of the numbers)."""
    data = yaml.safe_load(draw(st.sampled_from(sorted(READY.values()))))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(data))
        numbers = [path for path in paths if isinstance(_at(data, path), (int, float))]
        path = draw(st.sampled_from(numbers if numbers and draw(st.booleans()) else paths))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(HOSTILE)
    return data


def test_mutated_ready_scenarios_load_or_give_a_located_error(tmp_path_factory):
    path = tmp_path_factory.mktemp("mutated") / "fuzzed.yaml"

    @FUZZ
    @given(mutated())
    def check(data):
        error = _load_bytes(yaml.safe_dump(data, sort_keys=False).encode("utf-8"), path, data)
        for problem in error.problems if error else ():  # a file with lines gets a line on every problem
            assert re.match(rf"{re.escape(str(path))}:\d+", problem.location), str(error)

    check()
