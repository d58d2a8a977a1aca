"""Steady-state micro-simulation metamodel of a ranking service, for the fluid fidelity's poor cells.

Where the fluid model's analytic waits are known poor (a work- or count-aware router - ``least-work``, ``jsq``,
``central``, ``slo-aware`` - over several groups of different chips, or with batching, ``max_batch`` > 1; or
``round-robin`` over several groups of different chips with batching), the
fluid fidelity asks this module for each distinct load level instead: the service's request-level kernel
(``sim.kernels.serve_ranking``, its own replicas, router and batching) runs on a short synthetic steady
stream - Poisson arrivals at that rate, items drawn from the service's distribution (``max(1, ceil(X))``),
``MICRO_QUERIES`` measured queries after a warm-up share ``MICRO_WARMUP`` - and its measured figures replace
the analytic ones: each group's share of the queries, busy fraction, mean batch, and latency quantiles
(``MICRO_EDGES``; the fluid summary's mixture takes each slice uniform between its quantiles, shifted so the
mixture keeps the measured mean). Load levels sit on a relative grid of ``MICRO_STEP`` (5 %) in the offered
rate; a bin between two grid points mixes their figures linearly (weights by its position in log rate).

Simplification: the steady state of each level is assumed reached within the bin (no transient between
levels); levels at or above ``MICRO_CEILING`` of the service's fluid capacity (under round-robin, of the rate
that fills its first group to capacity, as each replica takes an equal share) are not simulated - the fluid
backlog model carries the queue there, and their in-service latency is that of the highest simulated level.
Each grid point's stream is seeded from one seed drawn from the run's ``ranking`` stream and the point's grid
code, so a point's figures do not depend on which other points a run needs.
"""

from __future__ import annotations

import numpy as np

from sim import kernels
from sim.kernels.serving_reference import DONE
from sim.workload.distributions import sample

MICRO_QUERIES = 8_000  # measured queries per load level
MICRO_WARMUP = 0.2  # share of the stream discarded first (the queues start empty)
MICRO_STEP = 0.05  # relative grid of the offered rate
MICRO_CEILING = 0.97  # share of the fluid capacity above which levels are not simulated
MICRO_EDGES = np.concatenate((np.linspace(0.0, 0.9, 19), [0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999, 1.0]))
POOR_ROUTERS = ("least-work", "jsq", "central", "slo-aware")


def poor_cell(plan, router: str) -> bool:
    """Whether the analytic fluid waits are known poor for this service: a work- or count-aware router over
    several groups of different chips, or with batching; round-robin over several groups of different chips
    with batching (``docs/inference.md``)."""
    mixed = len({c for c in plan.costs}) > 1
    batching = int(np.max(plan.kernel["max_batch"])) > 1
    if router == "round-robin":
        return bool(mixed and batching)
    if router not in POOR_ROUTERS:
        return False
    return bool(mixed or batching)


def grid_position(rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower grid code and the linear weight of the upper one, per rate (> 0) [queries/s]."""
    x = np.log(np.maximum(rate, 1e-300)) / np.log1p(MICRO_STEP)
    low = np.floor(x)
    return low.astype(np.int64), x - low


def grid_rate(code: np.ndarray) -> np.ndarray:
    return np.exp(np.asarray(code, dtype=np.float64) * np.log1p(MICRO_STEP))


def simulate_level(plan, dist, rate: float, seed: int, code: int, base_dir, slo_s,
                   queries: int = MICRO_QUERIES) -> dict:
    """One load level: the request-level kernel on a steady Poisson stream of ``rate`` [queries/s]. Per group:
    ``share`` of the measured completed queries, ``rho`` busy fraction of its replicas, ``batch`` mean queries
    per batch, ``quantiles`` [s] at ``MICRO_EDGES``, ``mean`` [s], ``met`` share within ``slo_s``."""
    rng = np.random.default_rng([seed, code & ((1 << 62) - 1), int(code < 0)])
    n = int(np.ceil(queries / (1.0 - MICRO_WARMUP)))
    arrival = np.cumsum(rng.exponential(1.0 / rate, n))
    items = np.maximum(1, np.ceil(sample(dist, n, rng, base_dir))).astype(np.int64)
    last = float(arrival[-1])
    width = last / 50.0
    kernel_args = dict(plan.kernel)
    kernel_args["active_from_s"] = np.zeros_like(kernel_args["active_from_s"])
    kernel_args["active_until_s"] = np.full_like(kernel_args["active_until_s"], np.inf)
    status, replica, finish, busy, batches = kernels.serve_ranking(
        arrival, items, horizon_s=2.0 * last, bin_width_s=width, **kernel_args)
    warm = int(n * MICRO_WARMUP)
    done = status == DONE
    measured = done.copy()
    measured[:warm] = False
    group = np.where(replica >= 0, plan.group_of_replica[np.maximum(replica, 0)], -1)
    latency = finish - arrival
    b0, b1 = int(np.ceil(arrival[warm] / width)), int(np.floor(last / width))
    groups = len(plan.pools)
    out = {"share": np.zeros(groups), "rho": np.zeros(groups), "batch": np.ones(groups),
           "quantiles": np.zeros((groups, len(MICRO_EDGES))), "mean": np.zeros(groups), "met": np.ones(groups)}
    total = max(int(measured.sum()), 1)
    for g in range(groups):
        rows = plan.group_of_replica == g
        mine = measured & (group == g)
        out["share"][g] = mine.sum() / total
        out["rho"][g] = float(busy[rows, b0:b1].sum()) / (rows.sum() * max(b1 - b0, 1) * width)
        out["batch"][g] = max(float((done & (group == g)).sum()) / max(int(batches[rows].sum()), 1), 1.0)
        if mine.any():
            lat = latency[mine]
            out["quantiles"][g] = np.quantile(lat, MICRO_EDGES)
            out["mean"][g] = float(lat.mean())
            out["met"][g] = float(np.mean(lat <= slo_s)) if slo_s is not None else 1.0
    out["rho"] = np.minimum(out["rho"], 1.0)
    return out


def micro_table(plan, dist, codes: np.ndarray, seed: int, base_dir, slo_s) -> dict:
    """``simulate_level`` at each grid code (stacked along the first axis)."""
    levels = [simulate_level(plan, dist, float(grid_rate(c)), seed, int(c), base_dir, slo_s) for c in codes]
    return {key: np.stack([level[key] for level in levels]) for key in levels[0]}
