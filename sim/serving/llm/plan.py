"""Replica groups of an LLM service: each group's kernel parameters from the model and the chip.

Used by both fidelities: the request-level kernel and the fluid model read the same parameters (the
calibrated iteration model of ``sim.serving.iteration_model``, the KV capacity, the batching limits),
so the two fidelities differ only in how they serve, not in what a replica is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.catalog.efficiency import stack_efficiency
from sim.fleet.power_limit import clocked
from sim.kernels.serving_reference import (
    FLOAT_KEYS,
    ROUTER_CENTRAL,
    ROUTER_JSQ,
    ROUTER_LEAST_WORK,
    ROUTER_ROUND_ROBIN,
    ROUTER_SLO_AWARE,
    iteration_time_s,
    kv_capacity_tokens,
)
from sim.serving.activity import MEMORY_BOUND_ACTIVITY
from sim.serving.iteration_model import replica_iteration

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
    window: tuple[float, float] | None = None  # (from_s, until_s) when active only part of the run (sim.fleet.windows)
    availability: float = 1.0  # fluid fidelity: share of time a replica is up (sim.serving.failures.availability)
    clock: float = 1.0  # clock fraction of its chips (a throttled copy under a site cap, sim.serving.throttle)


def plan_groups(index: int, service, fleet, catalog, porting=(), clock: float = 1.0,
                only: int | None = None) -> list[GroupPlan]:
    """Kernel parameters of every replica group of LLM service number ``index`` (roofline per chip); with ``clock``
    < 1 the chips' compute rates are × ``clock`` (``sim.fleet.power_limit.clocked``), with ``only`` just that group."""
    pools = {p.name: p for p in fleet.pools}
    model = catalog.models[service.model]
    plans = []
    for g, group in enumerate(service.replicas):
        if only is not None and g != only:
            continue
        pool = pools[group.pool]
        chip = pool.accelerator if clock >= 1.0 else clocked(pool.accelerator, clock)
        efficiency = stack_efficiency(chip, service.software, porting)  # native: the chip's best stack
        chips = group.chips_per_replica
        params = dict(
            token_budget=group.token_budget, max_seqs=group.max_seqs, chunked_prefill=group.chunked_prefill,
            kv_capacity_tokens=kv_capacity_tokens(chips, chip.memory_gb * 1e9, 2.0 * model.params,
                                                  model.kv_bytes_per_token),
            memory_activity=MEMORY_BOUND_ACTIVITY, **replica_iteration(model, chip, chips, float(efficiency)))
        params["tokens_per_s"] = nominal_tokens_per_s(params)
        site = fleet.site
        params["usd_per_token"] = (pool.full_load_cost_usd_per_s(chips, site.pue, site.electricity_usd_per_kwh)
                                   / params["tokens_per_s"])
        plans.append(GroupPlan(index, g, pool.index, group.count, chips, params,
                               getattr(fleet, "group_windows", {}).get((index, g)), clock=clock))
    return plans


def nominal_tokens_per_s(params: dict) -> float:
    """A replica's decode throughput [tokens/s] at a full batch of requests holding ``REFERENCE_CONTEXT``
    tokens each (``max_seqs``, or fewer if the KV cache holds fewer): the speed that least-work routing
    divides outstanding tokens by, and the denominator of the cost per token slo-aware routing ranks by."""
    batch = max(1, min(params["max_seqs"], params["kv_capacity_tokens"] // REFERENCE_CONTEXT))
    row = np.array([float(params.get(k, 0.0)) for k in FLOAT_KEYS])
    context = batch * REFERENCE_CONTEXT
    return batch / iteration_time_s(batch, batch, context, context, row)
