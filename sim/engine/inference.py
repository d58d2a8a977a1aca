"""Inference services on dedicated replicas: plan the replica groups, build their requests, serve them.

A service's replica groups each reserve ``count × chips_per_replica`` chips of one pool for the whole
run (``sim.fleet.allocation.reserve``); training sees only what is left. Requests are split across a
service's groups in proportion to each group's peak rate (replicas × chips × FLOP/s × efficiency), then
every group runs the request-level kernel (``sim.kernels.serve_llm``) over the horizon — or, for a
service with ``fidelity: fluid``, the fluid model of ``sim.engine.fluid``. Dedicated
replicas do not interact with training, so no SimPy process is needed yet; shared pools will need the
windowed form described in ``docs/inference-plan.md``.

Simplifications (stated in the README): a replica chip draws full power while its replica iterates
and idle power otherwise (busy time per time bin comes from the kernel); the site-cap reservation and
the reported peak count replica chips at full load; the iteration model is the uncalibrated roofline
of ``serving_reference.iteration_time_s`` with ``MEMORY_EFFICIENCY`` and ``OVERHEAD_S`` below.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim import kernels
from sim.engine.fluid import serve_fluid
from sim.engine.prepare import efficiency_matrix
from sim.fleet import Fleet
from sim.kernels.serving_reference import (
    ROUTER_CENTRAL,
    ROUTER_JSQ,
    ROUTER_LEAST_WORK,
    ROUTER_ROUND_ROBIN,
    kv_capacity_tokens,
)
from sim.workload.distributions import sample
from sim.workload.requests import read_azure_llm, read_mooncake, scale_requests

MEMORY_EFFICIENCY = 0.8  # estimate: fraction of HBM bandwidth a decode step reaches
OVERHEAD_S = 0.003       # estimate: fixed cost per iteration (scheduling, kernel launches)
ROUTERS = {"round-robin": ROUTER_ROUND_ROBIN, "jsq": ROUTER_JSQ, "least-work": ROUTER_LEAST_WORK,
           "central": ROUTER_CENTRAL}


@dataclass(frozen=True)
class GroupPlan:
    service: int
    group: int
    pool: int
    replicas: int
    chips_per_replica: int
    kernel: dict  # keyword arguments of serve_llm except the request arrays and the horizon


def plan_groups(scenario, fleet: Fleet, catalog) -> list[GroupPlan]:
    """Kernel parameters of every replica group, from the model and the chip (roofline)."""
    pools = {p.name: p for p in fleet.pools}
    plans = []
    for s, service in enumerate(scenario.workloads.inference):
        model = catalog.models[service.model]
        for g, group in enumerate(service.replicas):
            pool = pools[group.pool]
            chip = pool.accelerator
            efficiency = efficiency_matrix(np.array([service.stack]), [chip], scenario.porting)[0, 0]
            chips = group.chips_per_replica
            plans.append(GroupPlan(s, g, pool.index, group.count, chips, dict(
                n_replicas=group.count, router=ROUTERS[service.router.kind], token_budget=group.token_budget,
                max_seqs=group.max_seqs, chunked_prefill=group.chunked_prefill,
                kv_capacity_tokens=kv_capacity_tokens(chips, chip.memory_gb * 1e9, 2.0 * model.params,
                                                      model.kv_bytes_per_token),
                flop_per_token=2.0 * model.params, flops_per_s=chips * chip.peak_flops * efficiency,
                weight_bytes=2.0 * model.params, kv_bytes_per_token=model.kv_bytes_per_token,
                bytes_per_s=chips * chip.memory_bandwidth_tbps * 1e12 * MEMORY_EFFICIENCY, overhead_s=OVERHEAD_S)))
    return plans


def reservations(plans: list[GroupPlan]) -> list[tuple[int, int, int]]:
    """(pool, chips per replica, replicas) of every group, for the allocators."""
    return [(p.pool, p.chips_per_replica, p.replicas) for p in plans]


def service_requests(service, base_dir: Path, horizon_s: float, rng: np.random.Generator) -> pd.DataFrame:
    """The service's request table: a scaled, offset trace, or Poisson arrivals over the horizon."""
    from sim.workload import resolve_trace_path

    traffic = service.traffic
    if traffic.trace is not None:
        trace = traffic.trace
        path = resolve_trace_path(trace.path, base_dir)
        reader = read_azure_llm if trace.format == "azure-llm-2023" else read_mooncake
        requests = scale_requests(reader(path, trace.limit), trace.scale, rng)
        requests["arrival_s"] = requests["arrival_s"] + trace.start_offset
        return requests
    gen = traffic.generator
    arrival = poisson_arrivals(gen, horizon_s, rng)
    n = len(arrival)
    return pd.DataFrame({
        "arrival_s": arrival,
        "prompt_tokens": np.maximum(1, np.ceil(sample(gen.prompt_tokens, n, rng))).astype(np.int64),
        "output_tokens": np.maximum(1, np.ceil(sample(gen.output_tokens, n, rng))).astype(np.int64),
        "source_row": np.arange(1, n + 1), "copy": np.zeros(n, dtype=np.int64)})


