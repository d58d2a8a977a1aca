"""Summary of a fluid-fidelity inference service, in the shape of the request-level one.

Counts are expected values rounded to whole requests (completed is what is left after rejected and
unfinished, so the counts add up to offered). Latency statistics come from the mixture of the groups'
components (``sim.serving.fluid.serve``): the mean in closed form, p50/p90/p99 by inverting the mixture CDF.
``requests.csv`` has no rows for fluid services.
"""

from __future__ import annotations

import numpy as np

from sim.kernels.fluid import mixture_mean, mixture_quantiles
from sim.serving.accounting import busy_fraction, energy_and_cost

PERCENTILES = (0.5, 0.9, 0.99)
LATENCY_KEYS = ("completed", "ttft_s", "tpot_s", "e2e_s", "slo_attainment", "goodput_rps", "output_tokens",
                "tokens_per_s")
ARGS = ("weight", "shift", "spread", "exp_mass", "exp_rate", "uniform_mass", "uniform_low", "uniform_high")


def fluid_summary(service, fleet, groups: list, result: dict, horizon_s: float) -> dict:
    """``summary["inference"][service]`` for a fluid service: counts, latency, SLO, tokens, energy and cost,
    utilization, and the latency figures per accelerator type."""
    parts = result["groups"]
    summary = _latency_summary(parts, service.slo, horizon_s, result["rejected"])
    summary["energy_per_1k_tokens_kwh"], summary["cost_per_1m_tokens_usd"] = energy_and_cost(
        groups, result["busy_chip_s"], fleet, horizon_s, summary["output_tokens"])
    rejected = round(result["rejected"])
    offered = round(float(np.sum(result["offered_per_bin"])))
    unfinished = min(round(sum(g["unfinished"] for g in parts)), offered - rejected)
    summary["requests"] = {"offered": offered, "completed": offered - rejected - unfinished, "rejected": rejected,
                           "unfinished": unfinished, "not_offered": int(result["not_offered"])}
    summary["utilization"] = busy_fraction(groups, result["busy_chip_s"], horizon_s)
    summary["fidelity"] = "fluid"
    summary["kv_peak_tokens"] = max(result["kv_peak"])
    summary["kv_capacity_tokens"] = min(p.kernel["kv_capacity_tokens"] for p in groups)
    by_accel: dict[str, list] = {}
    for plan, part in zip(groups, parts):
        by_accel.setdefault(fleet.pools[plan.pool].accelerator.id, []).append(part)
    summary["by_accelerator"] = {accel: _latency_summary(chosen, service.slo, horizon_s) if len(by_accel) > 1
                                 else {key: summary[key] for key in LATENCY_KEYS}  # the service's own figures
                                 for accel, chosen in sorted(by_accel.items())}
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
