"""Summary of a fluid-fidelity inference service, in the shape of the request-level one.

Counts are expected values rounded to whole requests (completed is what is left after rejected and
unfinished, so the counts add up to offered). Latency statistics come from the mixture of the groups'
components (``sim.serving.fluid.serve``): the mean in closed form, p50/p90/p99 by inverting the mixture CDF.
Energy, cost, busy fraction and headroom come from each group's amounts (``sim.serving.accounting``), as
at the request level: saturation is the chain's capacity, batch occupancy and KV occupancy the bin-mean
batches. ``requests.csv`` has no rows for fluid services.
"""

from __future__ import annotations

import numpy as np

from sim.fleet.windows import NO_REPLICA_ACTIVE
from sim.kernels.fluid import mixture_mean, mixture_quantiles
from sim.serving.accounting import group_usage, groups_by_accelerator, replica_seconds, serving_figures
from sim.serving.llm.summary import KV_REASON

PERCENTILES = (0.5, 0.9, 0.99)
LATENCY_KEYS = ("completed", "ttft_s", "tpot_s", "e2e_s", "slo_attainment", "goodput_rps", "output_tokens",
                "tokens_per_s")
ARGS = ("weight", "shift", "spread", "exp_mass", "exp_rate", "uniform_mass", "uniform_low", "uniform_high")


def fluid_summary(service, fleet, groups: list, result: dict, horizon_s: float) -> dict:
    """``summary["inference"][service]`` for a fluid service: counts, latency, SLO, tokens, energy and cost,
    utilization and headroom, and all but the counts again per accelerator type."""
    parts = result["groups"]
    summary = _latency_summary(parts, service.slo, horizon_s, result["rejected"])
    replica_s = replica_seconds(groups, None, fleet, horizon_s)
    usages = [group_usage(plan, fleet, busy, seconds, saturation_tokens=part["saturation_tokens"],
                          batch_fill_s=part["batch_fill_s"], kv_token_s=part["kv_token_s"],
                          kv_peak_tokens=part["kv_peak_tokens"], energy_chip_s=energy)
              for plan, part, busy, energy, seconds in zip(groups, parts, result["busy_chip_s"],
                                                           result["energy_chip_s"], replica_s)]
    summary.update(serving_figures(usages, summary["output_tokens"], horizon_s))
    rejected = round(result["rejected"])
    offered = round(float(np.sum(result["offered_per_bin"])))
    unfinished = min(round(sum(g["unfinished"] for g in parts)), offered - rejected)
    summary["requests"] = {"offered": offered, "completed": offered - rejected - unfinished, "rejected": rejected,
                           "unfinished": unfinished, "not_offered": int(result["not_offered"])}
    if result.get("windowed"):  # (kept out of runs without windows: their summary is unchanged)
        inactive = min(round(result["rejected_inactive"]), rejected)
        reasons = {KV_REASON: rejected - inactive, NO_REPLICA_ACTIVE: inactive}
        summary["rejected_reasons"] = {reason: n for reason, n in reasons.items() if n}
    summary["fidelity"] = "fluid"
    by_accel = groups_by_accelerator(groups, fleet)
    summary["by_accelerator"] = {}
    for accel, gs in by_accel.items():
        latency = (_latency_summary([parts[g] for g in gs], service.slo, horizon_s) if len(by_accel) > 1
                   else {key: summary[key] for key in LATENCY_KEYS})  # the service's own figures
        summary["by_accelerator"][accel] = {
            **latency, **serving_figures([usages[g] for g in gs], latency["output_tokens"], horizon_s)}
    return summary


def _latency_summary(parts: list[dict], slo, horizon_s: float, rejected: float = 0.0) -> dict:
    """Latency, SLO and token figures of some groups; SLO attainment is over the requests routed to them
    plus ``rejected`` (the service's rejections count for the service, not for an accelerator type)."""
    offered = sum(g["offered"] for g in parts) + rejected
    met = sum(g["met"] for g in parts)
    tokens = round(sum(g["output_tokens"] for g in parts))
    return {
        "completed": round(sum(g["completed"] for g in parts)),
        "ttft_s": _stats(parts, "ttft"),
        "tpot_s": _stats(parts, "tpot"),
        "e2e_s": _stats(parts, "e2e"),
        "slo_attainment": float(met / offered) if slo is not None and offered > 0 else None,
        "goodput_rps": float(met / horizon_s) if slo is not None else None,
        "output_tokens": tokens,
        "tokens_per_s": tokens / horizon_s,
    }


def _stats(parts: list[dict], metric: str) -> dict[str, float | None]:
    arrays = [np.concatenate([g[metric][name] for g in parts]) for name in ARGS]
    if arrays[0].sum() <= 0:
        return {"mean": None, "p50": None, "p90": None, "p99": None}
    p50, p90, p99 = mixture_quantiles(PERCENTILES, *arrays)
    return {"mean": mixture_mean(*arrays), "p50": float(p50), "p90": float(p90), "p99": float(p99)}
