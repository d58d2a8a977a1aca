"""From the ledger to the run's money figures: the ``money`` summary section, the cost of each completed
training job, and the per-month table (``monthly.csv``).

Cost of a training job (the rule): every run of the job (preempted runs included) costs its busy chip
equivalents (the gang, or a shared job's fraction of one chip) × the run's hours × its pool's chip-hour cost
(``ResolvedPool.chip_cost_usd_per_hour``: an owned chip's price amortized plus its maintenance, without its
server and rack share; or the rental rate), plus the facility energy of those chips at the site's price: idle
power plus the full-load increment × the job's activity factor on the pool (``sim.training.power``; 1 without one),
with server and switch shares, × pue, less what throttled clocks and checkpoint dips saved (``extra_it_j``). Idle
chips, queueing and the energy of other work are not shared out to jobs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.money.ledger import CAPEX_ITEMS, COST_CATEGORIES, Ledger
from sim.workload.jobs import busy_chip_equivalents


def job_costs_usd(jobs_out: pd.DataFrame, outcome: dict, pools, site, horizon_s: float = np.inf,
                  activity: np.ndarray | None = None, extra_it_j: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per job of ``jobs_out``: (chip cost, energy cost) [USD] of all its runs up to the horizon (see the
    module's rule; ``activity`` and ``extra_it_j`` as ``job_energy_kwh``); zero for jobs that never ran."""
    chip_rate = np.array([p.chip_cost_usd_per_hour for p in pools] + [0.0])
    energy_usd = (job_energy_kwh(jobs_out, outcome, pools, site, horizon_s, activity, extra_it_j)
                  * site.electricity_usd_per_kwh)
    return _job_chip_hours_times(chip_rate, jobs_out, outcome, horizon_s), energy_usd


def job_energy_kwh(jobs_out: pd.DataFrame, outcome: dict, pools, site, horizon_s: float = np.inf,
                   activity: np.ndarray | None = None, extra_it_j: np.ndarray | None = None) -> np.ndarray:
    """Per job of ``jobs_out``: facility energy [kWh] of all its runs up to the horizon — its busy chips at idle
    power plus the full-load increment × the job's activity factor on the run's pool (``activity``, N×P; None: 1),
    with their server and switch shares, × PUE × hours, plus ``extra_it_j`` (per job IT energy [J] that throttled
    clocks and checkpoint dips took off, ≤ 0) × PUE (the module's rule); zero for jobs that never ran."""
    idle = np.array([p.idle_w_with_server for p in pools] + [0.0])
    increment = np.array([p.busy_w_with_server - p.idle_w_with_server for p in pools] + [0.0])
    n = len(jobs_out)
    if activity is None:
        activity = np.ones((n, len(pools)))
    padded = np.concatenate((np.asarray(activity, dtype=np.float64).reshape(n, len(pools)), np.ones((n, 1))), axis=1)
    kw = (idle[None, :] + increment[None, :] * padded) * site.pue / 1e3  # kW per busy chip of each job on each pool
    total = _job_chip_hours_times(kw, jobs_out, outcome, horizon_s)
    if extra_it_j is not None:
        total = total + np.asarray(extra_it_j, dtype=np.float64) * site.pue / 3.6e6
    return total


def _job_chip_hours_times(rate: np.ndarray, jobs_out: pd.DataFrame, outcome: dict, horizon_s: float) -> np.ndarray:
    """Per job: Σ over its runs (preempted runs included) of busy chip equivalents × hours × ``rate`` of the
    run's pool (``rate`` indexed by pool, with a last entry for "no pool"; or N × (P + 1), by job and pool)."""
    n = len(jobs_out)
    weight = busy_chip_equivalents(jobs_out["chips"].to_numpy(), jobs_out["chip_share"].to_numpy())
    start, end, pool = outcome["run_start_s"], outcome["end_s"], outcome["pool"]
    ran = ~(np.isnan(start) | np.isnan(end))
    hours = np.where(ran, (np.minimum(np.where(ran, end, 0.0), horizon_s) - np.where(ran, start, 0.0)) / 3600.0, 0.0)
    by_job = rate.ndim == 2
    total = weight * hours * (rate[np.arange(n), pool] if by_job else rate[pool])
    seg = outcome["segments"]
    if len(seg["job"]):
        seg_chip_h = weight[seg["job"]] * (np.minimum(seg["end_s"], horizon_s) - seg["start_s"]) / 3600.0
        seg_rate = rate[seg["job"], seg["pool"]] if by_job else rate[seg["pool"]]
        total = total + np.bincount(seg["job"], seg_chip_h * seg_rate, minlength=n)
    return total


