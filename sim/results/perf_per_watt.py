"""Performance per watt of each accelerator type at the load that ran: the summary's ``perf_per_watt`` block.

Per accelerator type (every figure over the whole run, IT power: chips with their server share, no PUE):

* ``it_energy_kwh``: IT energy of the type's pools (Σ ``it_power_kw.<pool>`` × bin hours): idle chips, training and
  inference on them, as the time series counts them.
* ``training_pflop``: useful training work [PFLOP] of the transformer jobs with a step-time-model MFU: per job,
  MFU × the chip's dense BF16 peak × gang chips × (its run seconds on its last pool up to the horizon − the
  chip-seconds preemptions threw away ÷ gang). MFU is model FLOPs per step ÷ (gang × peak × step time)
  (``sim.kernels.step_reference``), so this is the model's FLOPs actually kept. With ``failures`` the run seconds
  count at the job's goodput share on that last pool instead (useful chip-time, its work at the pool's speed, ÷ the
  chip-time its gang held, over its runs there: the failure outcome's ``runs``, ``sim.training.failures``; jobs.csv's
  ``goodput_frac`` is the same share over all its runs): checkpoint saves, restarts, restores and the work lost
  since the last checkpoint are not useful work.
  Roofline jobs (no model FLOPs) count nothing; runs on another pool than the job's last one are
  left out; without failures a throttled run's seconds count as full-speed ones (overstating its work by the
  clock's slowdown: ``power_capping.lost_chip_hours`` says how much); with failures a completed run counts its
  full-speed work, a preempted or unfinished one its wall time at the goodput share.
* ``training_flops_per_j``: ``training_pflop`` ÷ ``it_energy_kwh`` in FLOP/J (= FLOP/s per W): what the type
  delivered per joule at the load that ran (idle time and inference on the same pools count against it).
* ``training_busy_flops_per_j``: the same work ÷ the IT energy of those runs' busy chips: chip-seconds × (idle power
  + the job's ``activity`` × the dynamic part), server and switch shares included (the money report's rule,
  ``sim.money.report``): the chips' perf/W while training, MFU included.
* ``llm_tokens_per_j``: output tokens of the LLM services' replicas on the type ÷ those replicas' IT energy
  (idle while active plus busy increments, ``sim.serving.accounting``; ``inference.<service>.by_accelerator``).
* ``ranking_requests_per_j``: completed ranking requests (queries) on the type ÷ their replicas' IT energy.

A key appears only when the type ran that kind of work. Types without any are left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.results.shifting import job_runs

J_PER_KWH = 3.6e6


def summary(jobs_out: pd.DataFrame, outcome: dict, series: pd.DataFrame, pools, inference: dict,
            horizon_s: float) -> dict[str, dict]:
    """The ``perf_per_watt`` block (module docstring), types in name order."""
    widths = np.diff(np.append(series["time_s"].to_numpy(np.float64), horizon_s))
    out: dict[str, dict] = {}
    for p in pools:
        column = f"it_power_kw.{p.name}"
        if column in series:
            entry = out.setdefault(p.accelerator.id, {"it_energy_kwh": 0.0})
            entry["it_energy_kwh"] += float((series[column].to_numpy(np.float64) * widths).sum() / 3600.0)
    _training(out, jobs_out, outcome, pools, horizon_s)
    _serving(out, inference)
    return {name: entry for name, entry in sorted(out.items()) if len(entry) > 1}


def _training(out: dict, jobs_out: pd.DataFrame, outcome: dict, pools, horizon_s: float) -> None:
    if "mfu" not in jobs_out or not len(jobs_out):
        return
    mfu = jobs_out["mfu"].to_numpy(np.float64)
    chips = jobs_out["chips"].to_numpy(np.float64)
    last_pool = outcome["pool"]
    runs = job_runs(jobs_out, outcome, horizon_s)
    job = runs["job"]
    keep = (runs["pool"] == last_pool[job]) & ~np.isnan(mfu[job])
    run_s = np.bincount(job[keep], (runs["end_s"] - runs["start_s"])[keep], minlength=len(jobs_out))
    busy_chip_s = np.bincount(job[keep], ((runs["end_s"] - runs["start_s"]) * runs["weight"])[keep],
                              minlength=len(jobs_out))
    if "failures" in outcome:  # the goodput share of its runs on the last pool (no saves, restarts, lost work)
        failed = outcome["failures"]["runs"]
        last = failed["pool"] == last_pool[failed["job"]]
        useful = np.bincount(failed["job"][last], failed["useful_chip_s"][last], minlength=len(jobs_out))
        held = np.bincount(failed["job"][last], failed["held_chip_s"][last], minlength=len(jobs_out))
        useful_s = run_s * np.divide(useful, held, out=np.zeros(len(held)), where=held > 0)
    else:
        useful_s = np.maximum(run_s - jobs_out["lost_chip_s"].to_numpy(np.float64) / np.maximum(chips, 1.0), 0.0)
    peak = np.array([p.accelerator.peak_flops for p in pools] + [0.0])[last_pool]
    idle_w = np.array([p.idle_w_with_server for p in pools] + [0.0])[last_pool]
    increment_w = np.array([p.busy_w_with_server - p.idle_w_with_server for p in pools] + [0.0])[last_pool]
    activity = (jobs_out["activity"].to_numpy(np.float64) if "activity" in jobs_out else np.ones(len(jobs_out)))
    busy_w = idle_w + increment_w * np.where(np.isnan(activity), 1.0, activity)
    flop = np.where(np.isnan(mfu), 0.0, mfu) * peak * chips * useful_s
    accel = np.array([p.accelerator.id for p in pools] + [""], dtype=object)[last_pool]
    ran = np.flatnonzero(run_s > 0)
    for name in sorted(set(accel[ran])):
        on = ran[accel[ran] == name]
        entry = out[name]
        total = float(flop[on].sum())
        busy_j = float((busy_chip_s[on] * busy_w[on]).sum())
        entry["training_pflop"] = total / 1e15
        entry["training_flops_per_j"] = total / (entry["it_energy_kwh"] * J_PER_KWH) if entry["it_energy_kwh"] else None
        entry["training_busy_flops_per_j"] = total / busy_j if busy_j > 0 else None


def _serving(out: dict, inference: dict) -> None:
    tokens: dict[str, list[float]] = {}
    requests: dict[str, list[float]] = {}
    for service in inference.values():
        for name, figures in (service.get("by_accelerator") or {}).items():
            if service.get("family") == "ranking":
                per_1k = figures.get("it_energy_per_1k_requests_kwh")
                done = float(figures.get("completed") or 0.0)
                if per_1k:
                    pair = requests.setdefault(name, [0.0, 0.0])
                    pair[0] += done
                    pair[1] += done * per_1k / 1e3 * J_PER_KWH
            else:
                per_1k = figures.get("it_energy_per_1k_tokens_kwh")
                made = float(figures.get("output_tokens") or 0.0)
                if per_1k:
                    pair = tokens.setdefault(name, [0.0, 0.0])
                    pair[0] += made
                    pair[1] += made * per_1k / 1e3 * J_PER_KWH
    for key, sums in (("llm_tokens_per_j", tokens), ("ranking_requests_per_j", requests)):
        for name, (count, joules) in sums.items():
            if name in out and joules > 0:
                out[name][key] = count / joules
