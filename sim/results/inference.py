"""Per-service results of inference serving: counts that add up, latency percentiles, SLO, cost."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.kernels.serving_reference import DONE, NOT_OFFERED, REJECTED, UNFINISHED
from sim.results.compute import _stats
from sim.results.fluid import fluid_summary

STATUS_NAMES = {DONE: "completed", UNFINISHED: "unfinished", REJECTED: "rejected", NOT_OFFERED: "not-offered"}


def service_summaries(scenario, fleet, plans, served) -> dict:
    """``summary["inference"]``: one entry per service (see the README's output section)."""
    horizon_s = float(scenario.duration)
    out = {}
    for s, service in enumerate(scenario.workloads.inference):
        if service.family == "ranking":
            continue  # sim.results.ranking
        result, groups = served[s], [p for p in plans if p.service == s]
        if result.get("fidelity") == "fluid":
            out[service.name] = fluid_summary(service, fleet, groups, result, horizon_s)
            continue
        status, group_of = result["status"], result["group"]
        overall = _latency_summary(result, np.ones(len(status), dtype=bool), service.slo, horizon_s)
        summary = dict(overall)
        replica_s = _replica_seconds(groups, result.get("switches"), fleet, horizon_s)
        summary["energy_per_1k_tokens_kwh"], summary["cost_per_1m_tokens_usd"] = energy_and_cost(
            groups, result["busy_chip_s"], fleet, horizon_s, summary["output_tokens"], replica_s)
        if any(fleet.pools[p.pool].shared for p in groups):
            summary["replica_hours"] = sum(replica_s) / 3600.0
        summary["requests"] = {"offered": int((status != NOT_OFFERED).sum()), "completed": int((status == DONE).sum()),
                               "rejected": int((status == REJECTED).sum()),
                               "unfinished": int((status == UNFINISHED).sum()),
                               "not_offered": int((status == NOT_OFFERED).sum())}
        summary["utilization"] = busy_fraction(groups, result["busy_chip_s"], horizon_s, replica_s)
        summary["fidelity"] = "request"
        summary["kv_peak_tokens"] = max(result["kv_peak"])
        summary["kv_capacity_tokens"] = min(p.kernel["kv_capacity_tokens"] for p in groups)
        by_accel = {}
        for g, plan in enumerate(groups):
            accel = fleet.pools[plan.pool].accelerator.id
            by_accel.setdefault(accel, []).append(g)
        summary["by_accelerator"] = {}
        for accel, gs in sorted(by_accel.items()):
            rows = np.isin(group_of, gs)
            summary["by_accelerator"][accel] = (
                {key: summary[key] for key in overall} if rows.all()  # one type served every request
                else _latency_summary(result, rows, service.slo, horizon_s))
        out[service.name] = summary
    return out


def requests_table(scenario, fleet, plans, served) -> pd.DataFrame:
    """One row per request of every service: where it ran, its times [s] and its final state."""
    frames = []
    for s, service in enumerate(scenario.workloads.inference):
        if service.family == "ranking":
            continue  # sim.results.ranking
        result, groups = served[s], [p for p in plans if p.service == s]
        # the last entry names requests never placed on a replica (group -1: rejected, or still centrally queued)
        accel = np.array([fleet.pools[p.pool].accelerator.id for p in groups] + [""], dtype=object)
        if result.get("fidelity") == "fluid":
            continue  # no requests are simulated one by one
        requests = result["requests"]
        frames.append(pd.DataFrame({
            "service": service.name,
            "accelerator": accel[result["group"]] if len(requests) else [],
            "arrival_s": requests["arrival_s"].to_numpy(),
            "prompt_tokens": requests["prompt_tokens"].to_numpy(),
            "output_tokens": requests["output_tokens"].to_numpy(),
            "first_token_s": result["first_token_s"],
            "finish_s": result["finish_s"],
            "state": pd.Series(result["status"]).map(STATUS_NAMES).to_numpy(),
        }, copy=False))
    columns = ["service", "accelerator", "arrival_s", "prompt_tokens", "output_tokens", "first_token_s",
               "finish_s", "state"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


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
        "ttft_s": _stats(ttft[done]),
        "tpot_s": _stats(tpot[done & (outputs > 1)]),
        "e2e_s": _stats((result["finish_s"] - arrival)[done]),
        "slo_attainment": float(met.sum() / offered.sum()) if slo is not None and offered.any() else None,
        "goodput_rps": float(met.sum() / horizon_s) if slo is not None else None,
        "output_tokens": tokens,
        "tokens_per_s": tokens / horizon_s,
    }


def busy_fraction(groups, busy_chip_s, horizon_s: float, replica_s: list[float] | None = None) -> float:
    """Busy fraction of the service's replica chips: chip-seconds iterating over chip-seconds of active
    replicas (the same definition for both fidelities; ``replica_s`` as ``_replica_seconds``)."""
    if replica_s is None:
        replica_s = [p.replicas * horizon_s for p in groups]
    active = sum(seconds * p.chips_per_replica for p, seconds in zip(groups, replica_s))
    # at most 1: a replica switched off drains its last requests after its active time ends
    return min(1.0, float(sum(float(b.sum()) for b in busy_chip_s) / active)) if active > 0 else 0.0


def _replica_seconds(groups, switches, fleet, horizon_s: float) -> list[float]:
    """Active replica-seconds of each group while its pool is online (every replica, without switches)."""
    out = []
    for g, plan in enumerate(groups):
        online_s = fleet.pools[plan.pool].online_from_s
        switch = switches[g] if switches else None
        if switch is None:  # every replica, whenever its pool is online
            out.append(plan.replicas * max(0.0, horizon_s - online_s))
        else:
            out.append(switch.replica_seconds(min(online_s, horizon_s), horizon_s))
    return out


def energy_and_cost(groups, busy_chip_s, fleet, horizon_s: float, tokens: int,
                    replica_s: list[float] | None = None) -> tuple[float | None, float | None]:
    """Facility energy and cost of the service's replica chips: idle power while active and online, plus
    the full-load increment while iterating; chip cost (capex or rental) for every active online hour
    (chips lent to training are charged to no one here). ``replica_s`` defaults to every replica for
    the whole time its pool is online."""
    if replica_s is None:
        replica_s = _replica_seconds(groups, None, fleet, horizon_s)
    site = fleet.site
    energy_kwh = cost_usd = 0.0
    for plan, busy, seconds in zip(groups, busy_chip_s, replica_s):
        pool = fleet.pools[plan.pool]
        chip_hours = seconds * plan.chips_per_replica / 3600.0
        joules = (chip_hours * 3600.0 * pool.idle_w_with_server
                  + float(busy.sum()) * (pool.busy_w_with_server - pool.idle_w_with_server))
        kwh = joules * site.pue / 3.6e6
        energy_kwh += kwh
        cost_usd += chip_hours * pool.chip_cost_usd_per_hour + kwh * site.electricity_usd_per_kwh
    if tokens == 0:
        return None, None
    return energy_kwh / tokens * 1e3, cost_usd / tokens * 1e6
