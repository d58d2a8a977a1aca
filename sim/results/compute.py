"""From the engine's per-job outcome to the run's tables: jobs, time series and summary.

A job preempted by inference on a shared pool, or by its pool leaving (``online_until``), has several
runs: the preempted ones (``outcome["segments"]``) and its current one (``run_start_s`` to ``end_s``).
Busy chips and power count every run; the queue counts the job again from each preemption to its next
start. ``start_s`` in the jobs table is the job's first start.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.fleet import Fleet
from sim.kernels import BOTTLENECKS
from sim.results.series import bin_edges, binned_mean, interval_events, step_max
from sim.stats import percentile_summary as _stats
from sim.workload.jobs import busy_chip_equivalents

STATES = ("completed", "running", "queued", "rejected")


def jobs_table(jobs: pd.DataFrame, outcome: dict, fleet: Fleet, steps=None) -> pd.DataFrame:
    """One row per job. With the step plan of ``sim.training.steps`` (``steps``), transformer jobs also get their
    ``layout``, ``mfu``, ``bottleneck``, ``bottleneck_share`` and power ``activity`` (the share of its chips' dynamic
    power the job draws, ``sim.training.power``) on the pool they ran on (blank elsewhere)."""
    pool_names = np.array([p.name for p in fleet.pools] + [""], dtype=object)
    segments = outcome["segments"]
    accel_names = np.array([p.accelerator.id for p in fleet.pools] + [""], dtype=object)
    pool = outcome["pool"]
    table = pd.DataFrame({
        "job_id": jobs["job_id"].to_numpy(),
        "arrival_s": jobs["arrival_s"].to_numpy(),
        "start_s": outcome["start_s"],
        "end_s": np.where(outcome["state"] == "completed", outcome["end_s"], np.nan),
        "pool": pool_names[pool],
        "accelerator": accel_names[pool],
        "chips": jobs["chips"].to_numpy(),
        "chip_share": jobs["chip_share"].to_numpy(),
        "software_stack": jobs["stack"].to_numpy(),
        "model": jobs["model"].to_numpy(),
        "state": outcome["state"],
        "reason": outcome["reason"],
        "preemptions": np.bincount(segments["job"], minlength=len(jobs)) if len(jobs) else np.zeros(0, np.int64),
        "lost_chip_s": (np.bincount(segments["job"], weights=segments["lost_chip_s"], minlength=len(jobs))
                        if len(jobs) else np.zeros(0)),
    })
    return _with_steps(table, pool, steps)


def _with_steps(table: pd.DataFrame, pool: np.ndarray, steps) -> pd.DataFrame:
    """Layout, MFU and bottleneck of each transformer job on the pool it ran on (blank where the roofline
    applies or the job never started)."""
    n = len(table)
    layout = np.full(n, "", dtype=object)
    mfu = np.full(n, np.nan)
    neck = np.full(n, "", dtype=object)
    share = np.full(n, np.nan)
    activity = np.full(n, np.nan)
    if steps is not None and n:
        width = steps.step_s.shape[1]
        ran = np.flatnonzero(steps.applies & (pool >= 0) & (pool < width))
        at = pool[ran]
        index = steps.layout[ran, at]
        ok = index >= 0
        ran, at, index = ran[ok], at[ok], index[ok]
        labels = np.array(steps.labels + [""], dtype=object)
        layout[ran] = labels[index]
        mfu[ran] = steps.mfu[ran, at]
        neck[ran] = np.array(BOTTLENECKS, dtype=object)[steps.bottleneck[ran, at]]
        share[ran] = steps.share[ran, at]
        if steps.activity is not None:
            activity[ran] = steps.activity[ran, at]
    return table.assign(layout=layout, mfu=mfu, bottleneck=neck, bottleneck_share=share, activity=activity)


def inference_chip_events(fleet: Fleet, plans, switches) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per pool with replicas: chips held by active replicas as change events (times [s], ±chips)."""
    events: dict[int, list] = {}
    for plan in plans:
        times, deltas = switches[(plan.service, plan.group)].active_replicas()
        pair = events.setdefault(plan.pool, [[], []])
        pair[0].append(times)
        pair[1].append(deltas * plan.chips_per_replica)
    return {pool: (np.concatenate(t), np.concatenate(d)) for pool, (t, d) in sorted(events.items())}


