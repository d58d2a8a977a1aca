"""Run times that change while ports ramp up: one run-time matrix per porting epoch (``porting[]`` with a
``start`` or a ``ramp``; ``sim.catalog.efficiency.port_epochs``).

What is modelled: the efficiency of a ported stack on a chip is a step function of time (nothing before the
port's start, then monthly ramp steps). A job's run time on such a pool is the one of the epoch in which it
**starts** (a documented simplification: a running job keeps its start-time efficiency; a job preempted and
restarted later runs what is left of it at the efficiency of its restart). Which pools a job may use is
decided by the epoch of its **arrival** (a second simplification: a job submitted before a port's start
never uses that port; it keeps the pools its stack ran on when it was submitted), so eligibility and the wait
queue's job shapes stay fixed for the run. Only pools whose run times differ between epochs keep per-epoch
columns; a run without dated ports prepares one matrix as before and pays nothing more.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from sim.catalog.efficiency import port_epochs, ports_at


@dataclass
class PortRamps:
    """Per-epoch run times of the pools that ports change. ``epochs_s``: the instants (after 0) at which a new
    epoch begins [s]; ``by_pool``: pool index -> N × (len(epochs_s) + 1) run times [s] (inf where the pool
    cannot take the job in that epoch)."""

    epochs_s: list[float]
    by_pool: dict[int, np.ndarray]

    def epoch(self, t_s: float) -> int:
        return bisect.bisect_right(self.epochs_s, t_s)

    def full_time_s(self, job: int, pool: int, t_s: float, duration: np.ndarray) -> float:
        """Run time [s] of ``job`` on ``pool`` if it starts at ``t_s``; ``duration`` (the arrival-epoch matrix)
        for pools no port changes."""
        table = self.by_pool.get(pool)
        if table is None:
            return duration.item(job, pool)
        return table.item(job, bisect.bisect_right(self.epochs_s, t_s))


def run_times_by_epoch(run_times, arrival_s: np.ndarray, porting, start, horizon_s: float, ok_status: int):
    """``run_times(grants) -> (duration N×P, status N×P)`` once per porting epoch; returns the duration and
    status of each job's arrival epoch and the ``PortRamps`` of the pools that change (None without dated
    ports)."""
    epochs = port_epochs(porting, start, horizon_s) if porting else []
    if not epochs:
        duration, status = run_times(ports_at(porting, 0.0, start))
        return duration, status, None
    per_epoch = [run_times(ports_at(porting, t, start)) for t in [0.0, *epochs]]
    durations = np.stack([np.where(s == ok_status, d, np.inf) for d, s in per_epoch])  # E × N × P
    statuses = np.stack([s for _, s in per_epoch])
    arrival_epoch = np.searchsorted(np.asarray(epochs), arrival_s, side="right")
    rows = np.arange(len(arrival_s))
    duration = np.stack([d for d, _ in per_epoch])[arrival_epoch, rows]
    status = statuses[arrival_epoch, rows]
    changing = np.flatnonzero(((durations != durations[:1]) & ~(np.isnan(durations))).any(axis=(0, 1)))
    by_pool = {int(p): np.ascontiguousarray(durations[:, :, p].T) for p in changing}
    return duration, status, PortRamps(epochs_s=list(epochs), by_pool=by_pool) if by_pool else None
