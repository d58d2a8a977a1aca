"""Ranking (DLRM-class) services on dedicated replicas: plan every replica's parameters, build the
requests, serve them with dynamic batching in one kernel call per service.

A ranking service's replica groups reserve their chips exactly as LLM groups do (``sim.fleet.build``
reads every service's replicas). As with LLM services, all replicas of a service — on whatever chip
types — share one router, so one call of ``sim.kernels.serve_ranking`` serves the whole service with
per-replica parameter arrays (batch-time constants from ``sim.serving.ranking.model``, batching limits
from the group, and a cost rate for the slo-aware router).

Simplifications (stated in the README): traffic is synthetic (Poisson, optionally diurnal or bursty;
no public ranking trace format yet); a replica chip draws full power while its replica serves a batch
and idle power otherwise; the batch time is the uncalibrated model of ``ranking_model``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim import kernels
from sim.catalog.efficiency import stack_efficiency
from sim.fleet import Fleet
from sim.kernels.ranking_reference import (
    ROUTER_CENTRAL,
    ROUTER_JSQ,
    ROUTER_LEAST_WORK,
    ROUTER_ROUND_ROBIN,
    ROUTER_SLO_AWARE,
)
from sim.serving.activity import energy_weighted_s
from sim.serving.ranking.model import RankingCost, cost_per_s, ranking_cost
from sim.serving.traffic import expected_requests, poisson_arrivals
from sim.workload.distributions import sample
from sim.workload.memory import ensure_requests_fit

ROUTERS = {"round-robin": ROUTER_ROUND_ROBIN, "jsq": ROUTER_JSQ, "least-work": ROUTER_LEAST_WORK,
           "central": ROUTER_CENTRAL, "slo-aware": ROUTER_SLO_AWARE}
REJECT_REASON = "items-exceed-replica-memory"


@dataclass(frozen=True)
class RankingPlan:
    """One ranking service: its groups (pool, replicas, chips each, batch-time constants) and the kernel's
    per-replica arguments."""

    service: int
    pools: tuple[int, ...]
    replicas: tuple[int, ...]
    chips_per_replica: tuple[int, ...]
    costs: tuple[RankingCost, ...]
    group_of_replica: np.ndarray
    kernel: dict  # keyword arguments of serve_ranking except the request arrays and the horizon
    windows: tuple = ()  # per group: (from_s, until_s) when active only part of the run, else None
    availability: tuple = ()  # per group: share of time a replica is up (fluid, failures); (): always up

    def up(self, g: int) -> float:
        """Share of time group ``g``'s replicas are up (``sim.serving.failures.availability``; 1.0 without)."""
        return self.availability[g] if self.availability else 1.0


def plan_service(index: int, service, fleet: Fleet, catalog, porting=(), groups=None) -> RankingPlan:
    """Kernel parameters of ranking service number ``index``'s replicas, from the model and each group's chip;
    ``groups``: ``(replica group index, window)`` pairs to plan instead of every group with its own window (a
    serving-burst group left out, or planned once per rental window: ``sim.serving.burst``)."""
    pools = {p.name: p for p in fleet.pools}
    site = fleet.site
    model = catalog.models[service.model]
    if groups is None:
        groups = [(g, getattr(fleet, "group_windows", {}).get((index, g))) for g in range(len(service.replicas))]
    windows = tuple(window for _, window in groups)
    groups = [(service.replicas[g], pools[service.replicas[g].pool]) for g, _ in groups]
    costs, rates = [], []
    for group, pool in groups:
        efficiency = stack_efficiency(pool.accelerator, service.software, porting)
        costs.append(ranking_cost(model, pool.accelerator, group.chips_per_replica, efficiency))
        rates.append(cost_per_s(pool, group.chips_per_replica, site.pue, site.electricity_usd_per_kwh))
    counts = [group.count for group, _ in groups]
    per_replica = np.repeat(np.arange(len(groups)), counts)

    def spread(values, dtype=np.float64):
        return np.asarray(values, dtype=dtype)[per_replica]

    slo = service.slo
    slo_s = slo.latency_p99_ms / 1e3 * service.router.slo_headroom_frac if slo is not None else np.inf
    kernel = dict(
        router=ROUTERS[service.router.kind], slo_s=slo_s,
        overhead_s=spread([c.overhead_s for c in costs]),
        compute_s_per_item=spread([c.compute_s_per_item for c in costs]),
        weights_s=spread([c.weights_s for c in costs]),
        embedding_s_per_item=spread([c.embedding_s_per_item for c in costs]),
        max_batch=spread([g.max_batch for g, _ in groups], np.int64),
        max_delay_s=spread([g.max_queue_delay_ms / 1e3 for g, _ in groups]),
        max_items=spread([c.max_items for c in costs], np.int64),
        cost_per_s=spread(rates),
        active_from_s=spread([w[0] if w is not None else 0.0 for w in windows]),
        active_until_s=spread([w[1] if w is not None else np.inf for w in windows]),
        fail_s=np.zeros(0), back_s=np.zeros(0), fail_replica=np.zeros(0, dtype=np.int64))
    return RankingPlan(index, tuple(p.index for _, p in groups), tuple(counts),
                       tuple(g.chips_per_replica for g, _ in groups), tuple(costs), per_replica, kernel, windows)


