"""Inference services: plan the replica groups, build their requests, serve them.

On a dedicated pool a service's replica groups each reserve ``count × chips_per_replica`` chips for the
whole run (``sim.fleet.allocation.reserve``); training sees only what is left. On a shared pool an
autoscaled group holds ``min_count`` replicas and the cluster places the others as
``sim.engine.autoscale`` turns them on. All replicas of a service, on whatever chip types, are served by
one call of the request-level kernel (``sim.kernels.serve_llm``) over the horizon, so the service's
router chooses among accelerator types request by request, among the replicas active at that time.
A service with ``fidelity: fluid`` goes through the fluid model of ``sim.engine.fluid`` instead.
The autoscaler decides from the requests alone, so serving needs no SimPy process even on shared
pools.

Simplifications (stated in the README): a replica chip draws full power while its replica iterates
and idle power otherwise (busy time per time bin comes from the kernel); the site-cap reservation and
the reported peak count replica chips at full load; iteration times come from the calibrated model of
``sim.engine.iteration_model`` (its docstring states its fidelity and limits).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim import kernels
from sim.engine.fluid import serve_fluid
from sim.engine.iteration_model import replica_iteration
from sim.engine.prepare import efficiency_matrix
from sim.fleet import Fleet
from sim.kernels.serving_reference import (
    FLOAT_KEYS,
    ROUTER_CENTRAL,
    ROUTER_JSQ,
    ROUTER_LEAST_WORK,
    ROUTER_ROUND_ROBIN,
    ROUTER_SLO_AWARE,
    iteration_time_s,
    kv_capacity_tokens,
    replica_tables,
)
from sim.workload.distributions import sample
from sim.workload.requests import read_azure_llm, read_mooncake, scale_requests

REFERENCE_CONTEXT = 1024  # tokens of context per request for the nominal decode rate (routing only)
ROUTERS = {"round-robin": ROUTER_ROUND_ROBIN, "jsq": ROUTER_JSQ, "least-work": ROUTER_LEAST_WORK,
           "central": ROUTER_CENTRAL, "slo-aware": ROUTER_SLO_AWARE}


@dataclass(frozen=True)
class GroupPlan:
    service: int
    group: int
    pool: int
    replicas: int
    chips_per_replica: int
    kernel: dict  # one replica's parameters: serving_reference.INT_KEYS and FLOAT_KEYS


def plan_groups(scenario, fleet: Fleet, catalog) -> list[GroupPlan]:
    """Kernel parameters of every replica group, from the model and the chip (roofline)."""
    pools = {p.name: p for p in fleet.pools}
    plans = []
    for s, service in enumerate(scenario.workloads.inference):
        if service.family == "ranking":
            continue  # sim.engine.ranking
        model = catalog.models[service.model]
        for g, group in enumerate(service.replicas):
            pool = pools[group.pool]
            chip = pool.accelerator
            efficiency = efficiency_matrix(np.array([service.stack]), [chip], scenario.porting)[0, 0]
            chips = group.chips_per_replica
            params = dict(
                token_budget=group.token_budget, max_seqs=group.max_seqs, chunked_prefill=group.chunked_prefill,
                kv_capacity_tokens=kv_capacity_tokens(chips, chip.memory_gb * 1e9, 2.0 * model.params,
                                                      model.kv_bytes_per_token),
                **replica_iteration(model, chip, chips, float(efficiency)))
            params["tokens_per_s"] = nominal_tokens_per_s(params)
            site = fleet.site
            params["usd_per_token"] = (pool.full_load_cost_usd_per_s(chips, site.pue, site.electricity_usd_per_kwh)
                                       / params["tokens_per_s"])
            plans.append(GroupPlan(s, g, pool.index, group.count, chips, params))
    return plans


def nominal_tokens_per_s(params: dict) -> float:
    """A replica's decode throughput [tokens/s] at a full batch of requests holding ``REFERENCE_CONTEXT``
    tokens each (``max_seqs``, or fewer if the KV cache holds fewer): the speed that least-work routing
    divides outstanding tokens by, and the denominator of the cost per token slo-aware routing ranks by."""
    batch = max(1, min(params["max_seqs"], params["kv_capacity_tokens"] // REFERENCE_CONTEXT))
    row = np.array([float(params.get(k, 0.0)) for k in FLOAT_KEYS])
    context = batch * REFERENCE_CONTEXT
    return batch / iteration_time_s(batch, batch, context, context, row)


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
        "source_row": np.arange(1, n + 1), "copy": np.zeros(n, dtype=np.int64)}, copy=False)


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
        if result is None:
            continue  # a ranking service
        for plan, busy in zip([p for p in plans if p.service == s], result["busy_chip_s"]):
            by_pool[plan.pool] = by_pool.get(plan.pool, 0) + busy
    return by_pool


def build_requests(scenario, base_dir: Path, rng: np.random.Generator) -> list[pd.DataFrame | None]:
    """Per service, its request table (``None`` for ranking services, served by ``sim.engine.ranking``,
    and for fluid ones, which never draw requests one by one)."""
    horizon = float(scenario.duration)
    return [service_requests(service, base_dir, horizon, rng) if _request_level(service) else None
            for service in scenario.workloads.inference]


def _request_level(service) -> bool:
    return service.family == "llm" and service.fidelity == "request"


def kernel_switches(groups: list[GroupPlan], switches) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The service's switch events over its replicas (groups' replicas numbered in order) for the kernel.

    Every replica starts active in the kernel; an autoscaled group's replicas are first switched off at
    t = 0 and then follow the autoscaler's events (its t = 0 block turns on the initial ones)."""
    times, replicas, on, offset = [np.zeros(0)], [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=bool)], 0
    for plan in groups:
        events = None if switches is None else switches.get((plan.service, plan.group))
        if events is not None:
            times += [np.zeros(plan.replicas), events.switch_s]
            replicas += [offset + np.arange(plan.replicas), offset + events.switch_replica]
            on += [np.zeros(plan.replicas, dtype=bool), events.switch_on]
        offset += plan.replicas
    t = np.concatenate(times)
    order = np.argsort(t, kind="stable")  # at one instant: the group order above, offs before ons
    return t[order], np.concatenate(replicas)[order], np.concatenate(on)[order]