def timeseries(jobs: pd.DataFrame, outcome: dict, fleet: Fleet, horizon_s: float, interval_s: float,
               start_date, inference_busy_chip_s: dict[int, np.ndarray] | None = None,
               inference_chips: dict[int, tuple] | None = None, power_events: dict[int, tuple] | None = None,
               cap_events: tuple | None = None, inference_energy_chip_s: dict[int, np.ndarray] | None = None,
               activity: np.ndarray | None = None, dip_events: list[dict] | None = None) -> pd.DataFrame:
    """Per bin: busy chips, utilization and online chips per accelerator type (``online_chips.<type>``, and
    of them rented: ``rented_chips.<type>``, only for types with a rented pool), queue length, IT and facility power,
    the chips held by active inference replicas per pool (``inference_chips.<pool>``) and, on shared pools,
    the chips busy with training jobs (``training_busy_chips.<pool>``, busy chip-equivalents), and each pool's
    IT power (``it_power_kw.<pool>``: its online chips idle plus the busy ones' increment, training and
    inference alike; the pools add up to ``it_power_kw``), which the money ledger splits energy by, and the same
    summed per accelerator type (``it_power_kw.by_type.<type>``).

    ``inference_busy_chip_s`` maps a pool index to the chip-seconds its inference replicas spent
    iterating in each bin (from the serving kernel, same bins); those chips are busy for that share.
    ``inference_energy_chip_s`` (same keys and bins) are those busy chip-seconds × the work's activity
    (``sim.serving.activity``): what the pool's power counts of the full-load increment (absent: all of it).
    ``inference_chips`` maps a pool index to the change events of its replicas' chips.
    ``power_events`` (a power-cap policy that throttles, ``sim.training.capping``) maps a pool index to
    ``(times, IT power changes [W], throttled chip changes)``: added to the power of its running jobs,
    and giving ``throttled_chips.<type>`` (bin mean of chips running below full clock) and
    ``busy_power_frac.<type>`` (the share of their unthrottled power increment the busy chips draw: 1 = unthrottled);
    ``cap_events`` ``(times, cap changes [W])`` give ``power_cap_kw`` (bin mean of the facility cap).

    A running training job's busy chips draw their increment × its activity factor on the pool (``activity``, N×P,
    ``sim.training.power``; None: 1); ``dip_events`` (dicts pool index -> ``(times, IT power changes [W])``: the
    checkpoint and restart dips of ``sim.results.checkpoints``) are added to the pools' power. Of the IT power,
    ``network_power_kw`` is the switches' share of the online chips (``network_w_per_chip``) and
    ``server_power_kw`` the servers' overhead (``server_power_overhead_frac`` of the chips' own power); the rest
    is the accelerators' own."""
    edges = bin_edges(horizon_s, interval_s)
    widths = np.diff(edges)
    start, end, pool_of = outcome["run_start_s"], outcome["end_s"], outcome["pool"]
    busy_weight = _busy_weight(jobs)
    runs = _runs(outcome, busy_weight)
    act = _activity_weight(outcome, runs, activity)
    data = {"time_s": edges[:-1], "datetime": bin_datetimes(start_date, edges[:-1])}
    it_power = np.zeros(len(edges) - 1)
    network_w = np.zeros(len(edges) - 1)
    server_w = np.zeros(len(edges) - 1)
    by_accel: dict[str, list] = {}
    rented: dict[str, np.ndarray] = {}
    training_on_shared: dict[str, np.ndarray] = {}
    pool_it_kw: dict[str, np.ndarray] = {}
    throttled: dict[str, list] = {}
    for p in fleet.pools:
        on, earlier = pool_of == p.index, runs["pool"] == p.index
        run_start = np.concatenate((start[on], runs["start_s"][earlier]))
        run_end = np.concatenate((end[on], runs["end_s"][earlier]))
        weight = np.concatenate((busy_weight[on], runs["weight"][earlier]))
        busy = binned_mean(*interval_events(run_start, run_end, weight, horizon_s), edges)
        increment = p.busy_w_with_server - p.idle_w_with_server
        training_w = binned_mean(*interval_events(run_start, run_end, weight * increment * np.concatenate(
            (act[0][on], act[1][earlier])), horizon_s), edges)
        for dips in dip_events or ():
            if p.index in dips:
                training_w = training_w + binned_mean(*dips[p.index], edges)
        training_w = np.where(busy > 0, training_w, 0.0)  # no rounding residue where no job ran
        if p.shared:
            training_on_shared[p.name] = busy
        online = binned_mean(*(np.array(v, dtype=float) for v in p.chip_events(horizon_s)), edges)
        serving = (inference_busy_chip_s or {}).get(p.index)
        serving_w = 0.0
        if serving is not None:
            serving = serving[: len(widths)] / widths
            energy = (inference_energy_chip_s or {}).get(p.index)
            energy = serving if energy is None else energy[: len(widths)] / widths
            if p.shared and p.index in (inference_chips or {}):
                # no busier than the active replicas' chips: a replica switched off drains its last
                # requests on chips already handed back to training; that overlap is not counted twice
                clipped = np.minimum(serving, binned_mean(*inference_chips[p.index], edges))
                energy = energy * np.divide(clipped, serving, out=np.ones_like(serving), where=serving > 0)
                serving = clipped
            busy = busy + serving
            serving_w = energy * increment
        busy_w = serving_w + training_w
        pool_power = online * p.idle_w_with_server + busy_w
        if power_events is not None:
            times, watts, chips = power_events.get(p.index, (np.zeros(0),) * 3)
            saved = binned_mean(times, watts, edges)
            pool_power = pool_power + saved
            throttle = throttled.setdefault(p.accelerator.id, [0.0, 0.0, 0.0])
            throttle[0] = throttle[0] + binned_mean(times, chips, edges)
            throttle[1] = throttle[1] - saved
            throttle[2] = throttle[2] + busy_w
        it_power += pool_power
        network_w += online * p.network_w_per_chip
        server_w += (pool_power - online * p.network_w_per_chip) * (
            p.server_power_overhead_frac / (1.0 + p.server_power_overhead_frac))
        pool_it_kw[p.name] = pool_power / 1e3
        pair = by_accel.setdefault(p.accelerator.id, [0.0, 0.0])
        pair[0] = pair[0] + busy
        pair[1] = pair[1] + online
        if p.owner == "rented":
            rented[p.accelerator.id] = rented.get(p.accelerator.id, 0.0) + online
    for accel, (busy, online) in sorted(by_accel.items()):
        data[f"busy_chips.{accel}"] = busy
        data[f"utilization.{accel}"] = np.divide(busy, online, out=np.zeros_like(busy), where=online > 0)
    for accel, (_, online) in sorted(by_accel.items()):
        data[f"online_chips.{accel}"] = online
    for accel, online in sorted(rented.items()):
        data[f"rented_chips.{accel}"] = online
    left_queue = _left_queue_s(outcome)
    queued = (outcome["reason"] == "") | np.isfinite(left_queue)  # waited, perhaps until its pools left
    arrival = jobs["arrival_s"].to_numpy()
    first = outcome["start_s"]
    wait_start = np.concatenate((np.where(queued, arrival, np.nan), runs["end_s"]))
    wait_end = np.concatenate((np.where(np.isnan(first), left_queue, first), runs["restart_s"]))
    data["queue_length"] = binned_mean(*interval_events(wait_start, wait_end, np.ones(len(wait_start)), horizon_s),
                                       edges)
    for pool, (times, deltas) in (inference_chips or {}).items():
        data[f"inference_chips.{fleet.pools[pool].name}"] = binned_mean(times, deltas, edges)
    for name, busy in training_on_shared.items():
        data[f"training_busy_chips.{name}"] = busy
    for accel, (chips, saved_w, busy_w) in sorted(throttled.items()):
        data[f"throttled_chips.{accel}"] = chips
        data[f"busy_power_frac.{accel}"] = 1.0 - np.divide(saved_w, busy_w, out=np.zeros_like(busy_w),
                                                            where=busy_w > 0)
    data["it_power_kw"] = it_power / 1e3
    data["network_power_kw"] = network_w / 1e3
    data["server_power_kw"] = server_w / 1e3
    data["facility_power_kw"] = it_power * fleet.site.pue / 1e3
    if cap_events is not None:
        data["power_cap_kw"] = binned_mean(*cap_events, edges) / 1e3
    for name, kw in pool_it_kw.items():
        data[f"it_power_kw.{name}"] = kw
    by_type: dict[str, np.ndarray] = {}
    for p in fleet.pools:
        by_type[p.accelerator.id] = by_type.get(p.accelerator.id, 0.0) + pool_it_kw[p.name]
    for accel, kw in sorted(by_type.items()):
        data[f"it_power_kw.by_type.{accel}"] = kw
    return pd.DataFrame(data)


