"""Deferrable training waits for cheap or clean hours (``policy.shifting``, ``workloads.training.deferrable``).

The signal is the site's hourly energy price or grid carbon intensity over a typical year (``sim.facility.tariff``,
mapped onto the run's clock cyclically from the start's place in the year, as the results do). An hour is *open*
when its value is at or below the threshold. A deferrable job arriving in a closed hour is held out of the wait
queue until the next open hour begins, or until it has waited ``max_delay_h``, whichever comes first; it then joins
the queue at its arrival position (its seniority kept) and starts as soon as the scheduler finds it room, whatever
the signal is by then. The release times are the cluster's dated events: only hours where the signal crosses the
threshold downwards (or a job's maximum delay running out). A job arriving in an open hour joins the queue at once.

Simplifications: once released (or started) a job runs to completion: it is not paused when the signal rises again
(a job preempted by inference, a leaving pool, a failure or ``shed`` waits again in the queue, not held); release
ignores whether chips are free, so a released job may still wait in the queue into a closed hour; the signal is
the hourly value, not a forecast.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

HOUR_S = 3600.0


def threshold_value(values: np.ndarray, threshold) -> float:
    """The threshold as a value: a number as given, or ``"pNN"``: the NN-th percentile of ``values`` (linear)."""
    if isinstance(threshold, str):
        return float(np.quantile(np.asarray(values, dtype=np.float64), int(threshold[1:]) / 100.0))
    return float(threshold)


class Shifting:
    """Held deferrable jobs of one run. ``hourly``: the signal per hour of the year (cyclic); ``offset_s``: seconds
    from 1 January 00:00 to the run's time 0; ``threshold``: a value in the signal's unit; ``max_delay_s`` [s]."""

    def __init__(self, hourly: np.ndarray, offset_s: float, threshold: float, max_delay_s: float):
        hourly = np.asarray(hourly, dtype=np.float64)
        self.n = len(hourly)
        self.offset_s = offset_s
        self.max_delay_s = max_delay_s
        self.threshold = threshold
        open_ = hourly <= threshold
        # hours from each hour of the year to the next open one (0: open itself; n: never open)
        wait = np.full(self.n, self.n, dtype=np.int64)
        if open_.any():
            ahead = self.n
            for h in range(2 * self.n - 1, -1, -1):
                ahead = 0 if open_[h % self.n] else ahead + 1
                if h < self.n:
                    wait[h] = ahead
        self.hours_to_open = wait
        self.heap: list[tuple[float, int]] = []
        self.next_s = math.inf
        self.held: dict[int, list] = {}  # job -> [arrival, release, released at an open hour (True) or max delay]

    def open_at_s(self, t: float) -> float:
        """The earliest time ≥ ``t`` inside an open hour (inf when no hour is open)."""
        x = (self.offset_s + t) / HOUR_S
        hour = math.floor(x + 1e-9)
        ahead = int(self.hours_to_open[hour % self.n])
        if ahead >= self.n:
            return math.inf
        if ahead == 0:
            return t
        return (hour + ahead) * HOUR_S - self.offset_s

    def hold(self, job: int, t: float) -> bool:
        """A deferrable job arrives at ``t``: hold it if its hour is closed; return whether it was held."""
        opens = self.open_at_s(t)
        if opens <= t:
            return False
        release = min(opens, t + self.max_delay_s)
        self.held[job] = [t, release, opens <= t + self.max_delay_s]
        heapq.heappush(self.heap, (release, job))
        self.next_s = self.heap[0][0]
        return True

    def fire(self, t: float) -> list[int]:
        """The held jobs whose release time has come by ``t``, in arrival order."""
        out = []
        while self.heap and self.heap[0][0] <= t:
            out.append(heapq.heappop(self.heap)[1])
        self.next_s = self.heap[0][0] if self.heap else math.inf
        return sorted(out)

    def outcome(self) -> dict:
        """Per held job: arrival [s], release [s], whether an open hour released it (else its maximum delay)."""
        jobs = sorted(self.held)
        rows = np.array([self.held[j] for j in jobs], dtype=np.float64).reshape(-1, 3)
        return {"job": np.array(jobs, dtype=np.int64), "arrival_s": rows[:, 0], "release_s": rows[:, 1],
                "opened": rows[:, 2].astype(bool)}
