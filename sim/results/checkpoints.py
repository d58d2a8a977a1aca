"""Checkpoint dips in training power, added analytically to the results (no simulation events).

With ``failures`` (``sim.training.failures``), a run of job ``j`` on pool ``p`` starting at ``t0`` first spends
``o`` seconds restarting and restoring (``o = 0`` on the job's first run, ``restart_s + save_s`` after any
preemption), then alternates ``C`` seconds of steps and ``s`` seconds of checkpoint save (``C`` the job's interval
on the pool, ``s`` its save time): save ``k`` covers ``[t0 + o + k(C+s) + C, t0 + o + (k+1)(C+s))`` up to the run's end.
During the restart, the restore and every save the job's chips draw ``checkpoint_activity`` of their dynamic power
instead of the job's activity factor ``a`` (``sim.training.power``): a dip of
``busy chips × (TDP − idle, with server) × (a − checkpoint_activity) × power_frac`` [W], so a large job's start, stop
and checkpoints are steps in site power. ``power_frac`` is the share of its full-clock dynamic power the job draws at
the clock it runs at (1 unthrottled; under ``policy.power_cap.kind: throttle`` the capping's clock changes,
``sim.training.capping.PowerCap.job_clocks``): a throttled job draws ``a × power_frac`` of the increment while it
steps and ``checkpoint_activity × power_frac`` while it saves or restarts, so the dip is its throttled power × the
share ``(a − checkpoint_activity) / a`` and never takes the pool below what the job draws. A clock change inside a
dip changes its depth from then on (the dip is followed per clock segment).

Bounded output: each run's restart window is two events; its saves are two events each only where the time series
resolves them (a save period ``C + s`` at least the bin width) and while all runs' saves stay within
``MAX_SAVE_EVENTS``; otherwise a run's saves become one constant dip over the run of the same energy (depth ×
saved time ÷ run time: the bin means are then the period's mean, exact to one period), scaled by the clock like a
save. A clock change inside a dip adds one event. The exact peak counts only the resolved dips (the averaged ones
would lower it where the true power between saves is higher): an upper bound then.
Simplifications: the saves, restarts and restores keep their full-clock (wall) times under a throttled clock (the
failure process places them in wall time, ``sim.training.failures``: storage I/O, not the chip's clock, bounds a
save); a save draws the same clock's share of ``checkpoint_activity`` as the steps do of ``a``.
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
                    checkpoint_activity: float, horizon_s: float, bin_width_s: float,
                    clocks: dict | None = None) -> dict:
    """Checkpoint and restart dips of every run up to the horizon (module docstring).

    ``failures`` is the failure process's outcome (``save_s`` per job, ``interval_s`` N×P, ``restart_s``);
    ``busy_weight`` the busy chip-equivalents per job; ``activity`` N×P; ``clocks`` the jobs' clock changes under a
    throttling power cap (``time_s``, ``job``, ``power_frac``: ``PowerCap.job_clocks``; None: every job at full
    clock). Returns ``resolved`` and ``averaged`` (each pool index -> (times [s], IT power changes [W])),
    ``job_it_j`` (per job, the IT energy the dips take off [J], ≤ 0) and ``save_events`` (resolved save events)."""
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
    windows = [(job[head], pool[head], start[head], head_end[head], depth[head], True)]  # (…, resolved)
    r = np.flatnonzero(resolved)
    if len(r):
        reps = count[r]
        k = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
        row = np.repeat(r, reps)
        begin = base[row] + k * period[row] + interval[row]
        windows.append((job[row], pool[row], begin, np.minimum(begin + save[row], end[row]), depth[row], True))
    a = np.flatnonzero(has_saves & ~resolved)
    if len(a):
        windows.append((job[a], pool[a], base[a], end[a], depth[a] * saved_s[a] / length[a], False))
    followed = clocks is not None and len(clocks["job"]) > 0
    for w_job, w_pool, begin, stop, w_depth, exact in windows:
        target = out_resolved if exact else out_averaged
        if not followed:
            add(target, np.concatenate((w_pool, w_pool)), np.concatenate((begin, stop)),
                np.concatenate((-w_depth, w_depth)))
            continue
        at_begin, at_stop, (w, t, change) = _clock_segments(clocks, w_job, begin, stop)
        add(target, np.concatenate((w_pool, w_pool, w_pool[w])), np.concatenate((begin, stop, t)),
            np.concatenate((-w_depth * at_begin, w_depth * at_stop, -w_depth[w] * change)))
        # the dips take off depth × ∫ power_frac, not depth × the window's length
        job_it_j = job_it_j + np.bincount(w_job, w_depth * (1.0 - at_begin) * (stop - begin), minlength=n)
        job_it_j = job_it_j - np.bincount(w_job[w], w_depth[w] * change * (stop[w] - t), minlength=n)

    def pack(target):
        return {q: (np.concatenate(t), np.concatenate(w)) for q, (t, w) in sorted(target.items())}

    return {"resolved": pack(out_resolved), "averaged": pack(out_averaged), "job_it_j": job_it_j,
            "save_events": 2 * int(count[resolved].sum())}


def _last_at(log_job: np.ndarray, log_t: np.ndarray, job: np.ndarray, t: np.ndarray, strict: bool) -> np.ndarray:
    """For each query ``(job, t)``: the index of the last entry of the log (sorted by job, then time) of the same job
    at or before ``t`` (strictly before with ``strict``), -1 where there is none. One stable merge sort."""
    n = len(log_job)
    is_query = np.concatenate((np.zeros(n, dtype=bool), np.ones(len(job), dtype=bool)))
    order = np.lexsort((~is_query if strict else is_query, np.concatenate((log_t, t)), np.concatenate((log_job, job))))
    last = np.maximum.accumulate(np.where(is_query[order], -1, order))  # log entries come in their order
    found = np.empty(len(job), dtype=np.int64)
    queries = is_query[order]
    found[order[queries] - n] = last[queries]
    same = found >= 0
    same[same] = log_job[found[same]] == job[same]
    return np.where(same, found, -1)


def _sorted_clocks(clocks: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The clock log sorted by job, then time, then the order made: (job, time, power_frac, change from the job's
    previous entry or from 1)."""
    job, t, frac = (np.asarray(clocks[k]) for k in ("job", "time_s", "power_frac"))
    order = np.lexsort((np.arange(len(job)), t, job))
    job, t, frac = job[order], t[order], frac[order]
    before = np.concatenate(([1.0], frac[:-1]))
    before[np.concatenate(([True], job[1:] != job[:-1]))] = 1.0
    return job, t, frac, frac - before


def _clock_segments(clocks: dict, job, begin, stop) -> tuple[np.ndarray, np.ndarray, tuple]:
    """The job's ``power_frac`` at each window's begin (changes at ``begin`` included) and just before its stop, and
    the changes strictly inside a window: (window index, time, change)."""
    log_job, log_t, frac, change = _sorted_clocks(clocks)
    padded = np.append(frac, 1.0)  # index -1: no change yet, full clock
    at_begin = padded[_last_at(log_job, log_t, job, begin, strict=False)]
    at_stop = padded[_last_at(log_job, log_t, job, stop, strict=True)]
    order = np.lexsort((begin, job))  # a job's windows do not overlap
    w = _last_at(job[order], begin[order], log_job, log_t, strict=True)
    hit = w >= 0
    hit[hit] = log_t[hit] < stop[order[w[hit]]]
    return at_begin, at_stop, (order[w[hit]], log_t[hit], change[hit])