def bin_datetimes(start_date, times_s: np.ndarray) -> np.ndarray:
    """Calendar time of each ``times_s`` [s] after the scenario start, as datetime64 to the microsecond
    (a pandas datetime column; ``sim.scenario.units.date_at`` vectorised)."""
    offsets = np.round(np.asarray(times_s, dtype=np.float64) * 1e6).astype("timedelta64[us]")
    return np.datetime64(start_date, "us") + offsets


def iso_datetimes(series: pd.DataFrame) -> pd.DataFrame:
    """The time series with its ``datetime`` column as ISO 8601 text (``2026-01-05T13:00:00``, with
    microseconds only when a bin starts inside a second), as ``timeseries.csv`` stores it."""
    values = series["datetime"].to_numpy().astype("datetime64[us]")
    seconds = values.astype("datetime64[s]")
    if (values == seconds).all():
        text = np.datetime_as_string(seconds, unit="s")
    else:
        text = np.array([date.isoformat() for date in values.astype(object)], dtype=object)
    return series.assign(datetime=text)


def peak_it_power_w(jobs: pd.DataFrame, outcome: dict, fleet: Fleet, horizon_s: float,
                    inference_chips: dict[int, tuple] | None = None, power_events: dict[int, tuple] | None = None,
                    inference_busy: tuple | None = None, activity: np.ndarray | None = None,
                    dip_events: list[dict] | None = None) -> float:
    """Exact peak of IT power over the run (not a bin mean): idle of online chips + busy increments (training jobs'
    at their activity factor, less what throttled clocks save: ``power_events``, and the checkpoint dips
    ``dip_events``, as ``timeseries``; pass only dips that are exact in time, ``sim.results.checkpoints``).

    Replica chips count at full load: all of them on dedicated pools, the active ones on shared pools
    (from ``inference_chips``, counted from the pool's online date). With ``inference_busy`` ``(edges,
    {pool: energy-weighted busy chip-seconds per bin})`` (a cap policy that counts inference as it draws,
    ``sim.training.capping``) they count at each bin's mean busy power instead, as the cluster counted them."""
    start, end, pool_of = outcome["run_start_s"], outcome["end_s"], outcome["pool"]
    busy = _busy_weight(jobs)
    increment = np.array([p.busy_w_with_server - p.idle_w_with_server for p in fleet.pools] + [0.0])
    runs = _runs(outcome, busy)
    act = _activity_weight(outcome, runs, activity)
    weight_w = np.concatenate((busy * increment[pool_of] * act[0], runs["weight"] * increment[runs["pool"]] * act[1]))
    times, deltas = interval_events(np.concatenate((start, runs["start_s"])), np.concatenate((end, runs["end_s"])),
                                    weight_w, horizon_s)
    floor_w = np.array([(0 if p.shared or inference_busy is not None else fleet.peak_reserved_chips(p.index))
                        * increment[p.index] for p in fleet.pools])
    windows = np.array([p.online_window(horizon_s) for p in fleet.pools]).reshape(-1, 2)
    online_t = [windows[:, 0], windows[:, 1]]  # replicas count from online_from to online_until
    online_w = [floor_w, -floor_w]
    for p in fleet.pools:  # idle chips follow the pool's deliveries
        chip_t, chip_d = p.chip_events(horizon_s)
        online_t.append(np.array(chip_t, dtype=float))
        online_w.append(np.array(chip_d, dtype=float) * p.idle_w_with_server)
    if inference_busy is not None:
        edges, busy_by_pool = inference_busy
        widths = np.diff(edges)
        for pool, busy in busy_by_pool.items():
            watts = np.asarray(busy, dtype=np.float64)[: len(widths)] / widths * increment[pool]
            online_t.append(edges)
            online_w.append(np.diff(np.concatenate(([0.0], watts, [0.0]))))
    for pool, (chip_t, chip_d) in (inference_chips or {}).items() if inference_busy is None else ():
        p = fleet.pools[pool]
        if p.shared:
            online_t.append(np.maximum(chip_t, p.online_from_s))
            online_w.append(chip_d * increment[pool])
    for event_t, event_w, *_ in [*(power_events or {}).values(), *(v for d in dip_events or () for v in d.values())]:
        online_t.append(event_t)
        online_w.append(event_w)
    return step_max(np.concatenate([times] + online_t), np.concatenate([deltas] + online_w), horizon_s)


