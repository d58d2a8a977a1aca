"""Results of a run with failures (``sim.training.failures``): jobs.csv columns, the summary's ``failures`` and the
time-series columns ``repair_chips.<pool>`` and ``interruptions.<cause>``.

Only a run with a ``failures`` section has them, so runs without it write exactly what they wrote before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.scenario.failures_schema import COMPONENT_CLASSES, EXTRA_CAUSES


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
    chip-time), interruptions and lost chip-hours over all jobs and by accelerator (each run's chip-time on the pool
    it ran on, each interruption on the pool it struck: a job preempted on one type and resumed on another counts
    on both), and availability per pool
    (1 − chip-time away for repair, not covered by a hot spare / online chip-time); ``pools_without_failures``:
    the pools training gets no failures on (kept for the output's shape: today none, every pool fails)."""
    by_cause, lost = failures["by_cause"].sum(axis=0), failures["lost_by_cause"].sum(axis=0)
    causes = causes_of(failures)
    useful, held = jobs_out["useful_chip_s"].to_numpy(), jobs_out["held_chip_s"].to_numpy()
    # per accelerator, each run on the pool it ran on (a job preempted on one type and resumed on another counts on
    # both), each interruption and its lost work on the pool it struck
    runs, n = failures["runs"], len(fleet.pools)
    useful_on = np.bincount(runs["pool"], runs["useful_chip_s"], minlength=n)
    held_on = np.bincount(runs["pool"], runs["held_chip_s"], minlength=n)
    interrupted_on, lost_on = failures["by_cause"].sum(axis=1), failures["lost_by_cause"].sum(axis=1)
    goodput_by_accel, interruptions_by_accel, lost_by_accel = {}, {}, {}
    for accel in sorted({p.accelerator.id for p in fleet.pools if held_on[p.index] > 0}):
        on = [p.index for p in fleet.pools if p.accelerator.id == accel]
        goodput_by_accel[accel] = float(useful_on[on].sum() / held_on[on].sum())
        interruptions_by_accel[accel] = int(interrupted_on[on].sum())
        lost_by_accel[accel] = float(lost_on[on].sum() / 3600.0)
    availability, repairs, spares = {}, {}, {}
    for p in fleet.pools:
        online = p.online_chip_seconds(0.0, horizon_s)
        availability[p.name] = 1.0 - float(failures["down_chip_s"][p.index]) / online if online else None
        repairs[p.name] = int(failures["repairs"][p.index])
        if failures["spare_servers"][p.index]:
            spares[p.name] = int(failures["spare_servers"][p.index])
    return {
        "profile": profile,
        "events": int(failures["events"].sum()),
        "events_by_class": {c: int(failures["events"][:, i].sum()) for i, c in causes if c != "maintenance-window"},
        "events_on_unavailable_chips": int(failures["unavailable"].sum()),
        "interruptions": int(by_cause.sum()),
        "interruptions_by_cause": {c: int(by_cause[i]) for i, c in causes},
        "lost_chip_hours": float(lost.sum() / 3600.0),
        "lost_chip_hours_by_cause": {c: float(lost[i] / 3600.0) for i, c in causes},
        "goodput_share": float(useful.sum() / held.sum()) if held.sum() > 0 else None,
        "goodput_share_by_accelerator": goodput_by_accel,
        "interruptions_by_accelerator": interruptions_by_accel,
        "lost_chip_hours_by_accelerator": lost_by_accel,
        "availability_by_pool": availability,
        "repairs_by_pool": repairs,
        "hot_spare_servers_by_pool": spares,
        "pools_without_failures": [],  # kept for the output's shape: every pool fails
        **(_window_summary(failures, fleet) if failures["windows"] else {}),
    }


def causes_of(failures: dict) -> list[tuple[int, str]]:
    """(column, cause) of the causes a run counts: the component classes, then ``network-rack`` (with
    ``rack_share``) and ``maintenance-window`` (with ``maintenance``) only when the run has them (so runs
    without them write what they wrote before)."""
    on = {"network-rack": failures["rack_events"], "maintenance-window": failures["windows"]}
    return [(i, c) for i, c in enumerate(COMPONENT_CLASSES + EXTRA_CAUSES) if on.get(c, True)]


def _window_summary(failures: dict, fleet) -> dict:
    """Maintenance windows opened and the chip-hours they held away, per pool (not in availability)."""
    pools = fleet.pools
    return {"maintenance_windows_by_pool": {p.name: int(failures["windows_opened"][p.index]) for p in pools},
            "maintenance_chip_hours_by_pool": {p.name: float(failures["window_chip_s"][p.index] / 3600.0)
                                               for p in pools}}


def series_columns(failures: dict, fleet, edges_s: np.ndarray) -> dict[str, np.ndarray]:
    """Time-series columns of a run with failures, per bin (``edges_s``): ``repair_chips.<pool>`` — chips away
    for repair or in a maintenance window (bin mean; pools that get failures) — and ``interruptions.<cause>`` —
    training jobs interrupted in the bin by each cause the run counts (``causes_of``)."""
    log = np.array(failures["down_log"], dtype=np.float64).reshape(-1, 4)  # pool, start, end, chips
    columns = {}
    widths = np.diff(edges_s)
    for p in fleet.pools:
        rows = log[log[:, 0] == p.index]
        columns[f"repair_chips.{p.name}"] = np.diff(_area_upto(rows[:, 1], rows[:, 2], rows[:, 3], edges_s)) / widths
    times = np.array([t for t, _, _ in failures["interrupt_log"]], dtype=np.float64)
    causes = np.array([c for _, _, c in failures["interrupt_log"]], dtype=np.int64)
    for i, cause in causes_of(failures):
        counts, _ = np.histogram(times[causes == i], bins=edges_s)
        columns[f"interruptions.{cause}"] = counts.astype(np.int64)
    return columns


def _area_upto(start: np.ndarray, end: np.ndarray, chips: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Chip-seconds away from 0 to each time of ``at``, for intervals [start, end) of ``chips`` (the step
    function of chips away, integrated; O((intervals + times) log))."""
    if not len(start):
        return np.zeros(len(at))
    times = np.concatenate([start, end])
    order = np.argsort(times, kind="stable")
    times, level = times[order], np.cumsum(np.concatenate([chips, -chips])[order])
    area = np.concatenate(([0.0], np.cumsum(level[:-1] * np.diff(times))))
    i = np.searchsorted(times, at, side="right") - 1
    j = np.maximum(i, 0)
    return np.where(i >= 0, area[j] + level[j] * (at - times[j]), 0.0)