def poisson_arrivals(gen, horizon_s: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times [s] over [0, horizon): homogeneous Poisson, or modulated by a diurnal or bursty
    pattern. Diurnal: thinning of a Poisson process at the peak rate (Lewis–Shedler), with hour 0 at
    the scenario's start date's midnight. Bursty: a two-state Markov-modulated Poisson process."""
    rate = gen.rate_per_s
    if gen.bursty is not None:
        b = gen.bursty
        burst_share = b.mean_burst_s / (b.mean_burst_s + b.mean_calm_s)
        calm_rate = rate / (1.0 - burst_share + b.burst_factor * burst_share)
        pieces, t, bursting = [], 0.0, False
        while t < horizon_s:
            length = rng.exponential(b.mean_burst_s if bursting else b.mean_calm_s)
            end = min(t + length, horizon_s)
            level = calm_rate * (b.burst_factor if bursting else 1.0)
            count = int(rng.poisson(level * (end - t)))
            pieces.append(rng.uniform(t, end, count))
            t, bursting = end, not bursting
        return np.sort(np.concatenate(pieces)) if pieces else np.zeros(0)
    peak = rate * (1.0 + (gen.diurnal.amplitude_frac if gen.diurnal is not None else 0.0))
    arrival = np.sort(rng.uniform(0.0, horizon_s, int(rng.poisson(peak * horizon_s))))
    if gen.diurnal is None:
        return arrival  # a Poisson process, conditioned on its count
    d = gen.diurnal
    hour = (arrival / 3600.0) % 24.0
    level = rate * (1.0 + d.amplitude_frac * np.cos(2 * np.pi * (hour - d.peak_hour) / 24.0))
    return arrival[rng.random(len(arrival)) < level / peak]


def busy_chip_seconds_by_pool(plans: list[GroupPlan], served: list[dict]) -> dict[int, np.ndarray]:
    """Chip-seconds of inference iterations per time bin, summed over the replica groups of each pool."""
    by_pool: dict[int, np.ndarray] = {}
    for s, result in enumerate(served):
        for plan, busy in zip([p for p in plans if p.service == s], result["busy_chip_s"]):
            by_pool[plan.pool] = by_pool.get(plan.pool, 0) + busy
    return by_pool


def serve(scenario, fleet: Fleet, plans: list[GroupPlan], base_dir: Path, rng: np.random.Generator) -> list[dict]:
    """Serve every service; per service, per-request arrays and the group each request went to (fluid
    services: per-group counts, busy time and latency components from ``sim.engine.fluid``)."""
    horizon = float(scenario.duration)
    results = []
    for s, service in enumerate(scenario.workloads.inference):
        groups = [p for p in plans if p.service == s]
        if service.fidelity == "fluid":
            results.append(serve_fluid(scenario, service, groups, base_dir, rng))
            continue
        requests = service_requests(service, base_dir, horizon, rng)
        weight = np.array([p.replicas * p.kernel["flops_per_s"] for p in groups])
        group_of = rng.choice(len(groups), size=len(requests), p=weight / weight.sum())
        n = len(requests)
        out = {"requests": requests, "group": group_of, "status": np.empty(n, dtype=np.int8),
               "first_token_s": np.full(n, np.nan), "finish_s": np.full(n, np.nan), "kv_peak": [],
               "busy_chip_s": []}
        for g, plan in enumerate(groups):
            rows = np.flatnonzero(group_of == g)
            status, _, first, finish, kv_peak, busy = kernels.serve_llm(
                requests["arrival_s"].to_numpy()[rows], requests["prompt_tokens"].to_numpy()[rows],
                requests["output_tokens"].to_numpy()[rows], horizon_s=horizon,
                bin_width_s=float(scenario.outputs.timeseries_interval), **plan.kernel)
            out["status"][rows], out["first_token_s"][rows], out["finish_s"][rows] = status, first, finish
            out["kv_peak"].append(int(kv_peak.max()) if len(kv_peak) else 0)
            out["busy_chip_s"].append(busy.sum(axis=0) * plan.chips_per_replica)  # per time bin
        results.append(out)
    return results