def _runs(outcome: dict, busy_weight: np.ndarray) -> dict[str, np.ndarray]:
    """The preempted runs with their busy weight, and when each job started again (inf: not yet)."""
    seg = outcome["segments"]
    if len(seg["job"]) == 0:
        empty = np.zeros(0)
        return {"job": seg["job"], "pool": seg["pool"], "start_s": empty, "end_s": empty, "weight": empty,
                "restart_s": empty}
    order = np.lexsort((seg["start_s"], seg["job"]))
    job = seg["job"][order]
    same_job_next = np.append(job[1:] == job[:-1], False)
    next_start = np.append(seg["start_s"][order][1:], np.nan)
    current = outcome["run_start_s"][job]
    restart = np.where(same_job_next, next_start, np.where(np.isnan(current), _left_queue_s(outcome)[job], current))
    return {"job": job, "pool": seg["pool"][order], "start_s": seg["start_s"][order], "end_s": seg["end_s"][order],
            "weight": busy_weight[job], "restart_s": restart}


def _activity_weight(outcome: dict, runs: dict, activity: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Activity factor of each job's current run (on its pool; 1 where it never ran) and of each preempted run."""
    pool = np.asarray(outcome["pool"], dtype=np.int64)
    if activity is None or activity.size == 0:
        return np.ones(len(pool)), np.ones(len(runs["pool"]))
    padded = np.concatenate((activity, np.ones((activity.shape[0], 1))), axis=1)  # pool -1: no pool
    return padded[np.arange(len(pool)), pool], padded[runs["job"], runs["pool"]]


def _left_queue_s(outcome: dict) -> np.ndarray:
    """When each job left the queue without running (rejected once its pools had all left), inf if not."""
    left = outcome.get("left_queue_s")
    return left if left is not None else np.full(len(outcome["end_s"]), np.inf)


def _busy_weight(jobs: pd.DataFrame) -> np.ndarray:
    return busy_chip_equivalents(jobs["chips"].to_numpy(), jobs["chip_share"].to_numpy())


def summary(jobs_out: pd.DataFrame, series: pd.DataFrame, fleet: Fleet, horizon_s: float,
            peak_it_w: float, outcome: dict | None = None, warmup_s: float = 0.0) -> dict:
    """The run's headline numbers (see the README's output section for each key); with a shared pool
    or a pool leaving within the run, also ``training`` (preemption and deferral counts); with a shared
    pool, ``shared_pools``. Online chip-time (utilization denominators) counts each pool's chips over
    ``ResolvedPool.online_chip_seconds`` (its deliveries and a burst pool's rentals included);
    ``fleet_cost_usd`` counts the charged chip-time (``charged_chip_seconds``: a reserved term's whole terms).

    JCT and queue-wait statistics count only jobs arriving at or after ``warmup_s`` [s];
    ``jct_s_counts`` says how many submitted jobs they leave out and why."""
    state = jobs_out["state"].to_numpy()
    counts = {s: int((state == s).sum()) for s in STATES}
    beyond = int((state == "beyond-horizon").sum())
    reasons = jobs_out.loc[state == "rejected", "reason"].str.split(" (", n=1, regex=False).str[0]
    measured = jobs_out[jobs_out["arrival_s"].to_numpy() >= warmup_s]
    measured_state = measured["state"].to_numpy()
    done = measured[measured_state == "completed"]
    started = measured[~np.isnan(measured["start_s"].to_numpy())]
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
            online = sum(p.online_chip_seconds(0.0, horizon_s) for p in fleet.pools if p.accelerator.id == accel)
            util[accel] = busy / online if online else 0.0
    fleet_cost = sum(p.charged_chip_seconds(0.0, horizon_s) / 3600.0 * (p.chip_cost_usd_per_hour
                                                                         + p.hardware_usd_per_chip_hour)
                     for p in fleet.pools)
    for accel, group in done.groupby("accelerator"):
        jct_by_accel[accel] = _stats((group["end_s"] - group["arrival_s"]).to_numpy())
    out = {
        "horizon_s": horizon_s,
        "jobs": {"in_input": len(jobs_out), "submitted": len(jobs_out) - beyond, **counts,
                 "beyond_horizon": beyond,
                 "rejected_by_reason": {str(k): int(v) for k, v in reasons.value_counts().sort_index().items()}},
        "jct_s": _stats((done["end_s"] - done["arrival_s"]).to_numpy()),
        "jct_s_counts": jct_counts(state, jobs_out["arrival_s"].to_numpy(), warmup_s),
        "jct_s_lower_bound": _stats(jct_lower_bound_s(measured, horizon_s)),
        "jct_s_by_accelerator": jct_by_accel,
        "queue_wait_s": _stats((started["start_s"] - started["arrival_s"]).to_numpy()),
        "still_queued_wait_s": _stats((horizon_s - still_waiting["arrival_s"]).to_numpy()),
        "utilization_by_accelerator": util,
        "it_energy_kwh": it_kwh,
        "it_energy_by_part_kwh": _energy_by_part(series, widths, it_kwh),
        "facility_energy_kwh": facility_kwh,
        "energy_cost_usd": facility_kwh * site.electricity_usd_per_kwh,
        "carbon_kg": facility_kwh * site.carbon_g_per_kwh / 1000.0,
        "fleet_cost_usd": fleet_cost,
        "peak_it_power_kw": peak_it_w / 1e3,
        "peak_facility_power_kw": peak_it_w * site.pue / 1e3,
        "power_cap_kw": site.power_cap_w / 1e3 if site.power_cap_w is not None else None,
        "pue": site.pue,
    }
    mfu = mfu_by_accelerator(jobs_out, horizon_s)
    if mfu:
        out["mfu_by_accelerator"] = mfu
    if any(p.shared or p.online_until_s < horizon_s or p.retirements for p in fleet.pools) \
            or getattr(fleet, "group_windows", None):
        out["training"] = _preemption_summary(jobs_out, outcome)
    if any(p.shared for p in fleet.pools):
        out["shared_pools"] = _shared_pool_summary(series, fleet, horizon_s, widths)
    return out


def _energy_by_part(series: pd.DataFrame, widths: np.ndarray, it_kwh: float) -> dict[str, float]:
    """IT energy [kWh] split into the accelerators' own, their servers' overhead and the network switches' (the
    ``server_power_kw`` and ``network_power_kw`` columns; the accelerators' is the rest)."""
    parts = {name: float((series[f"{name}_power_kw"].to_numpy() * widths).sum() / 3600.0)
             if f"{name}_power_kw" in series else 0.0 for name in ("server", "network")}
    return {"accelerators": it_kwh - parts["server"] - parts["network"], "servers": parts["server"],
            "network": parts["network"]}


def mfu_by_accelerator(jobs_out: pd.DataFrame, horizon_s: float) -> dict[str, float]:
    """Chip-hour-weighted MFU of the transformer jobs (step-time model) that ran on each accelerator type:
    Σ mfu · chips · run time / Σ chips · run time, run time from first start to end (or the horizon)."""
    if "mfu" not in jobs_out or not len(jobs_out):
        return {}
    mfu = jobs_out["mfu"].to_numpy(np.float64)
    start = jobs_out["start_s"].to_numpy(np.float64)
    end = np.fmin(np.nan_to_num(jobs_out["end_s"].to_numpy(np.float64), nan=horizon_s), horizon_s)
    weight = jobs_out["chips"].to_numpy(np.float64) * np.maximum(end - start, 0.0)
    used = ~np.isnan(mfu) & ~np.isnan(start) & (weight > 0)
    accel = jobs_out["accelerator"].to_numpy()
    out = {}
    for name in sorted(set(accel[used])):
        on = used & (accel == name)
        out[str(name)] = float((mfu[on] * weight[on]).sum() / weight[on].sum())
    return out


def training_by_accelerator(jobs_out: pd.DataFrame, job_energy_kwh: np.ndarray) -> dict[str, dict]:
    """Per accelerator type, the completed transformer training jobs (those with a step-time-model MFU): how
    many, their mean gang [chips], mean run time [days] from first start to end (preemptions and restarts
    included), chip-hour-weighted MFU, the bottleneck term that bounds the most of their chip-hours with its
    chip-hour-weighted mean share of the step among the jobs it bounds, and mean facility energy per job [MWh]
    (``job_energy_kwh``: busy chips at idle plus the increment × the job's activity factor, less throttling and
    checkpoint dips, × PUE: the money report's rule). With one such job per
    accelerator, these are that job's figures. Empty when no such job completed."""
    if "mfu" not in jobs_out or not len(jobs_out):
        return {}
    mfu = jobs_out["mfu"].to_numpy(np.float64)
    done = (jobs_out["state"].to_numpy() == "completed") & ~np.isnan(mfu)
    run_s = jobs_out["end_s"].to_numpy(np.float64) - jobs_out["start_s"].to_numpy(np.float64)
    chips = jobs_out["chips"].to_numpy(np.float64)
    weight = chips * run_s
    accel = jobs_out["accelerator"].to_numpy()
    term = jobs_out["bottleneck"].to_numpy()
    share = jobs_out["bottleneck_share"].to_numpy(np.float64)
    out = {}
    for name in sorted(set(accel[done])):
        on = done & (accel == name)
        terms = sorted(set(term[on]))
        hours = [weight[on & (term == t)].sum() for t in terms]
        top = terms[int(np.argmax(hours))]
        bound = on & (term == top)
        out[str(name)] = {
            "jobs": int(on.sum()),
            "chips": float(chips[on].mean()),
            "run_days": float(run_s[on].mean() / 86400.0),
            "mfu": float((mfu[on] * weight[on]).sum() / weight[on].sum()),
            "bottleneck": str(top),
            "bottleneck_share": float((share[bound] * weight[bound]).sum() / weight[bound].sum()),
            "energy_mwh": float(job_energy_kwh[on].mean() / 1e3),
        }
    return out


def jct_counts(state: np.ndarray, arrival_s: np.ndarray, warmup_s: float) -> dict[str, int]:
    """Every submitted job once: ``included`` in the JCT statistics (completed, arrived at or after the
    warm-up), or why not — arrived during the warm-up, or (arrived after it) still running, still queued
    at the horizon, or rejected. The five add up to ``jobs.submitted``."""
    submitted = state != "beyond-horizon"
    after = submitted & (arrival_s >= warmup_s)
    return {"included": int((after & (state == "completed")).sum()),
            "before_warmup": int((submitted & ~after).sum()),
            "still_running": int((after & (state == "running")).sum()),
            "still_queued": int((after & (state == "queued")).sum()),
            "rejected": int((after & (state == "rejected")).sum())}


def jct_lower_bound_s(measured: pd.DataFrame, horizon_s: float) -> np.ndarray:
    """JCT [s] of the completed jobs, and ``horizon − arrival`` of those still running or queued (their JCT
    is at least that): each statistic of these values is a lower bound on the same statistic of the
    jobs' true JCT, which a longer run would show. Rejected jobs have no JCT and are left out."""
    state = measured["state"].to_numpy()
    arrival = measured["arrival_s"].to_numpy()
    done = state == "completed"
    censored = (state == "running") | (state == "queued")
    return np.concatenate((measured["end_s"].to_numpy()[done] - arrival[done], horizon_s - arrival[censored]))


def _preemption_summary(jobs_out: pd.DataFrame, outcome: dict | None) -> dict:
    """Counts of training jobs that inference or a leaving pool preempted, or inference deferred
    (``sim.training.sharing``)."""
    preemptions = jobs_out["preemptions"].to_numpy()
    deferred = outcome["deferred"] if outcome is not None else np.zeros(len(jobs_out), dtype=bool)
    return {"preempted_jobs": int((preemptions > 0).sum()), "preemptions": int(preemptions.sum()),
            "lost_chip_hours": float(jobs_out["lost_chip_s"].sum() / 3600.0),
            "deferred_jobs": int(deferred.sum())}


def _shared_pool_summary(series: pd.DataFrame, fleet: Fleet, horizon_s: float, widths: np.ndarray) -> dict:
    """Per shared pool: chip-hours held by active replicas, and chip-hours of the replicas' chips lent to
    training (held by no active replica: every replica's chips × online time − the active ones)."""
    out = {}
    for p in fleet.pools:
        if not p.shared:
            continue
        column = f"inference_chips.{p.name}"
        active = float((series[column].to_numpy() * widths).sum()) if column in series else 0.0
        online_s = p.online_seconds(horizon_s)
        out[p.name] = {"inference_chip_hours": active / 3600.0,
                       "chip_hours_lent_to_training": (fleet.peak_reserved_chips(p.index) * online_s - active) / 3600.0}
    return out
