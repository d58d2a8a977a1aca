"""The manifest of a run: what produced it (scenario hash, seed, versions, whether Numba ran)."""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata


def scenario_hash(scenario) -> str:
    canonical = json.dumps(scenario.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def build_manifest(scenario, numba_enabled: bool, wall_s: float, events: int) -> dict:
    versions = {}
    for package in ("dcsim", "simpy", "numpy", "numba", "pandas", "pydantic", "networkx", "matplotlib"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "scenario": scenario.name,
        "scenario_sha256": scenario_hash(scenario),
        "seed": scenario.seed,
        "numba": numba_enabled,
        "python": platform.python_version(),
        "versions": versions,
        "wall_s": wall_s,
        "engine_events": events,
    }
