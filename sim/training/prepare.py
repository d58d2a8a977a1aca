"""Turn a job table and a fleet into the arrays the cluster (``sim.training.cluster``) runs on.

Done once per run, vectorised: every job's run time on every pool (the roofline kernel), which pools
may take it (stack, porting, memory, gang size, allowed accelerator types, and the site power cap: a
job that alone, on an otherwise idle site, would exceed it), the job's *shape* for the wait queue, and a
reason for every job that no pool can take. The cluster then only looks numbers up.

Run time of a job on pool p [s] (infinite where p cannot take the job), from its step time on p: the
step-time model of its parallel layout (``sim.training.steps``) for transformer models with layers and a
hidden size, else the roofline kernel's micro-step:
* work-based (``samples``): samples ÷ samples per step × the step time on p;
* time-based with a ``reference_accelerator`` r: ``duration_s · step_p / step_r``, the throughput ratio
  of the job's model between the two chips (from peak FLOP/s × efficiency when the model is unknown or
  does not fit on r); a zero-length job takes 0 s wherever its stack runs;
* time-based without reference: ``duration_s`` on every chip (wall-clock-bound jobs, e.g. trace pods).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim import kernels
from sim.catalog import Catalog
from sim.catalog.efficiency import efficiency_matrix
from sim.fleet import Fleet, allocation
from sim.fleet.build import CAP_TOLERANCE
from sim.fleet.network import accelerator_network, fleet_networks
from sim.kernels.reference import STATUS_GANG_TOO_LARGE, STATUS_STACK_UNSUPPORTED
from sim.training.ramps import PortRamps, port_epochs, run_times_by_epoch
from sim.training.steps import NO_LAYOUT_REASON, STATUS_NO_LAYOUT, StepPlan, applies_to, merge_plans, plan_steps
from sim.workload.jobs import busy_chip_equivalents

STATUS_NOT_ALLOWED = 9
STATUS_OVER_POWER_CAP = 10
STATUS_OVER_BUDGET = 11
STATUS_OVER_SPARES = 12
STATUS_OVER_PLANT = 13
REASONS = {**kernels.STATUS_REASONS, STATUS_NOT_ALLOWED: "accelerator-not-allowed",
           STATUS_OVER_POWER_CAP: "over-site-power-cap", STATUS_NO_LAYOUT: NO_LAYOUT_REASON,
           STATUS_OVER_BUDGET: "over-rack-or-row-budget", STATUS_OVER_SPARES: "larger-than-pool-without-spares",
           STATUS_OVER_PLANT: "over-cooling-plant-capacity"}


@dataclass
class PreparedJobs:
    """Per-job arrays (length N) and the N×P run-time matrix (inf where the pool cannot take the job)."""

    arrival_s: np.ndarray
    chips: np.ndarray          # chips the gang holds (1 for a shared job)
    share_units: np.ndarray    # thousandths of a chip for shared jobs, 0 for whole-chip jobs
    busy_chips: np.ndarray     # chip-equivalents the job keeps busy (chips × chip_share)
    duration_s: np.ndarray     # N×P
    eligible: list[tuple[int, ...]]
    eligible_mask: np.ndarray  # N×P: the pool can take the job
    reject_reason: list[str]
    shape: list[int]           # index into shape_pools; -1 for jobs no pool can take
    shape_pools: list[tuple[int, ...]]  # eligible pools of each shape (eligible pools × gang × share)
    ramps: PortRamps | None = None  # per-epoch run times of pools that dated ports change (sim.training.ramps)
    steps: StepPlan | None = None  # layout, MFU and bottleneck of transformer jobs on each pool


def prepare_jobs(jobs: pd.DataFrame, fleet: Fleet, catalog: Catalog, porting=(), start=None,
                 horizon_s: float = np.inf, busy_power_frac: float = 1.0, floor_w: float | None = None,
                 spare_chips: tuple[int, ...] | None = None, highest_cap_w: float | None = None) -> PreparedJobs:
    """``busy_power_frac``: the share of its full-load power increment a job draws at the lowest clock the power-cap
    policy may set (``throttle``; 1 otherwise), for rejecting jobs that exceed the cap even alone; ``floor_w`` the
    site power under it [W] (default ``Fleet.committed_floor_w``: inference reserved at full load; ``throttle`` and
    ``shed`` count inference as it draws, so only the idle floor then).
    ``porting``: the scenario's ports; ``start`` (the scenario's start date) and ``horizon_s`` place dated
    ports and their ramps in the run (``sim.training.ramps``). ``spare_chips``: hot spares per pool (``failures``),
    held out of placement for the whole run: a job whose gang fits the pool but not what the spares leave would
    wait for ever, so it is refused (``larger-than-pool-without-spares``). ``highest_cap_w``: with a cooling plant
    that limits IT power (``sim.facility.plant_cap_schedule``), the highest the cap under both the site's cap and the
    plant's gets over the run [W, facility terms]: a job over it alone would wait for ever
    (``over-cooling-plant-capacity``)."""
    pools = fleet.pools
    chips = jobs["chips"].to_numpy(np.int64)
    share = jobs["chip_share"].to_numpy(np.float64)
    shared = (chips == 1) & (share < 1.0)

    # -- efficiency input: the ports in force, per porting epoch (one epoch without dated ports) --
    plans = []  # the step plan of each epoch, in epoch order

    def run_times(grants):
        efficiency = efficiency_matrix(jobs["stack"].to_numpy(), [p.accelerator for p in pools], grants)
        duration, status, plan = _run_times(jobs, fleet, catalog, efficiency, grants)
        plans.append(plan)
        return duration, status

    arrival = jobs["arrival_s"].to_numpy(np.float64)
    duration, status, ramps = run_times_by_epoch(run_times, arrival, porting, start, horizon_s, kernels.STATUS_OK)
    epochs = port_epochs(porting, start, horizon_s) if len(plans) > 1 else []
    steps = merge_plans(plans, np.searchsorted(np.asarray(epochs), arrival, side="right"))
    # -- end of the efficiency input --
    status = np.where(_allowed_mask(jobs, fleet), status, STATUS_NOT_ALLOWED)
    status = np.where((status == kernels.STATUS_OK) & _over_power_cap(chips, share, fleet, busy_power_frac, floor_w),
                      STATUS_OVER_POWER_CAP, status)
    if highest_cap_w is not None:
        status = np.where((status == kernels.STATUS_OK)
                          & _over_power_cap(chips, share, fleet, busy_power_frac, floor_w, highest_cap_w),
                          STATUS_OVER_PLANT, status)
    status = np.where((status == kernels.STATUS_OK) & _over_budgets(chips, share, fleet, busy_power_frac),
                      STATUS_OVER_BUDGET, status)
    if spare_chips is not None and any(spare_chips):
        status = np.where((status == kernels.STATUS_OK) & (chips[:, None] > _gang_without_spares(fleet, spare_chips)),
                          STATUS_OVER_SPARES, status)
    duration = np.where(status == kernels.STATUS_OK, duration, np.inf)
    given = jobs["reject_reason"].to_numpy()
    ok = (status == kernels.STATUS_OK) & (given == "")[:, None]
    share_units = np.where(shared, np.maximum(1, np.round(share * 1000)), 0).astype(np.int64)
    eligible, shape, shape_pools = _eligibility(ok, chips, share_units)
    reasons = _reject_reasons(given, ok, status, [p.name for p in pools])
    return PreparedJobs(
        arrival_s=jobs["arrival_s"].to_numpy(np.float64),
        chips=chips,
        share_units=share_units,
        busy_chips=busy_chip_equivalents(chips, share),
        duration_s=duration,
        eligible=eligible,
        eligible_mask=ok,
        reject_reason=reasons,
        shape=shape,
        shape_pools=shape_pools,
        ramps=ramps,
        steps=steps,
    )


def _gang_without_spares(fleet: Fleet, spare_chips: tuple[int, ...]) -> np.ndarray:
    """Per pool, the largest gang that still fits once the hot spares are placed: whole servers
    (``min(chips_per_server, domain size)`` chips each) taken at the start, as ``sim.training.failures`` places them
    (after the reservations, with every delivery there: what the pool can ever give training)."""
    allocators = fleet.new_allocators()
    out = []
    for p in fleet.pools:
        allocator = allocators[p.index]
        server = min(p.chips_per_server, allocator.domain_chips) or 1
        for _ in range(spare_chips[p.index] // server):
            if allocator.place(server) is None:
                break
        out.append(allocation.max_gang_chips(allocator, p.multi_domain_gangs))
    return np.asarray(out, dtype=np.int64)[None, :]


def _eligibility(ok: np.ndarray, chips: np.ndarray, share_units: np.ndarray):
    """Per job: eligible pools (tuple), and its *shape* — jobs interchangeable for placement (same
    eligible pools, gang size and chip share) share one, so the wait queue can group them."""
    if len(ok) == 0:
        return [], [], []
    patterns, pattern_of = _unique_rows(ok)
    pattern_pools = [tuple(np.flatnonzero(row).tolist()) for row in patterns]
    eligible = [pattern_pools[k] for k in pattern_of.tolist()]
    keys = np.stack([pattern_of, chips, share_units], axis=1)
    shape_keys, shape_of = _unique_rows(keys)
    has_pool = np.array([bool(pattern_pools[k]) for k in shape_keys[:, 0]])
    shape_id = np.cumsum(has_pool) - 1
    shape = np.where(has_pool[shape_of], shape_id[shape_of], -1).tolist()
    shape_pools = [pattern_pools[k] for k, usable in zip(shape_keys[:, 0], has_pool) if usable]
    return eligible, shape, shape_pools


def pool_orders(run_time_s: np.ndarray, eligible_mask: np.ndarray,
                usd_per_chip_second: np.ndarray | None = None) -> list[tuple[int, ...]]:
    """Per job, its eligible pools from fastest to slowest (or cheapest to dearest when per-pool
    prices are given); ties — including jobs that never end (infinite run time) — keep fleet order.
    Computed once, vectorised, for objective-driven policies."""
    key = run_time_s
    if usd_per_chip_second is not None:  # a free chip (price 0) that never finishes the job must not give 0 × inf
        prices = np.broadcast_to(usd_per_chip_second[None, :], run_time_s.shape)
        key = np.multiply(run_time_s, prices, out=np.full(run_time_s.shape, np.inf),
                          where=np.isfinite(run_time_s) | (prices > 0))
    # ineligible pools sort after every eligible one, even after eligible pools with an infinite key
    largest = np.finfo(np.float64).max
    rank = np.where(eligible_mask, np.nan_to_num(key, nan=largest, posinf=largest), np.inf)
    order = np.argsort(rank, axis=1, kind="stable")
    columns = np.arange(key.shape[1])
    order = np.where(columns[None, :] < eligible_mask.sum(axis=1)[:, None], order, -1)
    if len(order) == 0:
        return []
    patterns, index = _unique_rows(order)
    tuples = [tuple(p for p in row if p >= 0) for row in patterns.tolist()]
    return [tuples[i] for i in index.tolist()]


def _unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique rows, index of each row's unique row) — a 1-D hashable view is much faster than axis=0."""
    rows = np.ascontiguousarray(rows.astype(np.int64))
    view = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).reshape(-1)
    _, first, inverse = np.unique(view, return_index=True, return_inverse=True)
    return rows[first], inverse.reshape(-1)


