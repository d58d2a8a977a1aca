"""When an inference replica group is active: its own dates cut by its pool's online window and the run.

A replica group (``workloads.inference[].replicas[]``) is active over
``[max(active_from, pool online_from), min(active_until, pool online_until))``, cut to ``[0, horizon]``
(seconds from the scenario start; calendar dates count whole days from the start, as ``fleet[].online_from``).
Active, it takes new requests and holds its chips; after its window it finishes the requests it already
holds (drain) but takes no new ones, and its chips go back to training. A group whose window is the whole
run is *not windowed*: everything about it is as before windows existed (its chips are reserved from t = 0).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

NO_REPLICA_ACTIVE = "no replica active"  # why a request is rejected when no group that could take it is active


def date_s(date: dt.date | None, start: dt.date | None, default: float) -> float:
    """Seconds from ``start`` to ``date`` (``default`` without a date or a start)."""
    if date is None or start is None:
        return default
    return (date - start).days * 86400.0


def group_window_s(group, pool, start: dt.date | None, horizon_s: float) -> tuple[float, float]:
    """``(from_s, until_s)`` of a replica group on its resolved ``pool`` (``ResolvedPool``); from_s == until_s
    when the group is never active within the run."""
    begin = max(0.0, pool.online_from_s, date_s(group.active_from, start, 0.0))
    end = min(horizon_s, pool.online_until_s, date_s(group.active_until, start, math.inf))
    begin = min(begin, horizon_s)
    return begin, max(begin, end)


def windowed(window: tuple[float, float], horizon_s: float) -> bool:
    """Whether a group's window is less than the whole run (it then joins or leaves during it)."""
    return window[0] > 0.0 or window[1] < horizon_s


def active_fraction(window: tuple[float, float], edges) -> np.ndarray:
    """Share of each bin ``[edges[k], edges[k+1])`` inside ``window`` (numpy array, pro rata at the edges)."""
    edges = np.asarray(edges, dtype=np.float64)
    inside = np.clip(np.minimum(edges[1:], window[1]) - np.maximum(edges[:-1], window[0]), 0.0, None)
    widths = np.diff(edges)
    return np.divide(inside, widths, out=np.zeros_like(widths), where=widths > 0)
