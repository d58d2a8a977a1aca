"""Serving burst: rent a replica group on an on-demand rented pool only while its service misses its SLO.

A replica group with ``burst`` (``sim.scenario.inference_schema.ServingBurst``) is modelled reactively, in
two passes over the same traffic (LLM and ranking services, both fidelities; ranking: ``ranking/family.py``):

1. **Without it.** The service is served by its other groups. Per decision interval ``I`` (from t = 0), the
   SLO attainment of the requests *arriving* in it is ``met / offered``: at the fluid fidelity from the fluid
   bins' ``met_per_bin`` and ``offered_per_bin`` (a bin counted in the interval that holds its start), at the
   request level from the served requests (met: done within the TTFT and TPOT targets, ranking: within
   ``latency_p99_ms``, as the summary's attainment); an interval with no arrival meets the SLO.
2. **Rentals.** An interval ``k`` whose attainment is below ``slo_attainment_below`` asks for the group at its
   end, ``(k + 1)·I``; the replicas take requests ``provisioning_delay`` later, for ``min_rental``:
   ``[(k + 1)·I + delay, (k + 1)·I + delay + min_rental)``. Rentals that overlap or touch merge into one
   window (so a run of low intervals extends the rental while attainment stays low), cut to the run and to
   the pool's online window.
3. **With it.** The service is served again with the group active in those windows (one windowed group per
   window, ``sim.fleet.windows``: it takes requests while rented and drains what it holds after).

The decision sees the first pass only, the previous interval's attainment without the burst group: the
rented replicas do not shorten their own rental (a real controller that watches the improved attainment
would release sooner and rent again, flapping). Provisioning is free; the pool's online chips are the
windows × the group's chips (``ResolvedPool.with_realised_steps``), which the ledger charges at the pool's
on-demand rate. Deterministic: both passes serve the same traffic (request level: the same drawn requests;
fluid: the first pass draws from a copy of the stream).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sim.serving.failures import draw_outages


def interval_attainment(edges: np.ndarray, offered: np.ndarray, met: np.ndarray, interval_s: float,
                        horizon_s: float) -> np.ndarray:
    """SLO attainment [-] of the arrivals in each interval ``[k·I, (k+1)·I)`` that starts before the horizon
    (a fluid bin counts in the interval holding its start; 1.0 where nothing arrived)."""
    n = max(1, int(np.ceil(horizon_s / interval_s - 1e-9)))
    k = np.minimum((np.asarray(edges[:-1], dtype=np.float64) // interval_s).astype(np.int64), n - 1)
    offered_k = np.bincount(k, weights=offered, minlength=n)[:n]
    met_k = np.bincount(k, weights=met, minlength=n)[:n]
    return np.divide(met_k, offered_k, out=np.ones(n), where=offered_k > 0)


def request_attainment(arrival_s: np.ndarray, offered: np.ndarray, met: np.ndarray, interval_s: float,
                       horizon_s: float) -> np.ndarray:
    """SLO attainment [-] of the requests arriving in each interval (request level): ``offered`` and ``met``
    are per-request masks."""
    n = max(1, int(np.ceil(horizon_s / interval_s - 1e-9)))
    k = np.clip((np.asarray(arrival_s, dtype=np.float64) // interval_s).astype(np.int64), 0, n - 1)
    offered_k = np.bincount(k[offered], minlength=n)[:n].astype(np.float64)
    met_k = np.bincount(k[offered & met], minlength=n)[:n].astype(np.float64)
    return np.divide(met_k, offered_k, out=np.ones(n), where=offered_k > 0)


def rental_windows(attainment: np.ndarray, config, limit: tuple[float, float]) -> list[tuple[float, float]]:
    """Merged rental windows ``(from_s, until_s)`` of a burst group (module docstring), cut to ``limit``
    (the run and the pool's online window); empty windows are dropped."""
    windows: list[list[float]] = []
    for k in np.flatnonzero(attainment < config.slo_attainment_below).tolist():
        begin = (k + 1) * config.interval + config.provisioning_delay
        end = begin + config.min_rental
        if windows and begin <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], end)
        else:
            windows.append([begin, end])
    cut = [(max(b, limit[0]), min(e, limit[1])) for b, e in windows]
    return [(b, e) for b, e in cut if b < e]


