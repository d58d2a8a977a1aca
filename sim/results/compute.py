"""From the engine's per-job outcome to the run's tables: jobs, time series and summary."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.fleet import Fleet
from sim.results.series import bin_edges, binned_mean, interval_events, step_max
from sim.scenario.units import date_at
from sim.workload.jobs import busy_chip_equivalents

STATES = ("completed", "running", "queued", "rejected")


def jobs_table(jobs: pd.DataFrame, outcome: dict, fleet: Fleet) -> pd.DataFrame:
    pool_names = np.array([p.name for p in fleet.pools] + [""], dtype=object)
    accel_names = np.array([p.accelerator.id for p in fleet.pools] + [""], dtype=object)
    pool = outcome["pool"]
    return pd.DataFrame({
        "job_id": jobs["job_id"].to_numpy(),
        "arrival_s": jobs["arrival_s"].to_numpy(),
        "start_s": outcome["start_s"],
        "end_s": np.where(outcome["state"] == "completed", outcome["end_s"], np.nan),
        "pool": pool_names[pool],
        "accelerator": accel_names[pool],
        "chips": jobs["chips"].to_numpy(),
        "chip_share": jobs["chip_share"].to_numpy(),
        "stack": jobs["stack"].to_numpy(),
        "model": jobs["model"].to_numpy(),
        "state": outcome["state"],
        "reason": outcome["reason"],
    })


def timeseries(jobs: pd.DataFrame, outcome: dict, fleet: Fleet, horizon_s: float, interval_s: float,
               start_date, inference_busy_chip_s: dict[int, np.ndarray] | None = None) -> pd.DataFrame:
    """Per bin: busy chips and utilization per accelerator type, queue length, IT and facility power.

    ``inference_busy_chip_s`` maps a pool index to the chip-seconds its inference replicas spent
    iterating in each bin (from the serving kernel, same bins); those chips are busy for that share."""
    edges = bin_edges(horizon_s, interval_s)
    widths = np.diff(edges)
    start, end, pool_of = outcome["start_s"], outcome["end_s"], outcome["pool"]
    busy_weight = _busy_weight(jobs)
    data = {"time_s": edges[:-1], "datetime": [date_at(start_date, t).isoformat() for t in edges[:-1]]}
    it_power = np.zeros(len(edges) - 1)
    by_accel: dict[str, list] = {}
    for p in fleet.pools:
        on = pool_of == p.index
        busy = binned_mean(*interval_events(start[on], end[on], busy_weight[on], horizon_s), edges)
        online = binned_mean(np.array([p.online_from_s]), np.array([float(p.count)]), edges)
        serving = (inference_busy_chip_s or {}).get(p.index)
        if serving is not None:
            busy = busy + serving[: len(widths)] / widths
        it_power += online * p.idle_w_with_server + busy * (p.busy_w_with_server - p.idle_w_with_server)
        pair = by_accel.setdefault(p.accelerator.id, [0.0, 0.0])
        pair[0] = pair[0] + busy
        pair[1] = pair[1] + online
    for accel, (busy, online) in sorted(by_accel.items()):
        data[f"busy_chips.{accel}"] = busy
        data[f"utilization.{accel}"] = np.divide(busy, online, out=np.zeros_like(busy), where=online > 0)
    queued = outcome["reason"] == ""
    arrival = jobs["arrival_s"].to_numpy()
    wait_end = np.where(np.isnan(start), np.inf, start)
    data["queue_length"] = binned_mean(*interval_events(np.where(queued, arrival, np.nan), wait_end,
                                                         np.ones(len(arrival)), horizon_s), edges)
    data["it_power_kw"] = it_power / 1e3
    data["facility_power_kw"] = it_power * fleet.site.pue / 1e3
    return pd.DataFrame(data)


def peak_it_power_w(jobs: pd.DataFrame, outcome: dict, fleet: Fleet, horizon_s: float) -> float:
    """Exact peak of IT power over the run (not a bin mean): idle of online chips + busy increments."""
    start, end, pool_of = outcome["start_s"], outcome["end_s"], outcome["pool"]
    busy = _busy_weight(jobs)
    increment = np.array([p.busy_w_with_server - p.idle_w_with_server for p in fleet.pools] + [0.0])
    times, deltas = interval_events(start, end, busy * increment[pool_of], horizon_s)
    online_t = np.array([p.online_from_s for p in fleet.pools])
    online_w = np.array([p.count * p.idle_w_with_server + fleet.reserved_chips(p.index) * increment[p.index]
                         for p in fleet.pools])
    return step_max(np.concatenate((times, online_t)), np.concatenate((deltas, online_w)), horizon_s)


def _busy_weight(jobs: pd.DataFrame) -> np.ndarray:
    return busy_chip_equivalents(jobs["chips"].to_numpy(), jobs["chip_share"].to_numpy())


def _stats(values: np.ndarray) -> dict[str, float | None]:
    if len(values) == 0:
        return {"mean": None, "p50": None, "p90": None, "p99": None}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"mean": float(values.mean()), "p50": float(p50), "p90": float(p90), "p99": float(p99)}


def summary(jobs_out: pd.DataFrame, series: pd.DataFrame, fleet: Fleet, horizon_s: float,
            peak_it_w: float) -> dict:
    """The run's headline numbers (see the README's output section for each key)."""
    state = jobs_out["state"].to_numpy()
    counts = {s: int((state == s).sum()) for s in STATES}
    beyond = int((state == "beyond-horizon").sum())
    reasons = jobs_out.loc[state == "rejected", "reason"].str.split(" (", n=1, regex=False).str[0]
    done = jobs_out[state == "completed"]
    started = jobs_out[~np.isnan(jobs_out["start_s"].to_numpy())]
    still_waiting = jobs_out[state == "queued"]
    widths = np.diff(np.append(series["time_s"].to_numpy(), horizon_s))
    site = fleet.site
    it_kwh = float((series["it_power_kw"].to_numpy() * widths).sum() / 3600.0)
    facility_kwh = it_kwh * site.pue
    util, jct_by_accel = {}, {}
    for column in series.columns:
        if column.startswith("busy_chips."):
            accel = column.split(".", 1)[1]
            busy = float((series[column].to_numpy() * widths).sum())
            online = sum(p.count * max(0.0, horizon_s - p.online_from_s) for p in fleet.pools
                         if p.accelerator.id == accel)
            util[accel] = busy / online if online else 0.0
    fleet_cost = sum(p.count * max(0.0, horizon_s - p.online_from_s) / 3600.0 * p.chip_cost_usd_per_hour
                     for p in fleet.pools)
    for accel, group in done.groupby("accelerator"):
        jct_by_accel[accel] = _stats((group["end_s"] - group["arrival_s"]).to_numpy())
    return {
        "horizon_s": horizon_s,
        "jobs": {"in_input": len(jobs_out), "submitted": len(jobs_out) - beyond, **counts,
                 "beyond_horizon": beyond,
                 "rejected_by_reason": {str(k): int(v) for k, v in reasons.value_counts().sort_index().items()}},
        "jct_s": _stats((done["end_s"] - done["arrival_s"]).to_numpy()),
        "jct_s_by_accelerator": jct_by_accel,
        "queue_wait_s": _stats((started["start_s"] - started["arrival_s"]).to_numpy()),
        "still_queued_wait_s": _stats((horizon_s - still_waiting["arrival_s"]).to_numpy()),
        "utilization_by_accelerator": util,
        "it_energy_kwh": it_kwh,
        "facility_energy_kwh": facility_kwh,
        "energy_cost_usd": facility_kwh * site.electricity_usd_per_kwh,
        "carbon_kg": facility_kwh * site.carbon_g_per_kwh / 1000.0,
        "fleet_cost_usd": fleet_cost,
        "peak_it_power_kw": peak_it_w / 1e3,
        "peak_facility_power_kw": peak_it_w * site.pue / 1e3,
        "power_cap_kw": site.power_cap_w / 1e3 if site.power_cap_w is not None else None,
        "pue": site.pue,
    }
