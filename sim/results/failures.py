"""Results of a run with failures (``sim.training.failures``): jobs.csv columns and the summary's ``failures``.

Only a run with a ``failures`` section has them, so runs without it write exactly what they wrote before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.scenario.failures_schema import COMPONENT_CLASSES


def add_job_columns(jobs_out: pd.DataFrame, failures: dict) -> pd.DataFrame:
    """``interruptions`` (by failures), ``failure_lost_chip_s`` (their lost chip-seconds, part of
    ``lost_chip_s``), ``useful_chip_s``, ``held_chip_s`` and ``goodput_frac`` (useful / held; empty for a job
    that never ran)."""
    held = failures["held_chip_s"]
    with np.errstate(invalid="ignore", divide="ignore"):
        goodput = np.where(held > 0, failures["useful_chip_s"] / np.where(held > 0, held, 1.0), np.nan)
    return jobs_out.assign(interruptions=failures["interruptions"],
                           failure_lost_chip_s=failures["failure_lost_chip_s"],
                           useful_chip_s=failures["useful_chip_s"], held_chip_s=held, goodput_frac=goodput)


def summary(jobs_out: pd.DataFrame, failures: dict, fleet, horizon_s: float, profile: str) -> dict:
    """Failure events and interruptions by component class, lost chip-hours, goodput share (useful / held
    chip-time), interruptions and lost chip-hours over all jobs and by accelerator (of the pool each job last ran
    on: a job preempted on one pool and finished on another counts on the last), and availability per pool
    (1 − chip-time away for repair, not covered by a hot spare / online chip-time)."""
    by_cause, lost = failures["by_cause"].sum(axis=0), failures["lost_by_cause"].sum(axis=0)
    useful, held = jobs_out["useful_chip_s"].to_numpy(), jobs_out["held_chip_s"].to_numpy()
    goodput_by_accel, interruptions_by_accel, lost_by_accel = {}, {}, {}
    columns = ["accelerator", "useful_chip_s", "held_chip_s", "interruptions", "failure_lost_chip_s"]
    for accel, group in jobs_out.loc[held > 0, columns].groupby("accelerator"):  # not a copy of every column
        goodput_by_accel[str(accel)] = float(group["useful_chip_s"].sum() / group["held_chip_s"].sum())
        interruptions_by_accel[str(accel)] = int(group["interruptions"].sum())
        lost_by_accel[str(accel)] = float(group["failure_lost_chip_s"].sum() / 3600.0)
    availability, repairs, spares = {}, {}, {}
    for p in fleet.pools:
        if p.index in failures["excluded"]:
            continue
        online = p.online_chip_seconds(0.0, horizon_s)
        availability[p.name] = 1.0 - float(failures["down_chip_s"][p.index]) / online if online else None
        repairs[p.name] = int(failures["repairs"][p.index])
        if failures["spare_servers"][p.index]:
            spares[p.name] = int(failures["spare_servers"][p.index])
    return {
        "profile": profile,
        "events": int(failures["events"].sum()),
        "events_by_class": {c: int(n) for c, n in zip(COMPONENT_CLASSES, failures["events"].sum(axis=0))},
        "events_on_unavailable_chips": int(failures["unavailable"].sum()),
        "interruptions": int(by_cause.sum()),
        "interruptions_by_cause": {c: int(n) for c, n in zip(COMPONENT_CLASSES, by_cause)},
        "lost_chip_hours": float(lost.sum() / 3600.0),
        "lost_chip_hours_by_cause": {c: float(x / 3600.0) for c, x in zip(COMPONENT_CLASSES, lost)},
        "goodput_share": float(useful.sum() / held.sum()) if held.sum() > 0 else None,
        "goodput_share_by_accelerator": goodput_by_accel,
        "interruptions_by_accelerator": interruptions_by_accel,
        "lost_chip_hours_by_accelerator": lost_by_accel,
        "availability_by_pool": availability,
        "repairs_by_pool": repairs,
        "hot_spare_servers_by_pool": spares,
        "pools_without_failures": [fleet.pools[p].name for p in failures["excluded"]],
    }