def serve(scenario, fleet: Fleet, plans: list[GroupPlan], requests_by_service: list[pd.DataFrame | None],
          base_dir: Path, rng: np.random.Generator, switches=None) -> list[dict | None]:
    """Serve every LLM service with one kernel call over all its replicas (the router picks among them,
    only active replicas take new requests); per service, per-request arrays and the group each
    request went to (-1: never placed). ``switches`` maps ``(service, group)`` to the autoscaler's
    ``GroupSwitches``. Fluid services: per-group counts, busy time and latency components from
    ``sim.engine.fluid`` (its traffic drawn from ``rng``); ranking services: ``None``."""
    horizon = float(scenario.duration)
    results = []
    for s, service in enumerate(scenario.workloads.inference):
        groups = [p for p in plans if p.service == s]
        if service.family == "ranking":
            results.append(None)  # sim.engine.ranking
            continue
        if service.fidelity == "fluid":
            results.append(serve_fluid(scenario, service, groups, base_dir, rng))
            continue
        requests = requests_by_service[s]
        replica_int, replica_float = replica_tables([(p.replicas, p.kernel) for p in groups])
        group_of_replica = np.repeat(np.arange(len(groups)), [p.replicas for p in groups])
        slo, headroom = service.slo, service.router.slo_headroom_frac
        status, replica, first, finish, kv_peak, busy = kernels.serve_llm(
            requests["arrival_s"].to_numpy(), requests["prompt_tokens"].to_numpy(),
            requests["output_tokens"].to_numpy(), replica_int, replica_float, ROUTERS[service.router.kind],
            slo.ttft_p99_ms / 1e3 * headroom if slo is not None else np.inf,
            slo.tpot_p99_ms / 1e3 * headroom if slo is not None else np.inf,
            *kernel_switches(groups, switches), horizon_s=horizon,
            bin_width_s=float(scenario.outputs.timeseries_interval))
        group_of = np.where(replica >= 0, group_of_replica[np.maximum(replica, 0)], -1)
        per_group = [group_of_replica == g for g in range(len(groups))]
        results.append({
            "requests": requests, "group": group_of, "status": status, "first_token_s": first, "finish_s": finish,
            "kv_peak": [int(kv_peak[rows].max()) for rows in per_group],
            "busy_chip_s": [busy[rows].sum(axis=0) * p.chips_per_replica for rows, p in zip(per_group, groups)],
            "switches": [None if switches is None else switches.get((p.service, p.group)) for p in groups]})
    return results