def service_requests(service, horizon_s: float, rng: np.random.Generator, base_dir=None, start=None) -> pd.DataFrame:
    """Poisson arrivals over the horizon (diurnal or bursty, and grown, if asked; ``start`` dates growth
    points) with items per request drawn from the generator's distribution (rounded up, at least 1)."""
    gen = service.traffic.generator
    ensure_requests_fit(expected_requests(gen, horizon_s, start), f"service {service.name!r}")
    arrival = poisson_arrivals(gen, horizon_s, rng, start)
    n = len(arrival)
    return pd.DataFrame({
        "arrival_s": arrival,
        "items": np.maximum(1, np.ceil(sample(gen.items_per_request, n, rng, base_dir))).astype(np.int64),
        "source_row": np.arange(1, n + 1), "copy": np.zeros(n, dtype=np.int64)})


def failing_groups(plan: RankingPlan, first: int = 0) -> list["FailingGroup"]:
    """The plan's groups from number ``first`` on, whose replicas fail one by one (``sim.serving.failures``): on
    for the whole run, or while active (a windowed group, a serving-burst group's copies)."""
    windows = plan.windows or (None,) * len(plan.pools)
    return [FailingGroup(plan.service, g, pool, replicas, chips, window)
            for g, (pool, replicas, chips, window) in enumerate(zip(plan.pools, plan.replicas, plan.chips_per_replica,
                                                                     windows)) if g >= first]


@dataclass(frozen=True)
class FailingGroup:
    """A ranking replica group as ``sim.serving.failures.draw_outages`` reads it (``group``: index in the plan)."""

    service: int
    group: int
    pool: int
    replicas: int
    chips_per_replica: int
    window: tuple[float, float] | None = None  # (from_s, until_s): fails while active only (sim.fleet.windows)


def kernel_outages(plan: RankingPlan, outages: dict | None) -> dict:
    """The kernel's failure arguments from ``(service, group)`` -> rows ``(fail_s, back_s, replica)``: every
    group's outages with replicas numbered over the service, in time order (at one instant, group order)."""
    rows = [np.zeros((0, 3))]
    offset = 0
    for g, replicas in enumerate(plan.replicas):
        drawn = (outages or {}).get((plan.service, g))
        if drawn is not None and len(drawn):
            rows.append(drawn + np.array([0.0, 0.0, offset]))
        offset += replicas
    table = np.concatenate(rows)
    table = table[np.argsort(table[:, 0], kind="stable")]
    return dict(fail_s=np.ascontiguousarray(table[:, 0]), back_s=np.ascontiguousarray(table[:, 1]),
                fail_replica=table[:, 2].astype(np.int64))


def serve_service(plan: RankingPlan, service, horizon_s: float, bin_width_s: float,
                  rng: np.random.Generator, base_dir=None, start=None, outages: dict | None = None) -> dict:
    """Serve one ranking service (one kernel call): per-request arrays, the group each request ran on
    (-1 if none), busy and energy-weighted busy chip-seconds (``sim.serving.activity``: from the kernel's busy
    and compute seconds) per group and time bin, and batches per group. ``outages``: the service's
    drawn replica outages (``kernel_outages``; None: the run has no failures section); ``hit`` counts the
    failures that struck each request."""
    requests = service_requests(service, horizon_s, rng, base_dir, start)
    kernel = dict(plan.kernel)
    if outages:
        kernel.update(kernel_outages(plan, outages))
    status, replica, finish, busy, batches, hit, compute = kernels.serve_ranking(
        requests["arrival_s"].to_numpy(), requests["items"].to_numpy(), horizon_s=horizon_s,
        bin_width_s=bin_width_s, **kernel)
    group = np.where(replica >= 0, plan.group_of_replica[np.maximum(replica, 0)], -1)
    in_group = [plan.group_of_replica == g for g in range(len(plan.pools))]
    return {
        "requests": requests, "status": status, "replica": replica, "group": group, "finish_s": finish,
        "busy_chip_s": [busy[rows].sum(axis=0) * chips for rows, chips in zip(in_group, plan.chips_per_replica)],
        "energy_chip_s": [energy_weighted_s(busy[rows].sum(axis=0), compute[rows].sum(axis=0)) * chips
                          for rows, chips in zip(in_group, plan.chips_per_replica)],
        "batches": [int(batches[rows].sum()) for rows in in_group],
        "hit": hit, "failures_on": outages is not None,
        "outages": [None if outages is None else outages.get((plan.service, g)) for g in range(len(plan.pools))]}
