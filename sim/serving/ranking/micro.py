"""Steady-state micro-simulation metamodel of a ranking service, for the fluid fidelity's poor cells.

Where the fluid model's analytic waits are known poor (a work- or count-aware router - ``least-work``, ``jsq``,
``central``, ``slo-aware`` - over several groups of different chips, or with batching, ``max_batch`` > 1; or
``round-robin`` over several groups of different chips with batching), the
fluid fidelity asks this module for each distinct load level instead: the service's request-level kernel
(``sim.kernels.serve_ranking``, its own replicas, router and batching) runs on a short synthetic steady
stream - Poisson arrivals at that rate conditioned on their count, items from the service's distribution
(``max(1, ceil(X))``) stratified, ``MICRO_QUERIES`` measured queries after a warm-up share ``MICRO_WARMUP``,
more near saturation until the mean latency's relative standard error (batch means) is ``MICRO_TARGET_SE``,
at most ``MICRO_MAX_QUERIES`` - and its measured figures replace
the analytic ones: each group's share of the queries, busy fraction, mean batch, and latency quantiles
(``MICRO_EDGES``; the fluid summary's mixture takes each slice uniform between its quantiles, shifted so the
mixture keeps the measured mean). Load levels sit on a relative grid of ``MICRO_STEP`` (5 %) in the offered
rate, ``MICRO_FINE`` times finer (1 %) from ``MICRO_FINE_FROM`` (80 %) of the ceiling rate on, where the waits
climb steeply; a bin between two grid points mixes their figures linearly (weights by its position in log rate).

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

MICRO_QUERIES = 8_000  # measured queries per load level
MICRO_WARMUP = 0.2  # share of the stream discarded first (the queues start empty)
MICRO_STEP = 0.05  # relative grid of the offered rate
MICRO_TARGET_SE = 0.02  # relative standard error of a level's mean latency beyond which it is run longer
MICRO_MAX_QUERIES = 256_000  # measured queries of a level run longer, at most
MICRO_RERUN = 1.5  # margin on the queries a rerun takes (a short run's error estimate is itself noisy)
SE_BATCHES = 20  # batch means of the standard error estimate
MICRO_CEILING = 0.97  # share of the fluid capacity above which levels are not simulated
MICRO_FINE = 5  # grid steps per MICRO_STEP near saturation
MICRO_FINE_FROM = 0.8  # share of the ceiling rate from which every fine grid step is simulated
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


def grid_code(rate: float) -> int:
    """The highest grid code (in fine steps, ``MICRO_STEP`` / ``MICRO_FINE``) at or below ``rate`` (> 0)."""
    return int(np.floor(np.log(rate) / (np.log1p(MICRO_STEP) / MICRO_FINE)))


def grid_position(rate: np.ndarray, fine_from: float, top: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower and upper grid codes and the linear weight of the upper one, per rate (> 0) [queries/s]: coarse
    points (every ``MICRO_FINE``-th code) below ``fine_from`` [queries/s], every code from it on; codes above
    ``top`` are not used (a rate at or beyond it takes ``top``)."""
    x = np.log(np.maximum(rate, 1e-300)) / (np.log1p(MICRO_STEP) / MICRO_FINE)
    fine = rate >= fine_from
    low = np.where(fine, np.floor(x), np.floor(x / MICRO_FINE) * MICRO_FINE)
    low = np.minimum(low, top)
    high = np.minimum(low + np.where(fine, 1, MICRO_FINE), top)
    frac = np.divide(x - low, high - low, out=np.zeros_like(x), where=high > low)
    return low.astype(np.int64), high.astype(np.int64), np.clip(frac, 0.0, 1.0)


def grid_rate(code: np.ndarray) -> np.ndarray:
    """Rate [queries/s] of grid ``code`` (coarse points exactly ``(1 + MICRO_STEP)^k``)."""
    coarse, rest = np.divmod(np.asarray(code, dtype=np.int64), MICRO_FINE)
    step = np.log1p(MICRO_STEP)
    return np.exp(coarse * step) * np.where(rest > 0, np.exp(rest * step / MICRO_FINE), 1.0)


