"""Calendar months of a run: their edges in seconds since the scenario start.

The scenario ``start`` is a date (midnight); months are calendar months, so the first and last may be
partial (a run starting on 15 March has a first "month" of 17 days). Days are 86,400 s (no time zones or
leap seconds, as everywhere in dcsim).
"""

from __future__ import annotations

import datetime as dt

import numpy as np

DAY_S = 86400.0


def month_edges(start: dt.date, horizon_s: float) -> tuple[np.ndarray, list[str]]:
    """Edges [s since start] of the calendar months the run [0, horizon] touches, and their labels
    (``YYYY-MM``): ``edges[0] = 0``, ``edges[-1] = horizon``, and every edge between is the first of a month."""
    edges, labels = [0.0], [f"{start.year:04d}-{start.month:02d}"]
    year, month = start.year, start.month
    while True:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        at = (dt.date(year, month, 1) - start).days * DAY_S
        if at >= horizon_s:
            break
        edges.append(at)
        labels.append(f"{year:04d}-{month:02d}")
    edges.append(float(horizon_s))
    return np.array(edges), labels


def overlap_s(lo: float, hi: float, edges: np.ndarray) -> np.ndarray:
    """Seconds of the window [lo, hi) inside each interval [edges[i], edges[i+1])."""
    return np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0.0, None)

