"""Examples are tests: every ready scenario validates and runs (shortened)."""

from __future__ import annotations

import pytest

import sim
from tests.conftest import SCENARIOS

FILES = sorted(SCENARIOS.glob("*.yaml"))
SHORTEN = {
    "alibaba-gpu-replay": {"workloads.training.trace.limit": 1500},
    "classroom-hetero": {"duration": "2d", "workloads.training.generator.jobs": 150},
}


def test_there_are_scenarios():
    names = {f.stem for f in FILES}
    assert {"classroom-hetero", "alibaba-gpu-replay"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_scenario_validates_and_runs(path):
    text = path.read_text()
    assert text.startswith("#"), "a ready scenario opens with a comment saying what question it answers"
    scenario = sim.load(path)
    assert scenario.name == path.stem
    results = sim.run(scenario.with_overrides(SHORTEN.get(scenario.name, {"duration": "1d"})))
    jobs = results.summary["jobs"]
    assert jobs["completed"] > 0
    assert sum(jobs[s] for s in ("completed", "running", "queued", "rejected")) == jobs["submitted"]