def _reject_reasons(given: np.ndarray, ok: np.ndarray, status: np.ndarray, names: list[str]) -> list[str]:
    """A reader's reason, else why each pool refused the job, for every job no pool can take."""
    reasons = given.astype(object)
    for j in np.flatnonzero(~ok.any(axis=1) & (given == "")):
        detail = ", ".join(f"{names[p]}: {REASONS[int(status[j, p])]}" for p in range(len(names)))
        reasons[j] = f"no-eligible-pool ({detail})"
    return reasons.tolist()


def _model_arrays(jobs: pd.DataFrame, catalog: Catalog) -> dict[str, np.ndarray]:
    """Per-job model properties; unknown models ('') get neutral values and ``has_model`` False."""
    fields = ("train_flop_per_sample", "params", "train_bytes_per_param", "activation_bytes_per_sample",
              "microbatch_samples", "embedding_params")
    codes, unique = pd.factorize(jobs["model"].to_numpy(), use_na_sentinel=False)
    table = {f: np.zeros(len(unique)) for f in fields}
    has = np.zeros(len(unique), dtype=bool)
    for u, name in enumerate(unique):
        spec = catalog.models.get(name)
        if spec is None:
            table["train_flop_per_sample"][u] = 1.0
            table["microbatch_samples"][u] = 1.0
            continue
        has[u] = True
        for f in fields:
            table[f][u] = getattr(spec, f)
    codes = codes.reshape(-1)
    out = {f: table[f][codes] for f in fields}
    out["has_model"] = has[codes]
    return out


