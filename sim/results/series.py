"""Exact time-weighted averages of step functions over regular bins, from change events.

The engine records only when things change (job start/end, arrivals, pools coming online); busy chips,
queue length and power are step functions of time. Averaging them over bins by integration gives exact
bin means and exact energy (Σ power·dt), with no per-bin sampling inside the simulation.
"""

from __future__ import annotations

import numpy as np


def bin_edges(horizon_s: float, interval_s: float) -> np.ndarray:
    """Edges ``k * interval`` from 0, closing at the horizon (the last bin may be shorter)."""
    count = int(np.ceil(horizon_s / interval_s - 1e-9))
    edges = np.arange(count + 1, dtype=np.float64) * interval_s
    edges[-1] = horizon_s
    return edges


def binned_mean(times: np.ndarray, deltas: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean over each bin of the step function that starts at 0 and jumps by ``deltas[i]`` at ``times[i]``."""
    if len(times) == 0:
        return np.zeros(len(edges) - 1)
    order = np.argsort(times, kind="stable")
    t = times[order]
    level = np.cumsum(deltas[order])
    integral = np.concatenate(([0.0], np.cumsum(level[:-1] * np.diff(t))))
    k = np.searchsorted(t, edges, side="right") - 1
    inside = k >= 0
    at_edges = np.zeros(len(edges))
    kk = k[inside]
    at_edges[inside] = integral[kk] + level[kk] * (edges[inside] - t[kk])
    return np.diff(at_edges) / np.diff(edges)


def step_max(times: np.ndarray, deltas: np.ndarray, horizon_s: float) -> float:
    """Exact maximum over [0, horizon] of the step function built from change events.

    Events at the same instant are applied together, so a release and a start at one time never show
    a transient peak that did not exist."""
    keep = times <= horizon_s
    times, deltas = times[keep], deltas[keep]
    if len(times) == 0:
        return 0.0
    order = np.argsort(times, kind="stable")
    t, level = times[order], np.cumsum(deltas[order])
    last_at_instant = np.append(t[1:] != t[:-1], True)
    return float(max(level[last_at_instant].max(), 0.0))


def interval_events(start: np.ndarray, end: np.ndarray, weight: np.ndarray, horizon_s: float):
    """Change events of Σ weight over intervals [start, end), clipped to [0, horizon]."""
    end = np.minimum(end, horizon_s)
    keep = ~np.isnan(start) & (start <= horizon_s)
    times = np.concatenate((start[keep], end[keep]))
    deltas = np.concatenate((weight[keep], -weight[keep]))
    return times, deltas