def money_summary(ledger: Ledger, jobs_out: pd.DataFrame, job_chip_usd: np.ndarray,
                  job_energy_usd: np.ndarray) -> dict:
    """``summary.json``'s ``money`` section: cost totals by category, ownership and pool (each pool's chip
    costs and energy), cash capex (not a cost of the period under depreciation accounting) in all and by
    item, and the mean cost of a completed job per accelerator type."""
    entries = ledger.entries
    cost = entries[entries["category"] != "capex"]
    chips = cost[cost["pool"] != ""]
    capex = entries[entries["category"] == "capex"]
    done = jobs_out["state"].to_numpy() == "completed"
    per_job = {}
    for accel in sorted(set(jobs_out.loc[done, "accelerator"])):
        rows = done & (jobs_out["accelerator"].to_numpy() == accel)
        per_job[accel] = {"jobs": int(rows.sum()),
                          "mean_usd": float((job_chip_usd[rows] + job_energy_usd[rows]).mean()),
                          "mean_chip_usd": float(job_chip_usd[rows].mean()),
                          "mean_energy_usd": float(job_energy_usd[rows].mean())}
    return {
        "total_cost_usd": float(cost["usd"].sum()),
        "by_category_usd": {c: ledger.cost_usd(c) for c in COST_CATEGORIES},
        "by_ownership_usd": {owner: float(chips.loc[chips["ownership"] == owner, "usd"].sum())
                             for owner in ("owned", "rented")},
        "by_pool_usd": {name: float(group["usd"].sum()) for name, group in chips.groupby("pool")},
        "capex_cash_usd": ledger.cost_usd("capex"),
        "capex_by_item_usd": {item: float(capex.loc[capex["item"] == item, "usd"].sum()) for item in CAPEX_ITEMS},
        "cost_per_completed_job_usd": per_job,
        "months": len(ledger.months),
    }


def monthly_table(ledger: Ledger, pools, jobs_out: pd.DataFrame, requests: pd.DataFrame | None = None,
                  services=(), fluid_slo: dict | None = None, service_costs: dict | None = None) -> pd.DataFrame:
    """One row per calendar month of the run: its length in days inside the run, online chips by
    accelerator type and by ownership (chip-month means: online chip-seconds ÷ the month's seconds in the
    run), cost by category and in all, cash capex, facility energy and carbon, facility energy by pool
    (``energy_kwh.<pool>``: the ledger's energy split), training jobs completed
    (end in the month) and their mean queue wait (first start − arrival), and per request-level service
    with an SLO, the SLO attainment and goodput of the requests arriving in the month (as the summary
    defines them). ``services`` holds ``(name, family, slo)`` of the request-level services. ``fluid_slo``
    maps a fluid service with an SLO to (bin edges [s], offered per bin, met per arrival bin): its months
    take the bins' counts, a bin across a month edge split by time share (counts spread evenly in a bin),
    so the months' met ÷ offered, weighted by offered, is the summary's attainment. ``service_costs`` maps
    an inference service to (bin edges [s], unit, cost per bin [USD], units per bin) (``ServiceRun.cost_per_bin``):
    its months get ``output_tokens.<service>`` and ``cost_per_1m_tokens_usd.<service>`` (LLM), or
    ``completed_requests.<service>`` and ``cost_per_1m_requests_usd.<service>`` (ranking): the month's cost ÷
    its units × 1e6, a bin across a month edge split by time share, so the months weighted by their units
    give the summary's ``cost_per_1m_*`` (empty where a month has no units)."""
    edges, months = ledger.month_edges_s, ledger.months
    seconds = np.diff(edges)
    data: dict[str, object] = {"month": months, "days": seconds / 86400.0}
    by_accel: dict[str, np.ndarray] = {}
    by_owner: dict[str, np.ndarray] = {}
    for pool in pools:
        chip_s = ledger.online_chip_s[pool.name]
        by_accel[pool.accelerator.id] = by_accel.get(pool.accelerator.id, 0.0) + chip_s
        by_owner[pool.owner] = by_owner.get(pool.owner, 0.0) + chip_s
    for key, chip_s in sorted(by_accel.items()):
        data[f"online_chips.{key}"] = chip_s / seconds
    for key, chip_s in sorted(by_owner.items()):
        data[f"online_chips.{key}"] = chip_s / seconds
    usd = ledger.by_month()
    for category in COST_CATEGORIES:
        data[f"{category}_usd"] = usd[category].to_numpy()
    data["total_cost_usd"] = usd[list(COST_CATEGORIES)].to_numpy().sum(axis=1)
    data["capex_cash_usd"] = usd["capex"].to_numpy()
    energy = ledger.entries[ledger.entries["category"] == "energy"].groupby("month")[["kwh", "carbon_kg"]].sum()
    energy = energy.reindex(months, fill_value=0.0)
    data["facility_energy_kwh"] = energy["kwh"].to_numpy()
    data["carbon_kg"] = energy["carbon_kg"].to_numpy()
    rows = ledger.entries[(ledger.entries["category"] == "energy") & (ledger.entries["pool"] != "")]
    by_pool = rows.pivot_table(index="month", columns="pool", values="kwh", aggfunc="sum", fill_value=0.0)
    for pool in pools:
        data[f"energy_kwh.{pool.name}"] = (by_pool[pool.name].reindex(months, fill_value=0.0).to_numpy()
                                           if pool.name in by_pool else np.zeros(len(months)))
    done = jobs_out[jobs_out["state"].to_numpy() == "completed"]
    month_of = _month_index(done["end_s"].to_numpy(), edges)
    wait = (done["start_s"] - done["arrival_s"]).to_numpy()
    count = np.bincount(month_of, minlength=len(months))
    data["jobs_completed"] = count
    data["mean_wait_s"] = np.divide(np.bincount(month_of, wait, minlength=len(months)), count,
                                    out=np.full(len(months), np.nan), where=count > 0)
    if requests is not None and len(requests):
        for name, family, slo in services:
            if slo is None:
                continue
            attainment, goodput = _slo_by_month(requests[requests["service"] == name], family, slo, edges)
            data[f"slo_attainment.{name}"] = attainment
            data[f"goodput_rps.{name}"] = goodput
    for name, (bin_edges_s, offered, met) in sorted((fluid_slo or {}).items()):
        offered_m, met_m = (_counts_by_month(bin_edges_s, counts, edges) for counts in (offered, met))
        data[f"slo_attainment.{name}"] = np.divide(met_m, offered_m, out=np.full(len(months), np.nan),
                                                   where=offered_m > 0)
        data[f"goodput_rps.{name}"] = met_m / seconds
    for name, (bin_edges_s, unit, cost, units) in sorted((service_costs or {}).items()):
        cost_m, units_m = (_counts_by_month(bin_edges_s, values, edges) for values in (cost, units))
        data[f"{'output_tokens' if unit == 'tokens' else 'completed_requests'}.{name}"] = units_m
        data[f"cost_per_1m_{unit}_usd.{name}"] = np.divide(cost_m * 1e6, units_m, out=np.full(len(months), np.nan),
                                                          where=units_m > 0)
    return pd.DataFrame(data)


