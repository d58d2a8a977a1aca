"""Results of a request-level LLM service: counts that add up, latency percentiles, SLO, energy, cost,
headroom — for the service and per accelerator type."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.fleet.windows import NO_REPLICA_ACTIVE
from sim.kernels.serving_reference import DONE, NOT_OFFERED, REJECTED
from sim.serving.accounting import (
    STATUS_NAMES,
    group_usage,
    groups_by_accelerator,
    replica_seconds,
    request_counts,
    serving_figures,
)
from sim.serving.failures import replica_seconds_down
from sim.serving.headroom import request_means, saturation_tokens_per_s
from sim.stats import percentile_summary

KV_REASON = "kv-need-exceeds-every-replica"
REPLICA_FAILED = "replica failed"  # lost: its replica failed and no other replica could take it
REQUEST_COLUMNS = ["service", "accelerator", "arrival_s", "prompt_tokens", "output_tokens", "first_token_s",
                   "finish_s", "state"]


def llm_summary(service, fleet, groups: list, result: dict, horizon_s: float) -> dict:
    """``summary["inference"][service]`` of a request-level service (see the README's output section)."""
    status, group_of = result["status"], result["group"]
    overall = _latency_summary(result, np.ones(len(status), dtype=bool), service.slo, horizon_s)
    replica_s = replica_seconds(groups, result.get("switches"), fleet, horizon_s)
    usages = _usages(groups, result, fleet, replica_s)
    summary = {**overall, **serving_figures(usages, overall["output_tokens"], horizon_s)}
    if any(fleet.pools[p.pool].shared for p in groups):
        summary["replica_hours"] = sum(replica_s) / 3600.0
    summary["requests"] = request_counts(status)
    if result.get("failures_on") or any(p.window is not None for p in groups):  # (not in runs without either)
        summary["rejected_reasons"] = rejected_reasons(groups, result)
    if result.get("failures_on"):  # (kept out of runs without a failures section)
        summary.update(failure_figures(groups, result, horizon_s))
    summary["fidelity"] = "request"
    summary["by_accelerator"] = {}
    for accel, gs in groups_by_accelerator(groups, fleet).items():
        rows = np.isin(group_of, gs)
        latency = ({key: overall[key] for key in overall} if rows.all()  # one type served every request
                   else _latency_summary(result, rows, service.slo, horizon_s))
        summary["by_accelerator"][accel] = {
            **latency, **serving_figures([usages[g] for g in gs], latency["output_tokens"], horizon_s)}
    return summary


def rejected_reasons(groups: list, result: dict) -> dict:
    """Rejected requests by reason: a KV need (prompt + output) above every replica's KV capacity, none of
    the replicas that could hold it active at its arrival (``NO_REPLICA_ACTIVE``, windowed groups), or lost
    when the replica holding it failed and no other could take it (``REPLICA_FAILED``)."""
    requests = result["requests"]
    rejected = result["status"] == REJECTED
    lost = rejected & (result["hit"] > 0) if "hit" in result else np.zeros(len(rejected), dtype=bool)
    need = requests["prompt_tokens"].to_numpy() + requests["output_tokens"].to_numpy()
    too_large = rejected & (need > max(int(p.kernel["kv_capacity_tokens"]) for p in groups))
    reasons = {KV_REASON: int(too_large.sum()), NO_REPLICA_ACTIVE: int((rejected & ~too_large & ~lost).sum()),
               REPLICA_FAILED: int(lost.sum())}
    return {reason: n for reason, n in reasons.items() if n}


def failure_figures(groups: list, result: dict, horizon_s: float) -> dict:
    """Replica failures of a service (``sim.serving.failures``): requests lost (rejected, ``REPLICA_FAILED``)
    and rerouted (struck at least once and then placed again), replica outages, and the share of its failing
    groups' active replica-seconds up (``replica_availability``: on all run, a windowed group's window, an autoscaled
    group's replicas while the autoscaler has them on; 1.0 without failing groups)."""
    hit = result["hit"] > 0
    lost = hit & (result["status"] == REJECTED)
    switches = result.get("switches") or [None] * len(groups)
    seconds = [replica_seconds_down(outages, plan.replicas, horizon_s, plan.window,
                                    events if plan.window is None else None)  # (down, active)
               for plan, outages, events in zip(groups, result["outages"], switches)]
    active = sum(a for _, a in seconds)
    return {"lost_requests": int(lost.sum()), "rerouted_requests": int((hit & ~lost).sum()),
            "replica_outages": int(sum(0 if o is None else len(o) for o in result["outages"])),
            "replica_availability": float(1.0 - sum(d for d, _ in seconds) / active) if active > 0 else 1.0}


def _usages(groups: list, result: dict, fleet, replica_s: list[float]) -> list:
    """Each group's ``GroupUsage``: saturation at the mean of the offered requests its KV cache holds,
    batch occupancy against the batch cap for those requests (``sim.serving.headroom``)."""
    requests = result["requests"]
    offered = result["status"] != NOT_OFFERED
    prompt = requests["prompt_tokens"].to_numpy()[offered].astype(np.float64)
    output = requests["output_tokens"].to_numpy()[offered].astype(np.float64)
    usages = []
    for g, plan in enumerate(groups):
        rate, cap = saturation_tokens_per_s(plan.kernel, request_means(plan.kernel, prompt, output))
        usages.append(group_usage(
            plan, fleet, result["busy_chip_s"][g], replica_s[g], saturation_tokens=rate * replica_s[g],
            batch_fill_s=result["batch_seq_s"][g] / cap, kv_token_s=result["kv_token_s"][g],
            kv_peak_tokens=result["kv_peak"][g], energy_chip_s=result["energy_chip_s"][g]))
    return usages


def llm_requests_table(service, fleet, groups: list, result: dict) -> pd.DataFrame:
    """One row per request of the service: where it ran, its times [s] and its final state."""
    # the last entry names requests never placed on a replica (group -1: rejected, or still centrally queued)
    accel = np.array([fleet.pools[p.pool].accelerator.id for p in groups] + [""], dtype=object)
    requests = result["requests"]
    return pd.DataFrame({
        "service": service.name,
        "accelerator": accel[result["group"]] if len(requests) else [],
        "arrival_s": requests["arrival_s"].to_numpy(),
        "prompt_tokens": requests["prompt_tokens"].to_numpy(),
        "output_tokens": requests["output_tokens"].to_numpy(),
        "first_token_s": result["first_token_s"],
        "finish_s": result["finish_s"],
        "state": pd.Series(result["status"]).map(STATUS_NAMES).to_numpy(),
    }, copy=False)


def slo_outcome(result, slo, rows=None) -> tuple:
    """Per request: (offered, met, done, ttft [s], tpot [s]); met = done within the SLO's TTFT and TPOT (done
    when there is no SLO). ``rows`` (a mask) restricts the first three."""
    requests, status = result["requests"], result["status"]
    rows = np.ones(len(status), dtype=bool) if rows is None else rows
    done = rows & (status == DONE)
    arrival = requests["arrival_s"].to_numpy()
    outputs = requests["output_tokens"].to_numpy()
    ttft = result["first_token_s"] - arrival
    tpot = np.where(outputs > 1, (result["finish_s"] - result["first_token_s"]) / np.maximum(outputs - 1, 1), 0.0)
    offered = rows & (status != NOT_OFFERED)
    met = done.copy()
    if slo is not None:
        met &= (ttft <= slo.ttft_p99_ms / 1e3) & (tpot <= slo.tpot_p99_ms / 1e3)
    return offered, met, done, ttft, tpot


def _latency_summary(result, rows, slo, horizon_s: float) -> dict:
    offered, met, done, ttft, tpot = slo_outcome(result, slo, rows)
    arrival = result["requests"]["arrival_s"].to_numpy()
    outputs = result["requests"]["output_tokens"].to_numpy()
    tokens = int(outputs[done].sum())
    return {
        "completed": int(done.sum()),
        "ttft_s": percentile_summary(ttft[done]),
        "tpot_s": percentile_summary(tpot[done & (outputs > 1)]),
        "e2e_s": percentile_summary((result["finish_s"] - arrival)[done]),
        "slo_attainment": float(met.sum() / offered.sum()) if slo is not None and offered.any() else None,
        "goodput_rps": float(met.sum() / horizon_s) if slo is not None else None,
        "output_tokens": tokens,
        "tokens_per_s": tokens / horizon_s,
    }