def simulate_level(plan, pmf: np.ndarray, rate: float, seed: int, code: int, slo_s,
                   queries: int = MICRO_QUERIES) -> dict:
    """One load level: the request-level kernel on a steady Poisson stream of ``rate`` [queries/s], items
    from ``pmf`` (P(items = k) for the counts some replica can run; the rest of the mass is a count none can,
    rejected by the kernel). Two variance reductions, neither changing the expected figures: the arrivals are
    a Poisson stream conditioned on its count (``n`` arrivals over exactly ``n / rate`` seconds) and the items
    are stratified (one uniform draw in each of ``n`` equal-probability strata, in random order), so the
    stream's load is the level's. Per group: ``share`` of the measured completed queries, ``rho`` busy
    fraction of its replicas, ``batch`` mean queries per batch, ``quantiles`` [s] at ``MICRO_EDGES``,
    ``mean`` [s], ``met`` share within ``slo_s``; and ``rel_se``, the relative standard error of the service's
    mean latency (batch means over ``SE_BATCHES`` consecutive runs of measured queries); ``queries``."""
    coarse, rest = divmod(code, MICRO_FINE)
    key = [coarse & ((1 << 62) - 1), int(coarse < 0)] + ([rest] if rest else [])
    rng = np.random.default_rng([seed, *key])
    n = int(np.ceil(queries / (1.0 - MICRO_WARMUP)))
    gaps = rng.exponential(1.0, n)
    arrival = np.cumsum(gaps) * (n / rate / gaps.sum())
    strata = (rng.permutation(n) + rng.random(n)) / n
    items = np.searchsorted(np.cumsum(pmf), strata, side="right").astype(np.int64)
    items = np.maximum(items, 1)
    last = float(arrival[-1])
    width = last / 50.0
    kernel_args = dict(plan.kernel)
    kernel_args["active_from_s"] = np.zeros_like(kernel_args["active_from_s"])
    kernel_args["active_until_s"] = np.full_like(kernel_args["active_until_s"], np.inf)
    status, replica, finish, busy, batches, _, _ = kernels.serve_ranking(
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
    out["rel_se"] = _relative_se(latency[measured])
    out["queries"] = queries
    return out


def _relative_se(latency: np.ndarray) -> float:
    """Relative standard error of the mean of ``latency`` (in arrival order) by batch means: ``SE_BATCHES``
    consecutive runs, whose means are taken independent (0 with too few queries to tell)."""
    size = len(latency) // SE_BATCHES
    if size < 2:
        return 0.0
    means = latency[:size * SE_BATCHES].reshape(SE_BATCHES, size).mean(axis=1)
    return float(means.std(ddof=1) / np.sqrt(SE_BATCHES) / max(float(latency.mean()), 1e-300))


def level(plan, pmf: np.ndarray, rate: float, seed: int, code: int, slo_s) -> dict:
    """``simulate_level`` with ``MICRO_QUERIES``; where the mean latency's relative standard error is above
    ``MICRO_TARGET_SE`` (near saturation, where queues are long and correlated), the level is run again with
    the queries that would bring it to the target (standard error ∝ 1/√queries), and again while it is still
    above (batch means of a short run understate a long-correlated queue's error), at most
    ``MICRO_MAX_QUERIES``."""
    queries = MICRO_QUERIES
    out = simulate_level(plan, pmf, rate, seed, code, slo_s, queries)
    while out["rel_se"] > MICRO_TARGET_SE and queries < MICRO_MAX_QUERIES:
        wanted = MICRO_RERUN * queries * (out["rel_se"] / MICRO_TARGET_SE) ** 2
        queries = min(MICRO_MAX_QUERIES, int(np.ceil(wanted)))
        out = simulate_level(plan, pmf, rate, seed, code, slo_s, queries)
    return out


def micro_table(plan, pmf: np.ndarray, codes: np.ndarray, seed: int, slo_s) -> dict:
    """``level`` at each grid code (stacked along the first axis)."""
    levels = [level(plan, pmf, float(grid_rate(c)), seed, int(c), slo_s) for c in codes]
    keys = [key for key in levels[0] if key not in ("rel_se", "queries")]
    return {key: np.stack([figures[key] for figures in levels]) for key in keys}
