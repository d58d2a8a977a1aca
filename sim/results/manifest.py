"""The manifest of a run: what produced it (scenario name and description, scenario hash, seed, versions,
whether Numba ran)."""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata

from sim.workload import cache


def scenario_hash(scenario) -> str:
    canonical = json.dumps(scenario.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def file_sha256(path) -> str:
    """SHA-256 of a data file: the one computed while the run parsed it (``sim.workload.cache``), so the
    manifest does not read the file again; computed now for a file not parsed in this process."""
    return cache.file_sha256(path)


def build_manifest(scenario, numba_enabled: bool, wall_s: float, events: int, inputs=()) -> dict:
    """What produced a run. ``inputs`` are the data files read; their hashes make the record complete
    (the scenario hash alone would not change when a trace file does)."""
    versions = {}
    for package in ("dcsim", "simpy", "numpy", "numba", "pandas", "pydantic", "networkx", "matplotlib"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "scenario": scenario.name,
        "description": scenario.description,
        "scenario_sha256": scenario_hash(scenario),
        "seed": scenario.seed,
        "numba": numba_enabled,
        "python": platform.python_version(),
        "versions": versions,
        "input_files": {str(path): file_sha256(path) for path in inputs},
        "wall_s": wall_s,
        "engine_events": events,
    }
