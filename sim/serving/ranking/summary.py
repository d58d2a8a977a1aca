"""Per-service results of ranking services: counts that add up, latency, SLO, throughput, energy, cost and
performance per watt — for the service and per accelerator type.

Energy of a group's chips: idle power (with the server share) for every online second, plus the
full-load increment times the batch's activity while a replica serves it (energy-weighted busy seconds,
``sim.serving.activity``: a batch of few items, memory-bound, draws about half of it). Every energy figure of
a ranking service is IT energy (facility energy is IT energy × the site's PUE, which only the cost
counts): ``it_energy_per_1k_requests_kwh``; ``items_per_it_joule`` divides completed items by the
groups' IT energy (the measured perf/W at this load, idle time included); ``peak_items_per_s_per_kw`` is
what the hardware gives at full batches: items/s of a replica at ``max_batch`` requests of the mean
size, over its chips' IT power at that batch's activity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.fleet.windows import NO_REPLICA_ACTIVE
from sim.kernels.serving_reference import DONE, NOT_OFFERED, REJECTED
from sim.serving.accounting import STATUS_NAMES, request_counts
from sim.serving.activity import activity
from sim.serving.failures import replica_seconds_down
from sim.serving.ranking.serve import REJECT_REASON
from sim.stats import percentile_summary as _stats

REPLICA_FAILED = "replica failed"  # lost: its replica failed and no other replica could take it
STATE_BY_STATUS = np.array([STATUS_NAMES[k] for k in sorted(STATUS_NAMES)], dtype=object)


def ranking_summary(plan, service, fleet, result: dict, horizon_s: float) -> dict:
    """``summary["inference"][service]`` of a ranking service (see the README's output section)."""
    summary = _group_summary(plan, result, range(len(plan.pools)), service.slo, fleet, horizon_s)
    summary["requests"] = request_counts(result["status"])
    summary["rejected_reasons"] = _rejected_reasons(plan, result)
    if result.get("failures_on"):  # (kept out of runs without a failures section)
        summary.update(failure_figures(plan, result, horizon_s))
    summary["family"] = "ranking"
    by_accel: dict[str, list[int]] = {}
    for g, pool in enumerate(plan.pools):
        by_accel.setdefault(fleet.pools[pool].accelerator.id, []).append(g)
    summary["by_accelerator"] = {
        accel: _group_summary(plan, result, gs, service.slo, fleet, horizon_s)
        for accel, gs in sorted(by_accel.items())}
    return summary


def _rejected_reasons(plan, result: dict) -> dict:
    """Rejected requests by reason: more items than any replica holds, (windowed groups, failed replicas) none
    that could run it up and in its window at its arrival (``NO_REPLICA_ACTIVE``), or lost when the replica
    holding it failed and no other could take it (``REPLICA_FAILED``)."""
    rejected = result["status"] == REJECTED
    lost = rejected & (result["hit"] > 0) if "hit" in result else np.zeros(len(rejected), dtype=bool)
    too_large = rejected & (result["requests"]["items"].to_numpy() > plan.kernel["max_items"].max())
    reasons = {REJECT_REASON: int(too_large.sum()), NO_REPLICA_ACTIVE: int((rejected & ~too_large & ~lost).sum()),
               REPLICA_FAILED: int(lost.sum())}
    return {reason: n for reason, n in reasons.items() if n}


def failure_figures(plan, result: dict, horizon_s: float) -> dict:
    """Replica failures of a ranking service (``sim.serving.failures``): queries lost (rejected,
    ``REPLICA_FAILED``) and rerouted (struck at least once and then placed again), replica outages, and the
    share of its groups' active replica-seconds up (a windowed group's over its window; 1.0 without any)."""
    hit = result["hit"] > 0
    lost = hit & (result["status"] == REJECTED)
    rows = list(zip(plan.replicas, result["outages"], plan.windows or (None,) * len(plan.replicas)))
    seconds = [replica_seconds_down(o, n, horizon_s, w) for n, o, w in rows]  # (down, active) per group
    active = sum(a for _, a in seconds)
    return {"lost_requests": int(lost.sum()), "rerouted_requests": int((hit & ~lost).sum()),
            "replica_outages": int(sum(0 if o is None else len(o) for _, o, _ in rows)),
            "replica_availability": float(1.0 - sum(d for d, _ in seconds) / active) if active > 0 else 1.0}


def ranking_requests_table(plan, service, fleet, result: dict) -> pd.DataFrame:
    """One row per ranking request, in the columns of the LLM request table plus ``items`` (token and
    first-token columns are empty)."""
    accel = np.array([fleet.pools[p].accelerator.id for p in plan.pools] + [""], dtype=object)
    requests = result["requests"]
    n = len(requests)
    return pd.DataFrame({
        "service": service.name,
        "accelerator": accel[result["group"]] if n else [],
        "arrival_s": requests["arrival_s"].to_numpy(),
        "prompt_tokens": np.full(n, np.nan), "output_tokens": np.full(n, np.nan),
        "first_token_s": np.full(n, np.nan), "finish_s": result["finish_s"],
        "state": STATE_BY_STATUS[result["status"]],
        "items": requests["items"].to_numpy()})


def _group_summary(plan, result, groups, slo, fleet, horizon_s: float) -> dict:
    """Latency, SLO, throughput, energy, cost and perf/W over the requests served by ``groups``."""
    groups = list(groups)
    status, items = result["status"], result["requests"]["items"].to_numpy()
    mine = np.isin(result["group"], groups)
    done = mine & (status == DONE)
    latency = (result["finish_s"] - result["requests"]["arrival_s"].to_numpy())[done]
    met = int((latency <= slo.latency_p99_ms / 1e3).sum()) if slo is not None else None
    # offered requests never placed (rejected) belong to no group; count them against the service only
    offered = int((mine & (status != NOT_OFFERED)).sum()) if len(groups) < len(plan.pools) else int(
        (status != NOT_OFFERED).sum())
    n_done, n_items = int(done.sum()), int(items[done].sum())
    it_j, cost_usd, peak = _energy_cost(plan, result, groups, fleet, horizon_s, items)
    return {
        "completed": n_done,
        "latency_s": _stats(latency),
        "slo_attainment": met / offered if met is not None and offered else None,
        "goodput_rps": met / horizon_s if met is not None else None,
        "items_per_s": n_items / horizon_s,
        "it_energy_per_1k_requests_kwh": it_j / 3.6e6 / n_done * 1e3 if n_done else None,
        "cost_per_1m_requests_usd": cost_usd / n_done * 1e6 if n_done else None,
        "items_per_it_joule": n_items / it_j if it_j > 0 else None,
        "peak_items_per_s_per_kw": peak,
        "batches": sum(result["batches"][g] for g in groups),
        "embedding_sram_hit_rate": {fleet.pools[plan.pools[g]].name: plan.costs[g].hit_rate for g in groups},
    }


def _energy_cost(plan, result, groups, fleet, horizon_s: float, items) -> tuple[float, float, float]:
    """IT energy [J], chip + facility energy cost [USD] of the groups' replicas (idle, plus the full-load increment
    over their energy-weighted busy chip-seconds, ``sim.serving.activity``), and their best perf/W at full batches
    [items/s per kW of IT power while serving them: idle + the increment × a full batch's activity]."""
    site = fleet.site
    mean_items = float(items.mean()) if len(items) else 1.0
    it_j = cost_usd = 0.0
    peak_items_per_s = peak_w = 0.0
    for g in groups:
        pool = fleet.pools[plan.pools[g]]
        chips = plan.replicas[g] * plan.chips_per_replica[g]
        window = plan.windows[g] if plan.windows else None  # a windowed group's chips count while it is active
        online_s = pool.online_seconds(horizon_s) if window is None else window[1] - window[0]
        joules = (chips * online_s * pool.idle_w_with_server
                  + float(result["energy_chip_s"][g].sum()) * (pool.busy_w_with_server - pool.idle_w_with_server))
        it_j += joules
        cost_usd += chips * online_s / 3600.0 * pool.chip_cost_usd_per_hour \
            + joules * site.pue / 3.6e6 * site.electricity_usd_per_kwh
        batch_items = int(plan.kernel["max_batch"][plan.group_of_replica == g][0] * mean_items)
        batch_items = max(1, min(batch_items, plan.costs[g].max_items))
        batch_s = plan.costs[g].batch_time_s(batch_items)
        peak_items_per_s += plan.replicas[g] * batch_items / batch_s
        full = float(activity(plan.costs[g].compute_s_per_item * batch_items, batch_s))
        peak_w += chips * (pool.idle_w_with_server + full * (pool.busy_w_with_server - pool.idle_w_with_server))
    return it_j, cost_usd, peak_items_per_s / (peak_w / 1e3)