def _pool_arrays(accelerators, domain_chips, max_gang_chips) -> dict[str, np.ndarray]:
    return {
        "peak_flops": np.array([a.peak_flops for a in accelerators]),
        "memory_bandwidth_bps": np.array([a.memory_bandwidth_tbps * 1e12 for a in accelerators]),
        "memory_bytes": np.array([a.memory_gb * 1e9 for a in accelerators]),
        "scale_up_bps": np.array([a.scale_up_bandwidth_gbps * 1e9 for a in accelerators]),
        "scale_out_bps": np.array([a.scale_out_bandwidth_gbps * 1e9 for a in accelerators]),
        "domain_chips": np.asarray(domain_chips, dtype=np.float64),
        "max_gang_chips": np.asarray(max_gang_chips, dtype=np.float64),
    }


def _kernel(samples, m, chips, pool, efficiency):
    return kernels.training_time_s(
        samples, m["train_flop_per_sample"], m["params"], m["train_bytes_per_param"],
        m["activation_bytes_per_sample"], m["microbatch_samples"], m["embedding_params"],
        chips.astype(np.float64), pool["peak_flops"], pool["memory_bandwidth_bps"], pool["memory_bytes"],
        pool["scale_up_bps"], pool["scale_out_bps"], pool["domain_chips"], pool["max_gang_chips"],
        np.ascontiguousarray(efficiency),
    )


