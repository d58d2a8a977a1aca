"""Results of a request-level LLM service: counts that add up, latency percentiles, SLO, energy, cost."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.kernels.serving_reference import DONE, NOT_OFFERED
from sim.serving.accounting import STATUS_NAMES, busy_fraction, energy_and_cost, replica_seconds, request_counts
from sim.stats import percentile_summary

REQUEST_COLUMNS = ["service", "accelerator", "arrival_s", "prompt_tokens", "output_tokens", "first_token_s",
                   "finish_s", "state"]


def llm_summary(service, fleet, groups: list, result: dict, horizon_s: float) -> dict:
    """``summary["inference"][service]`` of a request-level service (see the README's output section)."""
    status, group_of = result["status"], result["group"]
    overall = _latency_summary(result, np.ones(len(status), dtype=bool), service.slo, horizon_s)
    summary = dict(overall)
    replica_s = replica_seconds(groups, result.get("switches"), fleet, horizon_s)
    summary["energy_per_1k_tokens_kwh"], summary["cost_per_1m_tokens_usd"] = energy_and_cost(
        groups, result["busy_chip_s"], fleet, horizon_s, summary["output_tokens"], replica_s)
    if any(fleet.pools[p.pool].shared for p in groups):
        summary["replica_hours"] = sum(replica_s) / 3600.0
    summary["requests"] = request_counts(status)
    summary["utilization"] = busy_fraction(groups, result["busy_chip_s"], horizon_s, replica_s)
    summary["fidelity"] = "request"
    summary["kv_peak_tokens"] = max(result["kv_peak"])
    summary["kv_capacity_tokens"] = min(p.kernel["kv_capacity_tokens"] for p in groups)
    by_accel: dict[str, list[int]] = {}
    for g, plan in enumerate(groups):
        by_accel.setdefault(fleet.pools[plan.pool].accelerator.id, []).append(g)
    summary["by_accelerator"] = {}
    for accel, gs in sorted(by_accel.items()):
        rows = np.isin(group_of, gs)
        summary["by_accelerator"][accel] = (
            {key: summary[key] for key in overall} if rows.all()  # one type served every request
            else _latency_summary(result, rows, service.slo, horizon_s))
    return summary


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


def _latency_summary(result, rows, slo, horizon_s: float) -> dict:
    requests, status = result["requests"], result["status"]
    done = rows & (status == DONE)
    arrival = requests["arrival_s"].to_numpy()
    outputs = requests["output_tokens"].to_numpy()
    ttft = result["first_token_s"] - arrival
    tpot = np.where(outputs > 1, (result["finish_s"] - result["first_token_s"]) / np.maximum(outputs - 1, 1), 0.0)
    offered = rows & (status != NOT_OFFERED)
    met = done.copy()
    if slo is not None:
        met &= (ttft <= slo.ttft_p99_ms / 1e3) & (tpot <= slo.tpot_p99_ms / 1e3)
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
