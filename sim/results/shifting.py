"""The ``shifting`` summary block: what holding deferrable training for cheap or clean hours did
(``sim.training.shifting``).

Energy of the deferrable jobs follows the money report's rule (``sim.money.report``): every run of a job (preempted
runs included, up to the horizon) draws its busy chip equivalents × (idle power + the job's ``activity`` × the
dynamic part, server and switch shares included; throttled clocks and checkpoint dips not taken off) × the site's
PUE (the yearly planning PUE when PUE follows the weather). Its cost and operational carbon integrate that power
against the hourly price and carbon intensity at the hours it ran (``sim.facility.tariff``, the year mapped
cyclically). The ``*_at_arrival`` figures move every run of a held job earlier by its hold, as if it had not been
held (queueing aside: an estimate of the same work without shifting; the ``@no-shift`` variant of a scenario gives
the real one).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.workload.jobs import busy_chip_equivalents

HOUR_S = 3600.0


def hourly_integral(values: np.ndarray, offset_s: float, t: np.ndarray) -> np.ndarray:
    """∫ from run time 0 to ``t`` [s] of the hourly ``values`` (cyclic, hour 0 at ``-offset_s``), in value·hours."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    cumulative = np.concatenate(([0.0], np.cumsum(values)))

    def from_year_start(x_h: np.ndarray) -> np.ndarray:
        cycles = np.floor(x_h / n)
        rest = x_h - cycles * n
        hour = np.minimum(np.floor(rest).astype(np.int64), n - 1)
        return cycles * cumulative[-1] + cumulative[hour] + values[hour] * (rest - hour)

    x = (offset_s + np.asarray(t, dtype=np.float64)) / HOUR_S
    return from_year_start(x) - from_year_start(np.array(offset_s / HOUR_S))


def job_runs(jobs_out: pd.DataFrame, outcome: dict, horizon_s: float) -> dict[str, np.ndarray]:
    """Every run of every job up to the horizon: job, pool, start and end [s], busy chip equivalents."""
    weight = busy_chip_equivalents(jobs_out["chips"].to_numpy(), jobs_out["chip_share"].to_numpy())
    start, end, pool = outcome["run_start_s"], outcome["end_s"], outcome["pool"]
    ran = np.flatnonzero(~(np.isnan(start) | np.isnan(end)) & (start < horizon_s))
    seg = outcome["segments"]
    job = np.concatenate((ran, seg["job"]))
    return {"job": job, "pool": np.concatenate((pool[ran], seg["pool"])),
            "start_s": np.concatenate((start[ran], seg["start_s"])),
            "end_s": np.minimum(np.concatenate((end[ran], seg["end_s"])), horizon_s), "weight": weight[job]}


def summary(config, threshold: float, held: dict, jobs_out: pd.DataFrame, outcome: dict, pools, site,
            price: np.ndarray, carbon: np.ndarray, offset_s: float, horizon_s: float) -> dict:
    """The ``shifting`` block (README, "Outputs"): the policy, how many deferrable jobs were held and how long, and
    the energy, cost and operational carbon of the deferrable jobs' runs, as run and as if started at arrival."""
    submitted = jobs_out["state"].to_numpy() != "beyond-horizon"
    release = np.minimum(held["release_s"], horizon_s)
    hold_s = np.zeros(len(jobs_out))
    hold_s[held["job"]] = release - held["arrival_s"]
    runs = job_runs(jobs_out, outcome, horizon_s)
    idle = np.array([p.idle_w_with_server for p in pools])[runs["pool"]]
    increment = np.array([p.busy_w_with_server - p.idle_w_with_server for p in pools])[runs["pool"]]
    activity = jobs_out["activity"].to_numpy(np.float64) if "activity" in jobs_out else np.ones(len(jobs_out))
    activity = np.where(np.isnan(activity), 1.0, activity)[runs["job"]]
    kw = (idle + increment * activity) * site.pue / 1e3 * runs["weight"]
    shifted = {}
    for name, moved in (("", 0.0), ("_at_arrival", hold_s[runs["job"]])):
        a, b = runs["start_s"] - moved, runs["end_s"] - moved
        shifted[name] = (
            float((kw * (b - a)).sum() / HOUR_S),
            float((kw * (hourly_integral(price, offset_s, b) - hourly_integral(price, offset_s, a))).sum()),
            float((kw * (hourly_integral(carbon, offset_s, b) - hourly_integral(carbon, offset_s, a))).sum() / 1e3))
    energy, cost, co2 = shifted[""]
    _, cost0, co20 = shifted["_at_arrival"]
    given = config.threshold
    return {
        "signal": config.signal,
        "threshold": threshold,
        "threshold_quantile": given if isinstance(given, str) else None,
        "max_delay_h": float(config.max_delay_h),
        "deferrable_jobs": int(submitted.sum()),
        "deferred_jobs": int(len(held["job"])),
        "released_in_open_hour": int((held["opened"] & (held["release_s"] <= horizon_s)).sum()),
        "released_at_max_delay": int((~held["opened"] & (held["release_s"] <= horizon_s)).sum()),
        "still_held": int((held["release_s"] > horizon_s).sum()),
        "mean_delay_h": float((release - held["arrival_s"]).mean() / HOUR_S) if len(release) else 0.0,
        "facility_energy_kwh": energy,
        "energy_cost_usd": cost,
        "operational_carbon_kg": co2,
        "energy_cost_usd_at_arrival": cost0,
        "operational_carbon_kg_at_arrival": co20,
    }