def _run_times(jobs, fleet, catalog, efficiency, porting):
    pools = fleet.pools
    m = _model_arrays(jobs, catalog)
    chips = np.maximum(jobs["chips"].to_numpy(np.int64), 1)
    allocators = fleet.new_allocators()
    max_gang = [allocation.max_gang_chips(allocators[p.index], p.multi_domain_gangs) for p in pools]
    pool = _pool_arrays([p.accelerator for p in pools], [p.domain_chips for p in pools], max_gang)
    samples = jobs["samples"].to_numpy(np.float64)
    measured = jobs["duration_s"].to_numpy(np.float64)
    time_based = ~np.isnan(measured)
    one_step = chips * m["microbatch_samples"]
    step_samples = np.where(time_based, one_step, samples)
    step_time, status = _kernel(step_samples, m, chips, pool, efficiency)
    plan = plan_steps(jobs, catalog, [p.accelerator for p in pools], fleet_networks(fleet), max_gang,
                      efficiency)
    layered = plan.applies
    if layered.any():  # transformer jobs: the step-time model of their layout replaces the roofline
        with np.errstate(divide="ignore", invalid="ignore"):
            steps_needed = np.where(time_based, 1.0, samples / plan.tokens_per_step)[layered]
            step_time[layered] = np.where(plan.status[layered] == kernels.STATUS_OK,
                                          steps_needed[:, None] * plan.step_s[layered], np.inf)
        status[layered] = plan.status[layered]
    # unknown model: only the stack and the gang size decide where it runs; no memory check
    no_model = ~m["has_model"]
    status[no_model] = np.where(
        efficiency[no_model] <= 0, STATUS_STACK_UNSUPPORTED,
        np.where(chips[no_model, None] > pool["max_gang_chips"][None, :], STATUS_GANG_TOO_LARGE, kernels.STATUS_OK))
    duration = step_time.copy()
    refs = jobs["reference_accelerator"].to_numpy()
    duration[time_based] = measured[time_based, None]
    for ref in pd.unique(refs[time_based]):
        if not ref:
            continue
        rows = np.flatnonzero(time_based & (refs == ref))
        ratio = _throughput_ratio(rows, ref, jobs, catalog, m, chips, step_time, efficiency, pools, porting)
        # an infinite ratio is a pool with no throughput for the job (its stack does not run there): the
        # job never runs on it, even a zero-length one (Philly has some), so 0 × inf must not make a NaN
        duration[rows] = np.multiply(measured[rows, None], ratio, out=np.full(ratio.shape, np.inf),
                                     where=np.isfinite(ratio))
    return duration, status, plan