def realised_steps(windows: list[tuple[float, float]], chips: int, limit: tuple[float, float]):
    """The pool's online chips over its windows, in ``ResolvedPool.chip_steps`` form (last count 0)."""
    if not windows:
        return (limit[0], limit[1]), (0, 0)
    times, counts = [], []
    for begin, end in windows:
        times += [begin, end]
        counts += [chips, 0]
    return tuple(times), tuple(counts)


def rental_outages(context, copies: list, outages: dict | None) -> dict | None:
    """``outages`` (``(service, group)`` -> rows, ``sim.serving.failures``) with those of a burst group's rented
    ``copies`` (``GroupPlan``-like, each windowed over its rental) added: drawn once the rentals are known, from the
    run's ``serving_failures`` stream after the stage's draw (services in order), each copy failing while rented
    as a windowed group. The cloud replaces a failed server after the class's repair time; a replica still in repair
    when its rental ends is simply not there any more (its pool is online only while rented). ``None`` (no
    failures section): unchanged."""
    if context.failures is None or outages is None or not copies:
        return outages
    return {**outages, **draw_outages(copies, context.failures, context.fleet, context.horizon_s,
                                      context.failure_rng)}


def burst_summary(windows: list[tuple[float, float]], replicas: int, chips_per_replica: int,
                  usd_per_chip_hour: float) -> dict:
    """``summary.inference.<service>.burst``: rentals, rented replica-hours, rental cost (rented chip-hours ×
    the pool's on-demand rate) and the windows [s from the start]."""
    hours = sum(e - b for b, e in windows) / 3600.0
    return {"rentals": len(windows), "rented_replica_hours": hours * replicas,
            "rental_usd": hours * replicas * chips_per_replica * usd_per_chip_hour,
            "windows_s": [[float(b), float(e)] for b, e in windows]}


class BurstGroups:
    """Mixed into the LLM families: the service's burst group (at most one, validation) is held out of
    ``scaled_groups`` until served; ``add_windows`` then appends one windowed copy of it per rental window,
    numbered after the service's groups."""

    burst_plan = None
    burst_windows: list = []

    def hold_out_burst(self, plans: list) -> list:
        """``plans`` without the burst group (kept as ``burst_plan``)."""
        bursting = [g for g, group in enumerate(self.service.replicas) if group.burst is not None]
        self.burst_plan = plans[bursting[0]] if bursting else None
        self.burst_windows = []
        return [plan for g, plan in enumerate(plans) if g not in bursting]

    @property
    def burst_config(self):
        return self.service.replicas[self.burst_plan.group].burst

    def burst_limit(self) -> tuple[float, float]:
        """The part of the run the burst group's pool is online [s]."""
        return self.context.fleet.pools[self.burst_plan.pool].online_window(self.context.horizon_s)

    def add_windows(self, attainment: np.ndarray) -> list:
        """Rent from the first pass's per-interval ``attainment``: sets ``burst_windows``, appends the copies to
        ``scaled_groups`` and returns them."""
        self.burst_windows = rental_windows(attainment, self.burst_config, self.burst_limit())
        n = max([len(self.service.replicas)] + [plan.group + 1 for plan in self.scaled_groups])  # after any copy
        copies = [replace(self.burst_plan, group=n + k, window=window) for k, window in enumerate(self.burst_windows)]
        self.scaled_groups = self.scaled_groups + copies
        return copies

    def burst_rentals(self) -> list[tuple]:
        if self.burst_plan is None:
            return []
        plan = self.burst_plan
        return [(plan.pool, realised_steps(self.burst_windows, plan.replicas * plan.chips_per_replica,
                                           self.burst_limit()))]

    def with_burst_summary(self, summary: dict) -> dict:
        if self.burst_plan is not None:
            plan = self.burst_plan
            summary["burst"] = burst_summary(self.burst_windows, plan.replicas, plan.chips_per_replica,
                                             self.context.fleet.pools[plan.pool].chip_cost_usd_per_hour)
        return summary
