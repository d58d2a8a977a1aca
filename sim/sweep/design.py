"""Sweep designs: the list of points (each a dict of dotted-path overrides) a sweep runs.

* ``grid``: every combination of the values, the first parameter varying slowest (``itertools.product``).
* ``zip``: the i-th value of every parameter together; all parameters have the same number of values.
* ``lhs``: a Latin hypercube of ``samples`` points over ``(low, high)`` ranges: each range is cut into
  ``samples`` equal strata, every stratum is used once per parameter, and the strata are paired at random
  (a seeded ``numpy`` Generator, so the same seed gives the same points). A range of two integers gives
  whole numbers (the stratum's value rounded), otherwise floats.

Parameter paths are the ``--set`` paths (``site.power_cap_mw``, ``fleet.gpu-h100.count``); values are read
as YAML on the command line (``60`` a number, ``fifo`` text), as ``--set`` reads them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from sim.scenario.overrides import OverrideError, parse_assignment

DESIGNS = ("grid", "zip", "lhs")
RESERVED = ("point", "replica", "seed", "error")  # columns of the sweep table (sim.sweep.table)


class SweepError(ValueError):
    """A sweep that cannot run as asked (one line: the option and what is wrong)."""


@dataclass(frozen=True)
class Design:
    """What a sweep varies: ``kind``, the parameters in order, and the points in order."""

    kind: str
    parameters: tuple[str, ...]
    points: tuple[dict, ...]
    lhs_seed: int | None = None


def parse_grid_option(text: str, ranges: bool = False) -> tuple[str, list]:
    """``'site.power_cap_mw=60,80,100'`` -> ``('site.power_cap_mw', [60, 80, 100])``; with ``ranges``
    (Latin hypercube) ``'KEY=lo:hi'`` -> ``('KEY', [lo, hi])``. Each value is read as YAML like ``--set``."""
    if "=" not in text:
        raise SweepError(f"--grid expects KEY=v1,v2,... (or KEY=lo:hi with --lhs), got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise SweepError(f"--grid {text}: no parameter path before '='")
    if ranges:
        parts = raw.split(":")
        values = [_value(key, part) for part in parts]
        if len(parts) != 2 or not all(_is_number(v) for v in values):
            raise SweepError(f"--grid {text}: with --lhs, give a range of two numbers, e.g. {key}=60:100")
        return key, values
    parts = raw.split(",")
    if any(part.strip() == "" for part in parts):
        raise SweepError(f"--grid {text}: an empty value; give values separated by commas, e.g. {key}=60,80,100")
    return key, [_value(key, part) for part in parts]


def _value(key: str, raw: str):
    try:
        return parse_assignment(f"{key}={raw.strip()}")[1]
    except OverrideError as exc:  # pragma: no cover - parse_assignment only fails without '='
        raise SweepError(str(exc)) from None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def make_design(grid: dict[str, list] | None, kind: str = "grid", samples: int | None = None,
                seed: int = 0) -> Design:
    """The points of a ``kind`` design over ``grid`` (parameter path -> values, or ``(low, high)`` for
    ``lhs``). No parameters: one point with no overrides (a replicas-only sweep)."""
    if kind not in DESIGNS:
        raise SweepError(f"design: found {kind!r}; accepted: {', '.join(DESIGNS)}")
    grid = dict(grid or {})
    for key, values in grid.items():
        if not isinstance(key, str) or not key:
            raise SweepError(f"grid: a parameter path must be dotted text like 'site.power_cap_mw', got {key!r}")
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
            raise SweepError(f"grid {key}: give a non-empty list of values, got {values!r}")
        if key in RESERVED:
            raise SweepError(f"grid {key}: the table's own column {key!r} cannot be swept; accepted: replicas "
                             "(--replicas N) to run each point with several seeds, each recorded in the seed column")
    keys = tuple(grid)
    if kind == "lhs":
        if samples is None or samples < 1:
            raise SweepError(f"--lhs: give the number of points (at least 1), got {samples}")
        return Design("lhs", keys, tuple(_latin_hypercube(grid, samples, seed)), seed)
    if samples is not None:
        raise SweepError("samples: only the lhs design takes a number of points")
    if kind == "zip":
        lengths = {key: len(values) for key, values in grid.items()}
        if len(set(lengths.values())) > 1:
            raise SweepError("--zip: every --grid needs the same number of values; found "
                             + ", ".join(f"{key} {n}" for key, n in lengths.items()))
        rows = zip(*grid.values()) if keys else [()]
    else:
        rows = itertools.product(*grid.values())
    return Design(kind, keys, tuple(dict(zip(keys, row)) for row in rows))


def _latin_hypercube(grid: dict[str, list], samples: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    columns = {}
    for key, bounds in grid.items():
        if len(bounds) != 2 or not all(_is_number(v) for v in bounds):
            raise SweepError(f"--grid {key}: with --lhs, give a range (low, high) of two numbers, got {bounds!r}")
        low, high = bounds
        if high < low:
            raise SweepError(f"--grid {key}={low}:{high}: the range ends below its start")
        strata = (rng.permutation(samples) + rng.random(samples)) / samples
        values = low + strata * (high - low)
        if isinstance(low, int) and isinstance(high, int):
            columns[key] = [int(round(v)) for v in values]
        else:
            columns[key] = [float(v) for v in values]
    return [{key: columns[key][i] for key in grid} for i in range(samples)]