def _throughput_ratio(rows, ref, jobs, catalog, m, chips, step_time, efficiency, pools, porting):
    """step_p / step_ref for the given jobs, from the roofline; peak×efficiency ratio where the model is
    unknown or the job does not fit on the reference chip. A job whose stack the reference chip lacks
    is taken as measured with that chip's best native stack."""
    accel = catalog.accelerators[ref]
    ref_eff = efficiency_matrix(jobs["stack"].to_numpy()[rows], [accel], porting)
    ref_eff = np.where(ref_eff > 0, ref_eff, max(accel.stacks.values()))
    sub = {k: v[rows] for k, v in m.items()}
    ref_pool = _pool_arrays([accel], [accel.scale_up_domain_chips], [np.inf])
    ref_step, _ = _kernel(sub["microbatch_samples"] * chips[rows], sub, chips[rows], ref_pool, ref_eff)
    layered = applies_to(jobs["model"].to_numpy()[rows], catalog)
    if layered.any():  # the same layout model on the reference chip, on a network of one domain per server
        at = rows[layered]
        gang = int(chips[at].max())
        plan = plan_steps(jobs.iloc[at], catalog, [accel], [accelerator_network(accel, gang)], [np.inf],
                          ref_eff[layered])
        ref_step[layered] = plan.step_s
    ref_rate = accel.peak_flops * ref_eff[:, 0]
    pool_rate = np.array([p.accelerator.peak_flops for p in pools])[None, :] * efficiency[rows]
    with np.errstate(divide="ignore", invalid="ignore"):
        by_roofline = step_time[rows] / ref_step
        by_peak = ref_rate[:, None] / pool_rate
    usable = np.isfinite(by_roofline) & (by_roofline > 0) & sub["has_model"][:, None]
    return np.where(usable, by_roofline, by_peak)


def _over_power_cap(chips, share, fleet: Fleet, busy_power_frac: float = 1.0, floor_w: float | None = None,
                    cap_w: float | None = None) -> np.ndarray:
    """N×P: the job alone (at ``busy_power_frac`` of its full-load increment), over ``floor_w`` (default: every chip
    idle and inference replicas at full load), would exceed ``cap_w`` [W], by default the site power cap (the
    highest value of a dated cap schedule: the job may wait for it)."""
    if cap_w is None:
        cap_w = max([w for _, w in fleet.site.power_cap_dates], default=fleet.site.power_cap_w)
    if cap_w is None:
        return np.zeros((len(chips), len(fleet.pools)), dtype=bool)
    increment_w = np.array([fleet.busy_increment_facility_w(p.index) for p in fleet.pools])
    floor_w = fleet.committed_floor_w if floor_w is None else floor_w
    alone_w = floor_w + busy_chip_equivalents(chips, share)[:, None] * (increment_w * busy_power_frac)[None, :]
    return alone_w > cap_w * (1.0 + CAP_TOLERANCE)  # the same test as the cluster's within_cap


def _over_budgets(chips, share, fleet: Fleet, busy_power_frac: float = 1.0) -> np.ndarray:
    """N×P: no placement of the job alone (at ``busy_power_frac`` of its full-load increment) on the pool, every
    chip delivered and idle but the inference replicas held from the start, keeps its racks and rows within their
    budgets (``sim.fleet.budgets``: the same search the cluster makes); such a job would wait for ever."""
    from sim.fleet.budgets import budget_layout, find_placement, reserved_w
    from sim.fleet.network import gang_chips_on

    out = np.zeros((len(chips), len(fleet.pools)), dtype=bool)
    layout = budget_layout(fleet.pools)
    if layout is None:
        return out
    allocators = fleet.new_allocators()
    floor = [idle + held for idle, held in zip(layout.idle_w, reserved_w(layout, allocators))]

    def headroom(b: int) -> float:
        return layout.limit_w[b] * (1.0 + CAP_TOLERANCE) - floor[b]

    busy = busy_chip_equivalents(chips, share)
    shared = (chips == 1) & (share < 1.0)
    kinds, inverse = np.unique(np.stack([chips, busy, shared]).T, axis=0, return_inverse=True)
    for pool in fleet.pools:
        if not layout.has(pool.index):
            continue
        for k, (gang, busy_chips, one_share) in enumerate(kinds.tolist()):
            placed = 1 if one_share else gang_chips_on(pool, int(gang))
            per_chip_w = busy_chips / placed * layout.busy_increment_w[pool.index] * busy_power_frac
            if find_placement(allocators[pool.index], layout.shares[pool.index], placed, per_chip_w, headroom,
                              layout.groups[pool.index]) is None:
                out[inverse.ravel() == k, pool.index] = True
    return out


def _allowed_mask(jobs: pd.DataFrame, fleet: Fleet) -> np.ndarray:
    allowed = jobs["allowed_accelerators"].to_numpy()
    ids = [p.accelerator.id for p in fleet.pools]
    mask = np.ones((len(jobs), len(ids)), dtype=bool)
    for value in pd.unique(allowed):
        if not value:
            continue
        names = set(value.split("|"))
        rows = allowed == value
        mask[rows] = np.array([i in names for i in ids])[None, :]
    return mask
