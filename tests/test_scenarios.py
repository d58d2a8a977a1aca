"""Examples are tests: every ready scenario validates and runs in full, and matches its golden summary."""

from __future__ import annotations

import json
import math

import pytest

import sim
from tests.conftest import REPO, SCENARIOS

GOLDEN = REPO / "tests" / "golden"

FILES = sorted(SCENARIOS.glob("*.yaml"))
# Every ready scenario runs in full (each takes seconds): its golden summary is the run the README quotes
# (tests/test_readme_figures.py checks the quoted figures against these files).


def test_there_are_scenarios():
    names = {f.stem for f in FILES}
    assert {"classroom-hetero", "alibaba-gpu-replay", "llm-serving-azure", "recsys-on-asics"} <= names
    assert {"classroom-hetero", "alibaba-gpu-replay", "llm-serving-azure", "shared-pool-day"} <= names


@pytest.mark.filterwarnings("error")  # no numpy (or other) warning reaches a user of a ready scenario
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_scenario_validates_and_runs(path, request):
    text = path.read_text()
    assert text.startswith("#"), "a ready scenario opens with a comment saying what question it answers"
    scenario = sim.load(path)
    assert scenario.name == path.stem
    assert scenario.description.strip(), "a ready scenario says what it shows in its description"
    results = sim.run(scenario)
    jobs = results.summary["jobs"]
    assert jobs["completed"] > 0 or results.summary["inference"]
    assert sum(jobs[s] for s in ("completed", "running", "queued", "rejected")) == jobs["submitted"]
    for service in results.summary["inference"].values():
        r = service["requests"]
        assert r["completed"] > 0 and r["offered"] == r["completed"] + r["rejected"] + r["unfinished"]
    assert results.summary["scenario"] == {"name": scenario.name, "description": scenario.description.strip()}
    check_golden(path.stem, results.summary, request.config.getoption("--update-golden"))


def check_golden(name: str, summary: dict, update: bool) -> None:
    """The run's summary equals the committed one (floats to 1e-9 relative).

    Refresh after an intended change with ``pytest --update-golden`` and review the diff."""
    path = GOLDEN / f"{name}.json"
    if update or not path.exists():
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        if not update:
            pytest.fail(f"no golden summary for {name}; wrote {path}, review and commit it")
    expected = json.loads(path.read_text())
    mismatches = list(_diff(expected, json.loads(json.dumps(summary)), name))
    assert not mismatches, "summary differs from tests/golden:\n" + "\n".join(mismatches[:20])


def _diff(expected, actual, where: str):
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual)):
            if key not in expected or key not in actual:
                yield f"{where}.{key}: only in {'expected' if key in expected else 'actual'}"
            else:
                yield from _diff(expected[key], actual[key], f"{where}.{key}")
    elif isinstance(expected, float) or isinstance(actual, float):
        if expected is None or actual is None or not math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-9):
            yield f"{where}: expected {expected}, got {actual}"
    elif expected != actual:
        yield f"{where}: expected {expected!r}, got {actual!r}"
