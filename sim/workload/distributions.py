"""Sampling the scenario's ``Distribution`` forms with an explicit ``numpy.random.Generator``."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from sim.workload.errors import TraceError

BUILTIN_EMPIRICAL = {"philly-runtime": ("philly-runtime", "philly_runtime.csv")}


def sample(dist, size: int, rng: np.random.Generator, base_dir: Path | None = None) -> np.ndarray:
    """Draw ``size`` values from a scenario ``Distribution`` (fixed, lognormal, exponential, uniform, empirical)."""
    if dist.fixed is not None:
        return np.full(size, float(dist.fixed))
    if dist.lognormal is not None:
        return dist.lognormal.median * np.exp(dist.lognormal.sigma * rng.standard_normal(size))
    if dist.exponential is not None:
        return rng.exponential(dist.exponential.mean, size)
    if dist.uniform is not None:
        return rng.uniform(dist.uniform.low, dist.uniform.high, size)
    values = empirical_values(dist.empirical, str(base_dir or ""))
    return values[rng.integers(0, len(values), size)]


@lru_cache(maxsize=8)
def empirical_values(name: str, base_dir: str = "") -> np.ndarray:
    """Values of an empirical distribution: a built-in name or a one-column CSV with a header.

    ``philly-runtime`` is Microsoft Philly's job runtimes in seconds (83,154 values, CC-BY-4.0; see
    ``sim/workload/traces/philly-runtime/SOURCE.md``). Zero runtimes are kept: they are real jobs that
    ended at once (typically failed launches).
    """
    if name in BUILTIN_EMPIRICAL:
        folder, file = BUILTIN_EMPIRICAL[name]
        path = resources.files("sim.workload").joinpath("traces", folder, file)
        text = path.read_text(encoding="utf-8")
        label = f"{folder}/{file}"
    else:
        path = Path(base_dir) / name
        text = path.read_text(encoding="utf-8")
        label = str(path)
    lines = text.splitlines()
    values = []
    for row, line in enumerate(lines[1:], start=2):
        try:
            value = float(line.split(",")[0])
        except ValueError:
            raise TraceError(f"{label}:{row}: expected a number, found {line!r}") from None
        if not np.isfinite(value) or value < 0:
            raise TraceError(f"{label}:{row}: expected a finite, non-negative number, found {line!r}")
        values.append(value)
    if not values:
        raise TraceError(f"{label}: no values")
    return np.asarray(values)