def _counts_by_month(bin_edges_s: np.ndarray, counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Per-bin counts summed per month, a bin across a month edge split by time share (counts spread evenly
    within a bin); bins beyond the horizon are left out (the fluid bins end at it)."""
    cumulative = np.concatenate(([0.0], np.cumsum(np.asarray(counts, dtype=np.float64))))
    return np.diff(np.interp(edges, np.asarray(bin_edges_s, dtype=np.float64), cumulative))


def _month_index(times_s: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The month each time falls in (the horizon itself in the last month)."""
    return np.clip(np.searchsorted(edges, times_s, side="right") - 1, 0, len(edges) - 2)


def _slo_by_month(rows: pd.DataFrame, family: str, slo, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per month, of the requests arriving in it: met ÷ offered (offered: not ``not-offered``), and met ÷
    the month's seconds; met = completed within the targets (TTFT and TPOT for LLMs, latency for ranking)."""
    arrival = rows["arrival_s"].to_numpy(dtype=np.float64)
    finish = rows["finish_s"].to_numpy(dtype=np.float64)
    state = rows["state"].to_numpy()
    met = state == "completed"
    if family == "ranking":
        met &= finish - arrival <= slo.latency_p99_ms / 1e3
    else:
        first = rows["first_token_s"].to_numpy(dtype=np.float64)
        outputs = rows["output_tokens"].to_numpy(dtype=np.float64)
        tpot = np.where(outputs > 1, (finish - first) / np.maximum(outputs - 1, 1), 0.0)
        met &= (first - arrival <= slo.ttft_p99_ms / 1e3) & (tpot <= slo.tpot_p99_ms / 1e3)
    month = _month_index(arrival, edges)
    n = len(edges) - 1
    offered = np.bincount(month, (state != "not-offered").astype(np.float64), minlength=n)
    hits = np.bincount(month, met.astype(np.float64), minlength=n)
    attainment = np.divide(hits, offered, out=np.full(n, np.nan), where=offered > 0)
    return attainment, hits / np.diff(edges)
