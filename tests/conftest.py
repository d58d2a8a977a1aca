"""Fixtures: small scenarios written by the tests themselves; no test reads data outside the repo."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

import sim

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"

BASE = {
    "schema_version": 1,
    "name": "unit",
    "seed": 1,
    "start": "2026-01-01",
    "duration": "2d",
    "site": {"pue": 1.2},
    "fleet": [
        {"name": "gpu", "accelerator": "h100-sxm", "count": 16, "chips_per_server": 8, "servers_per_rack": 2},
        {"name": "tpu", "accelerator": "tpu-v6e", "count": 16, "chips_per_server": 8, "servers_per_rack": 2},
    ],
    "workloads": {"training": {"generator": {
        "jobs": 60, "arrival_rate_per_hour": 3,
        "chips": {1: 0.5, 4: 0.3, 8: 0.2},
        "models": {"resnet50": 0.6, "bert-large": 0.4},
        "stacks": {"portable": 0.5, "cuda": 0.3, "xla": 0.2},
        "duration_s": {"lognormal": {"median": 3600, "sigma": 1.0}},
        "reference_accelerator": "h100-sxm",
    }}},
    "policy": {"scheduler": {"kind": "fifo-backfill"}},
}


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/*.json from the current code instead of comparing")


def scenario_from(data: dict, tmp_path: Path, name: str = "s.yaml") -> sim.Scenario:
    """Write ``data`` as YAML into ``tmp_path`` and load it (so errors carry a real file and line)."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return sim.load(path)


def load_text(tmp_path: Path, text: str) -> sim.Scenario:
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(text))
    return sim.load(path)


@pytest.fixture
def base() -> dict:
    import copy

    return copy.deepcopy(BASE)


from hypothesis import settings  # noqa: E402

# the same examples on every run, so CI results do not depend on the day
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("ci")


@pytest.fixture
def captured(monkeypatch):
    """The cluster of the next run, kept when its outcome is read."""
    from sim.training.cluster import Cluster

    clusters = []
    original = Cluster.outcome

    def outcome(self):
        clusters.append(self)
        return original(self)

    monkeypatch.setattr(Cluster, "outcome", outcome)
    return clusters
