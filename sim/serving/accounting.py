"""Accounting shared by the serving families: request states, busy fraction, replica time, energy, cost and
headroom.

Energy and cost of a replica group's chips: idle power (with the server share) while a replica is
active and its pool online, plus the full-load increment times the work's activity while it iterates
(energy-weighted busy chip-seconds from the kernel or the fluid model, ``sim.serving.activity``: a prefill
draws near the full increment, a decode iteration or a small ranking batch about half; a copy slowed under a
site cap, ``sim.serving.throttle``, draws ``power_frac`` of its clock of that). That is IT energy;
facility energy is IT energy × PUE. Cost is chip cost (the pool's chip-hour cost: an owned chip's hardware
amortized with maintenance, or the rental rate) for every active online hour plus the facility energy at the
site's electricity price; ``group_cost_per_bin`` splits it by time bin. Chips an autoscaled replica lends to
training are charged to no one here.

A service's figures, and those of one accelerator type, come from the same per-group amounts
(``GroupUsage``) summed over the groups in question (``serving_figures``), so the per-type costs per
token, weighted by the types' tokens, add up to the service's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.kernels.serving_reference import DONE, NOT_OFFERED, REJECTED, UNFINISHED
from sim.policies.capping import power_frac

STATUS_NAMES = {DONE: "completed", UNFINISHED: "unfinished", REJECTED: "rejected", NOT_OFFERED: "not-offered"}


@dataclass(frozen=True)
class GroupUsage:
    """One LLM replica group over the run. Every amount adds over groups; the KV peak and capacity do not."""

    chip_s: float             # chip-seconds of active replicas while the pool is online
    busy_chip_s: float        # chip-seconds iterating
    energy_chip_s: float      # chip-seconds iterating × the iterations' activity (sim.serving.activity)
    busy_replica_s: float     # replica-seconds iterating
    it_kwh: float             # IT energy of the group's chips [kWh]
    cost_usd: float           # chip cost of active online hours + facility energy at the site's price [USD]
    saturation_tokens: float  # output tokens its active replicas give at full batches (sim.serving.headroom)
    batch_fill_s: float       # busy replica-seconds, each weighted by its batch ÷ batch cap [s]
    kv_token_s: float         # KV tokens reserved × seconds, summed over replicas [token-s]
    kv_capacity_token_s: float  # KV capacity × active replica-seconds [token-s]
    kv_peak_tokens: int       # largest KV reservation of one of its replicas
    kv_capacity_tokens: int   # KV capacity of one of its replicas


def request_counts(status: np.ndarray) -> dict[str, int]:
    """``requests.{offered, completed, rejected, unfinished, not_offered}`` from the kernel's states
    (offered = completed + rejected + unfinished)."""
    return {"offered": int((status != NOT_OFFERED).sum()), "completed": int((status == DONE).sum()),
            "rejected": int((status == REJECTED).sum()), "unfinished": int((status == UNFINISHED).sum()),
            "not_offered": int((status == NOT_OFFERED).sum())}


def replica_seconds(groups, switches, fleet, horizon_s: float) -> list[float]:
    """Active replica-seconds of each group while its pool is online (every replica, without switches)."""
    out = []
    for g, plan in enumerate(groups):
        online_from, online_until = fleet.pools[plan.pool].online_window(horizon_s)
        switch = switches[g] if switches else None
        window = getattr(plan, "window", None)
        if switch is None and window is not None:  # every replica while its group is active (sim.fleet.windows)
            out.append(plan.replicas * max(0.0, min(online_until, window[1]) - max(online_from, window[0])))
        elif switch is None:  # every replica, whenever its pool is online
            out.append(plan.replicas * (online_until - online_from))
        else:
            out.append(switch.replica_seconds(online_from, online_until))
    return out


def group_usage(plan, fleet, busy_chip_s: np.ndarray, replica_s: float, saturation_tokens: float,
                batch_fill_s: float, kv_token_s: float, kv_peak_tokens: int,
                energy_chip_s: np.ndarray | None = None) -> GroupUsage:
    """A group's ``GroupUsage`` from its plan, busy and energy-weighted busy chip-seconds per bin (the latter
    absent: every busy second at full load), active replica-seconds and headroom amounts (energy and cost as in
    the module docstring)."""
    pool, site = fleet.pools[plan.pool], fleet.site
    chip_s = replica_s * plan.chips_per_replica
    busy = float(busy_chip_s.sum())
    energy = busy if energy_chip_s is None else float(np.sum(energy_chip_s))
    clock = getattr(plan, "clock", 1.0)
    if clock < 1.0:  # a slowed copy (sim.serving.throttle) draws power_frac of its busy increment, as the site counts
        energy *= power_frac(clock)
    joules = chip_s * pool.idle_w_with_server + energy * (pool.busy_w_with_server - pool.idle_w_with_server)
    facility_kwh = joules * site.pue / 3.6e6
    capacity = int(plan.kernel["kv_capacity_tokens"])
    return GroupUsage(
        chip_s=chip_s, busy_chip_s=busy, energy_chip_s=energy, busy_replica_s=busy / plan.chips_per_replica,
        it_kwh=joules / 3.6e6,
        cost_usd=chip_s / 3600.0 * pool.chip_cost_usd_per_hour + facility_kwh * site.electricity_usd_per_kwh,
        saturation_tokens=saturation_tokens, batch_fill_s=batch_fill_s, kv_token_s=kv_token_s,
        kv_capacity_token_s=capacity * replica_s, kv_peak_tokens=int(kv_peak_tokens), kv_capacity_tokens=capacity)


def serving_figures(usages: list[GroupUsage], tokens: float, horizon_s: float) -> dict:
    """Energy, cost, busy fraction, headroom and KV figures of some replica groups that produced ``tokens``
    output tokens over ``horizon_s`` (README, "Outputs"):

    * ``it_energy_per_1k_tokens_kwh`` [kWh of IT energy], ``cost_per_1m_tokens_usd`` (None without tokens);
    * ``utilization``: busy fraction, chip-seconds iterating ÷ chip-seconds of active replicas (at most 1).
      A replica iterating with one request in its batch counts as busy, so it reads near 1 well below
      capacity; the next figures show the headroom;
    * ``saturation_tokens_per_s``: output tokens/s of the active replicas at full batches of the traffic's
      mean request (``sim.serving.headroom``), averaged over the horizon; ``load_frac`` = ``tokens_per_s`` ÷
      it (None when it is 0);
    * ``mean_batch_occupancy_frac``: time-weighted mean batch of busy replicas ÷ batch cap (None when never
      busy); it can pass 1 a little when requests shorter than the mean share a KV-limited batch;
    * ``kv_mean_occupancy_frac``: KV tokens reserved ÷ KV capacity, time-weighted over active replicas;
    * ``kv_peak_occupancy_frac``: the largest ratio of a group's KV peak to its capacity, and that group's
      ``kv_peak_tokens`` and ``kv_capacity_tokens`` (so ``kv_peak_tokens <= kv_capacity_tokens``).
    """
    cost_usd = sum(u.cost_usd for u in usages)
    it_kwh = sum(u.it_kwh for u in usages)
    chip_s = sum(u.chip_s for u in usages)
    busy_replica_s = sum(u.busy_replica_s for u in usages)
    saturation = sum(u.saturation_tokens for u in usages)
    kv_capacity_s = sum(u.kv_capacity_token_s for u in usages)
    peak = max(usages, key=lambda u: u.kv_peak_tokens / u.kv_capacity_tokens)  # the first of equals
    return {
        "it_energy_per_1k_tokens_kwh": it_kwh / tokens * 1e3 if tokens > 0 else None,
        "cost_per_1m_tokens_usd": cost_usd / tokens * 1e6 if tokens > 0 else None,
        # at most 1: a replica switched off drains its last requests after its active time ends
        "utilization": min(1.0, sum(u.busy_chip_s for u in usages) / chip_s) if chip_s > 0 else 0.0,
        "saturation_tokens_per_s": saturation / horizon_s,
        "load_frac": tokens / saturation if saturation > 0 else None,
        "mean_batch_occupancy_frac": (sum(u.batch_fill_s for u in usages) / busy_replica_s
                                      if busy_replica_s > 0 else None),
        "kv_mean_occupancy_frac": sum(u.kv_token_s for u in usages) / kv_capacity_s if kv_capacity_s > 0 else 0.0,
        "kv_peak_occupancy_frac": peak.kv_peak_tokens / peak.kv_capacity_tokens,
        "kv_peak_tokens": peak.kv_peak_tokens,
        "kv_capacity_tokens": peak.kv_capacity_tokens,
    }


def groups_by_accelerator(groups, fleet) -> dict[str, list[int]]:
    """Indices of the replica groups on each accelerator type, types in name order."""
    by_accel: dict[str, list[int]] = {}
    for g, plan in enumerate(groups):
        by_accel.setdefault(fleet.pools[plan.pool].accelerator.id, []).append(g)
    return dict(sorted(by_accel.items()))


def step_integral(times: np.ndarray, deltas: np.ndarray, points: np.ndarray) -> np.ndarray:
    """∫ from 0 to each of ``points`` of the step function that starts at 0 and jumps by ``deltas`` at
    ``times`` (events at or before 0 count from 0)."""
    order = np.argsort(times, kind="stable")
    t, level = np.asarray(times, dtype=np.float64)[order], np.cumsum(np.asarray(deltas, dtype=np.float64)[order])
    integral = np.concatenate(([0.0], np.cumsum(level[:-1] * np.diff(t))))
    k = np.searchsorted(t, points, side="right") - 1
    inside = k >= 0
    out = np.zeros(len(points))
    out[inside] = integral[k[inside]] + level[k[inside]] * (points[inside] - t[k[inside]])
    return out


def group_cost_per_bin(pool, site, chips_per_replica: int, replica_events, energy_chip_s: np.ndarray,
                       edges: np.ndarray, clock: float = 1.0) -> np.ndarray:
    """A replica group's cost in each time-series bin [USD], as ``GroupUsage.cost_usd`` counts it over the
    run: its active replicas' chips at the pool's chip-hour cost while the pool is online, plus the facility
    energy of those chips idle and of the full-load increment over the energy-weighted busy chip-seconds
    ``energy_chip_s`` (per kernel bin; × ``power_frac(clock)`` for a copy slowed to ``clock``, sim.serving.throttle),
    at the site's price.
    ``replica_events`` are the active replica count's change events (times [s], deltas): the autoscaler's
    switches, or every replica from the start. Kernel bins past the last edge count in the last bin."""
    lo, hi = pool.online_window(float(edges[-1]))
    times, deltas = replica_events
    seconds = np.diff(step_integral(times, deltas, np.clip(edges, lo, hi)))
    chip_s = seconds * chips_per_replica
    busy = np.zeros(len(edges) - 1)
    energy_chip_s = np.asarray(energy_chip_s, dtype=np.float64)
    n = min(len(busy), len(energy_chip_s))
    busy[:n] = energy_chip_s[:n]
    busy[-1] += energy_chip_s[n:].sum()
    if clock < 1.0:
        busy *= power_frac(clock)
    joules = chip_s * pool.idle_w_with_server + busy * (pool.busy_w_with_server - pool.idle_w_with_server)
    return chip_s / 3600.0 * pool.chip_cost_usd_per_hour + joules * site.pue / 3.6e6 * site.electricity_usd_per_kwh


def replica_events(replicas: int, switch, window: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The active replica count of a group as change events: the autoscaler's ``GroupSwitches``, or (none)
    every replica over the group's ``window`` (``sim.fleet.windows``; none: from the start)."""
    if switch is None and window is not None:
        return np.array([window[0], window[1]]), np.array([float(replicas), -float(replicas)])
    if switch is None:
        return np.array([0.0]), np.array([float(replicas)])
    return switch.active_replicas()


def units_per_bin(edges: np.ndarray, times_s: np.ndarray | None = None, weights: np.ndarray | None = None,
                  per_bin: np.ndarray | None = None, total: float = 0.0) -> np.ndarray:
    """Output tokens or completed requests per time-series bin: request-level, ``weights`` at ``times_s``
    (each at its finish; the horizon in the last bin); fluid, ``total`` spread over the bins in proportion to
    ``per_bin`` (requests served per bin). Either way the bins add up to what the summary divides by."""
    n = len(edges) - 1
    if times_s is not None:
        where = np.clip(np.searchsorted(edges, times_s, side="right") - 1, 0, n - 1)
        return np.bincount(where, np.asarray(weights, dtype=np.float64), minlength=n)[:n]
    per_bin = np.asarray(per_bin, dtype=np.float64)[:n]
    share = per_bin / per_bin.sum() if per_bin.sum() > 0 else np.zeros(n)
    return np.pad(share, (0, n - len(share))) * total
