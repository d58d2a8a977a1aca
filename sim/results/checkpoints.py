"""Checkpoint dips in training power, added analytically to the results (no simulation events).

With ``failures`` (``sim.training.failures``), a run of job ``j`` on pool ``p`` starting at ``t0`` first spends
``o`` seconds restarting and restoring (``o = 0`` on the job's first run, ``restart_s + save_s`` after any
preemption), then alternates ``C`` seconds of steps and ``s`` seconds of checkpoint save (``C`` the job's interval
on the pool, ``s`` its save time): save ``k`` covers ``[t0 + o + k(C+s) + C, t0 + o + (k+1)(C+s))`` up to the run's end.
During the restart, the restore and every save the job's chips draw ``checkpoint_activity`` of their dynamic power
instead of the job's activity factor ``a`` (``sim.training.power``): a dip of
``busy chips × (TDP − idle, with server) × (a − checkpoint_activity)`` [W], so a large job's start, stop and
checkpoints are steps in site power.

Bounded output: each run's restart window is two events; its saves are two events each only where the time series
resolves them (a save period ``C + s`` at least the bin width) and while all runs' saves stay within
``MAX_SAVE_EVENTS``; otherwise a run's saves become one constant dip over the run of the same energy (depth ×
saved time ÷ run time: the bin means are then the period's mean, exact to one period). The exact peak counts only
the resolved dips (the averaged ones would lower it where the true power between saves is higher): an upper bound
then. Simplification: under a throttled clock the saves keep their full-clock times.
"""

from __future__ import annotations

import numpy as np

MAX_SAVE_EVENTS = 200_000  # save start/end events over the run, all jobs (beyond: averaged dips)


def runs_of(outcome: dict) -> dict[str, np.ndarray]:
    """Every run of every job (current and preempted), with whether it is the job's first run."""
    seg = outcome["segments"]
    start = np.asarray(outcome["run_start_s"], dtype=np.float64)
    cur = np.flatnonzero(~np.isnan(start))
    job = np.concatenate((cur, np.asarray(seg["job"], dtype=np.int64)))
    pool = np.concatenate((np.asarray(outcome["pool"], dtype=np.int64)[cur], np.asarray(seg["pool"], dtype=np.int64)))
    begin = np.concatenate((start[cur], np.asarray(seg["start_s"], dtype=np.float64)))
    end = np.concatenate((np.asarray(outcome["end_s"], dtype=np.float64)[cur], np.asarray(seg["end_s"], np.float64)))
    order = np.lexsort((begin, job))
    job, pool, begin, end = job[order], pool[order], begin[order], end[order]
    first = np.ones(len(job), dtype=bool)
    first[1:] = job[1:] != job[:-1]
    return {"job": job, "pool": pool, "start_s": begin, "end_s": end, "first": first}


def checkpoint_dips(outcome: dict, failures: dict, busy_weight: np.ndarray, activity: np.ndarray, pools,
                    checkpoint_activity: float, horizon_s: float, bin_width_s: float) -> dict:
    """Checkpoint and restart dips of every run up to the horizon (module docstring).

    ``failures`` is the failure process's outcome (``save_s`` per job, ``interval_s`` N×P, ``restart_s``);
    ``busy_weight`` the busy chip-equivalents per job; ``activity`` N×P. Returns ``resolved`` and ``averaged``
    (each pool index -> (times [s], IT power changes [W])), ``job_it_j`` (per job, the IT energy the dips take
    off [J], ≤ 0) and ``save_events`` (resolved save events)."""
    n = len(busy_weight)
    runs = runs_of(outcome)
    job, pool = runs["job"], runs["pool"]
    start = runs["start_s"]
    end = np.minimum(np.nan_to_num(runs["end_s"], nan=horizon_s), horizon_s)
    keep = end > start
    job, pool, start, end, first = job[keep], pool[keep], start[keep], end[keep], runs["first"][keep]
    increment = np.array([p.busy_w_with_server - p.idle_w_with_server for p in pools] + [0.0])
    depth = busy_weight[job] * increment[pool] * np.maximum(activity[job, pool] - checkpoint_activity, 0.0)
    save = np.asarray(failures["save_s"], dtype=np.float64)[job]
    interval = np.asarray(failures["interval_s"], dtype=np.float64)[job, pool]
    overhead = np.where(first, 0.0, float(failures["restart_s"]) + save)
    head_end = np.minimum(start + overhead, end)  # restart + restore window
    base = head_end
    length = end - base
    period = interval + save
    has_saves = (save > 0) & (period > 0) & (length > interval)
    safe_period = np.where(period > 0, period, 1.0)
    full = np.where(has_saves, np.floor(length / safe_period), 0.0)
    saved_s = np.where(has_saves, full * save + np.maximum(length - full * safe_period - interval, 0.0), 0.0)
    count = np.where(has_saves, np.ceil((length - interval) / safe_period), 0.0).astype(np.int64)
    resolved = has_saves & (period >= bin_width_s)
    if 2 * int(count[resolved].sum()) > MAX_SAVE_EVENTS:
        resolved[:] = False
    job_it_j = -np.bincount(job, depth * ((head_end - start) + saved_s), minlength=n) if len(job) else np.zeros(n)
    out_resolved: dict[int, list] = {}
    out_averaged: dict[int, list] = {}

    def add(target, pools_, times, watts):
        for q in np.unique(pools_):
            on = pools_ == q
            pair = target.setdefault(int(q), [[], []])
            pair[0].append(times[on])
            pair[1].append(watts[on])

    head = head_end > start
    add(out_resolved, np.concatenate((pool[head], pool[head])), np.concatenate((start[head], head_end[head])),
        np.concatenate((-depth[head], depth[head])))
    r = np.flatnonzero(resolved)
    if len(r):
        reps = count[r]
        k = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
        row = np.repeat(r, reps)
        begin = base[row] + k * period[row] + interval[row]
        stop = np.minimum(begin + save[row], end[row])
        add(out_resolved, np.concatenate((pool[row], pool[row])), np.concatenate((begin, stop)),
            np.concatenate((-depth[row], depth[row])))
    a = np.flatnonzero(has_saves & ~resolved)
    if len(a):
        mean = depth[a] * saved_s[a] / length[a]
        add(out_averaged, np.concatenate((pool[a], pool[a])), np.concatenate((base[a], end[a])),
            np.concatenate((-mean, mean)))

    def pack(target):
        return {q: (np.concatenate(t), np.concatenate(w)) for q, (t, w) in sorted(target.items())}

    return {"resolved": pack(out_resolved), "averaged": pack(out_averaged), "job_it_j": job_it_j,
            "save_events": 2 * int(count[resolved].sum())}
