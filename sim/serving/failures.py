"""Failures of inference replicas (scenario ``failures``): when each replica is out, and what share of the time.

What is modelled:

* **Rates.** A replica's chips fail at the same per-chip rates as training's (``sim.training.failures``: per
  component class and accelerator type, a profile plus the scenario's overrides). A replica group's failures
  are one superposed stream at ``Λ = Σ_c λ_c × replicas × chips_per_replica`` (exponential gaps, or Weibull
  gaps of the same mean as training's), drawn from the run's own ``serving_failures`` random stream, so
  training's failure draws do not change. Each event strikes a replica drawn uniformly; its class is drawn
  with probability ``λ_c / Σ λ``. An event that strikes a replica already out is dropped (thinning: the
  stream then has the rate of the replicas actually up).
* **Outage.** A struck replica fails at once: the request-level kernels reroute the requests it holds or, if
  no replica can take them, lose them (``SWITCH_FAIL``). It is out for an exponential time of the class's
  mean ``repair_time`` (software failures, repair time 0: it restarts at once, its requests are still
  rerouted) and then returns. With ``hot_spares`` on its pool (whole servers, ``chips_per_server`` chips each)
  a free spare replaces the failed server at once: the replica is back at the same instant (its requests are
  still rerouted) and the spare is busy until the repair ends. Simplification: serving counts its spares
  apart from training's (each sees the pool's whole ``hot_spares``), a replica's repair takes its server's
  chips out of nothing else, and the replica's chips stay reserved while it is out.
* **Which groups.** Every replica group fails, each while it serves:

  - *On all run* (no autoscaler, no window, no burst rental): a failure is a replica that goes inactive for
    its repair time.
  - *Windowed* (``active_from`` / ``active_until``, LLM and ranking): the stream runs over the window only, and
    a replica still in repair at the window's end does not come back (its chips go back to training when the
    repair ends, not at the window's end: ``hold_in_repair``).
  - *Autoscaled* (LLM, request level; the autoscaler needs the requests): a replica fails while the autoscaler
    has it on. The stream is drawn at the group's maximum replicas and thinned: an event striking a replica
    that is off, or already out, is dropped, so the events that count have the rate of the replicas on and up.
    The requests it holds are rerouted or lost as for a fixed group; it returns after its repair if the
    autoscaler has it on then, else it returns off (``autoscaled_switches``). Simplification: the autoscaler
    does not know of failures (it decides from the requests alone, as without them: it neither replaces a
    failed replica nor keeps one on to finish a repair). Its reservation schedule (shared pools) keeps the
    chips of a replica switched off while in repair until the repair ends (``hold_scaled_in_repair``), as a
    windowed group's; a failed replica's chips stay reserved while the autoscaler has it on.
  - *Serving burst* (``sim.serving.burst``): each rental's replicas fail while rented, as a windowed group
    (``rental_outages``: drawn once the rentals are known, after the stage's draw, service by service). The
    cloud replaces a failed server after the class's repair time while the rental runs on; a replica in repair
    at the rental's end is simply gone with the rental.

  Pools with replicas placed by schedule (autoscaled, windowed, serving burst) get *training* failures too: a
  scale-up short of chips away for repair books them (``sim.training.sharing``).
* **Fluid fidelity.** No outage is drawn: each replica is up a share ``A = MTBF / (MTBF + MTTR)`` of the time,
  ``MTBF = 1 / (Σ_c λ_c × chips_per_replica)``, ``MTTR = Σ_c λ_c R_c / Σ_c λ_c`` (``R_c`` the class's repair
  time; 0 on a pool with hot spares), and a group's capacity in every bin is that of ``A × replicas`` replicas
  (the expected share; the drawn outages of one run scatter around it). A windowed group, and a serving-burst
  group's rented copies, have that share of their replicas in the bins they are active (LLM and ranking).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.kernels.serving_reference import SWITCH_FAIL, SWITCH_OFF, SWITCH_ON


@dataclass(frozen=True)
class ServingFailures:
    """The failure model serving reads (``sim.training.failures.FailureConfig``'s rates, repairs and spares)."""

    rates_per_chip_s: np.ndarray   # P × C failures per chip-second, by pool and component class
    repair_s: tuple[float, ...]     # mean repair time per class [s]
    weibull_shape: float | None     # None: exponential gaps
    spare_chips: tuple[int, ...]    # hot spares per pool [chips]


def availability(failures: ServingFailures | None, pool: int, chips_per_replica: int) -> float:
    """Long-run share of time a replica of ``chips_per_replica`` chips on ``pool`` is up (module docstring)."""
    if failures is None:
        return 1.0
    rates = failures.rates_per_chip_s[pool]
    total = float(rates.sum())
    if total <= 0 or chips_per_replica <= 0:
        return 1.0
    mttr = 0.0 if failures.spare_chips[pool] > 0 else float(np.dot(rates, failures.repair_s)) / total
    return 1.0 / (1.0 + total * chips_per_replica * mttr)


def draw_outages(groups: list, failures: ServingFailures, fleet, horizon_s: float,
                 rng: np.random.Generator, switches: dict | None = None) -> dict[tuple[int, int], np.ndarray]:
    """Outages of ``groups`` (``GroupPlan``-like: service, group, pool, replicas, chips_per_replica), drawn in
    the order given: ``(service, group)`` -> array of rows ``(fail_s, back_s, replica)`` in time order, the
    replica numbered within its group; groups without an event are left out. ``switches`` maps the key of each
    autoscaled group among them to its ``GroupSwitches``: an event striking one of its replicas while the
    autoscaler has it off is dropped (thinning, as for a replica already out)."""
    switches = switches or {}
    drawn = []  # per group: event times, struck replicas, repair durations
    for plan in groups:
        rates = failures.rates_per_chip_s[plan.pool]
        total = float(rates.sum()) * plan.replicas * plan.chips_per_replica
        times: list[float] = []
        begin, end = getattr(plan, "window", None) or (0.0, horizon_s)  # a windowed group fails while active
        if total > 0:
            t = begin + _gap(total, failures.weibull_shape, rng)
            while t < end:
                times.append(t)
                t += _gap(total, failures.weibull_shape, rng)
        count = len(times)
        replica = rng.integers(plan.replicas, size=count)
        cdf = np.cumsum(rates) / rates.sum() if total > 0 else np.ones(len(rates))
        cls = np.minimum(np.searchsorted(cdf, rng.random(count), side="right"), len(rates) - 1)
        means = np.asarray(failures.repair_s, dtype=np.float64)[cls]
        duration = rng.exponential(1.0, size=count) * means
        drawn.append((np.asarray(times, dtype=np.float64), replica, duration))
    outages: dict[tuple[int, int], list] = {}
    for pool in sorted({plan.pool for plan in groups}):  # spares are shared by a pool's groups
        members = [g for g, plan in enumerate(groups) if plan.pool == pool]
        server = max(1, fleet.pools[pool].chips_per_server)
        spares = failures.spare_chips[pool] // server
        spare_back: list[float] = []
        events = sorted((float(t), g, int(r), float(d)) for g in members
                        for t, r, d in zip(*drawn[g]))
        down_until = {g: np.zeros(groups[g].replicas) for g in members}
        scaled = {g: _switches_by_replica(switches[key], groups[g].replicas) for g in members
                  if (key := (groups[g].service, groups[g].group)) in switches}
        for t, g, r, d in events:
            if down_until[g][r] > t:
                continue  # already out: thinning
            if g in scaled and not _is_on(scaled[g][r], t):
                continue  # switched off by the autoscaler: thinning
            spare_back = [b for b in spare_back if b > t]
            if d > 0 and len(spare_back) < spares:
                spare_back.append(t + d)
                d = 0.0
            down_until[g][r] = t + d
            key = (groups[g].service, groups[g].group)
            outages.setdefault(key, []).append((t, t + d, r))
    return {key: np.array(rows, dtype=np.float64).reshape(-1, 3) for key, rows in outages.items()}


def replica_seconds_down(outages: np.ndarray | None, replicas: int, horizon_s: float,
                         window: tuple[float, float] | None = None, switches=None) -> tuple[float, float]:
    """``(down, active)`` replica-seconds of a group over the run: ``active`` its replicas' seconds on (all run; a
    windowed group's ``window``; an autoscaled group's ``switches``, ``GroupSwitches``, while the autoscaler has
    them on), ``down`` those of them out for repair (an autoscaled replica switched off while in repair is not
    down: it would not serve)."""
    if switches is not None:
        spans = _on_spans(switches, replicas, horizon_s)
        active = float(sum((e - b) for per in spans for b, e in per))
        down = 0.0
        for fail, back, replica in ([] if outages is None else outages.tolist()):
            for b, e in spans[int(replica)]:
                down += max(0.0, min(back, e, horizon_s) - max(fail, b))
        return down, active
    begin, end = window or (0.0, horizon_s)
    active = float(replicas * max(0.0, end - begin))
    if outages is None or len(outages) == 0 or active <= 0:
        return 0.0, active
    down = np.minimum(outages[:, 1], end) - outages[:, 0]
    return float(down.clip(0.0).sum()), active


def autoscaled_switches(switches, outages: np.ndarray | None,
                        replicas: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kernel's switch events of an autoscaled group with drawn outages: ``(times, replica, codes)``, replicas
    numbered within the group, sorted by time. The autoscaler's events (``GroupSwitches``, as ``SWITCH_ON`` /
    ``SWITCH_OFF``) are kept but those of a replica out for repair (in ``(fail_s, back_s]``: the autoscaler does
    not know of the failure and keeps deciding as before); ``SWITCH_FAIL`` at each failure; at its repair's end
    ``SWITCH_ON`` if the autoscaler has the replica on then (after its events at that instant), else
    ``SWITCH_OFF`` (back, inactive: a fallback like the group's other inactive replicas). At one instant: the
    autoscaler's events, then the outages' in their order (a return before a failure that follows it; a repair
    of length 0 fails then returns)."""
    t, r = switches.switch_s, switches.switch_replica
    codes = np.where(switches.switch_on, SWITCH_ON, SWITCH_OFF).astype(np.int8)
    if outages is None or not len(outages):
        return t, r, codes
    keep = np.ones(len(t), dtype=bool)
    rows = outages.tolist()
    by_replica: dict[int, list] = {}
    for fail, back, replica in rows:
        by_replica.setdefault(int(replica), []).append((fail, back))
    order = np.argsort(r, kind="stable")
    bounds = np.searchsorted(r[order], np.arange(replicas + 1))
    for replica, spans in by_replica.items():
        mine = order[bounds[replica]:bounds[replica + 1]]
        fails = np.array([f for f, _ in spans])
        backs = np.array([b for _, b in spans])
        k = np.searchsorted(fails, t[mine], side="left") - 1  # the last outage failing before the event
        inside = (k >= 0) & (t[mine] <= backs[np.maximum(k, 0)])
        keep[mine[inside]] = False
    per = _switches_by_replica(switches, replicas)
    times = [t[keep]]
    who = [r[keep]]
    kinds = [codes[keep]]
    order = [np.full(int(keep.sum()), -1.0)]
    for k, (fail, back, replica) in enumerate(rows):
        times.append(np.array([fail, back]))
        who.append(np.array([int(replica)] * 2, dtype=np.int64))
        kinds.append(np.array([SWITCH_FAIL, SWITCH_ON if _is_on(per[int(replica)], back) else SWITCH_OFF],
                              dtype=np.int8))
        order.append(np.array([2.0 * k, 2.0 * k + 1]))
    t_all, o_all = np.concatenate(times), np.concatenate(order)
    sort = np.lexsort((o_all, t_all))
    return t_all[sort], np.concatenate(who)[sort], np.concatenate(kinds)[sort]


def _switches_by_replica(switches, replicas: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per replica, its autoscaler events: (times, on) in time order."""
    order = np.argsort(switches.switch_replica, kind="stable")  # each replica's events stay in time order
    bounds = np.searchsorted(switches.switch_replica[order], np.arange(replicas + 1))
    times, on = switches.switch_s[order], switches.switch_on[order]
    return [(times[bounds[r]:bounds[r + 1]], on[bounds[r]:bounds[r + 1]]) for r in range(replicas)]


def _is_on(events: tuple[np.ndarray, np.ndarray], t: float) -> bool:
    """Whether the autoscaler has a replica on at ``t`` (after its events at ``t``)."""
    times, on = events
    k = int(np.searchsorted(times, t, side="right")) - 1
    return k >= 0 and bool(on[k])


def _on_spans(switches, replicas: int, horizon_s: float) -> list[list[tuple[float, float]]]:
    """Per replica, the spans ``[from_s, until_s)`` the autoscaler has it on, cut to the run."""
    spans: list[list[tuple[float, float]]] = [[] for _ in range(replicas)]
    since: list[float | None] = [None] * replicas
    for t, r, on in zip(switches.switch_s.tolist(), switches.switch_replica.tolist(), switches.switch_on.tolist()):
        if on and since[r] is None:
            since[r] = t
        elif not on and since[r] is not None:
            if min(t, horizon_s) > since[r]:
                spans[r].append((since[r], min(t, horizon_s)))
            since[r] = None
    for r, t in enumerate(since):
        if t is not None and t < horizon_s:
            spans[r].append((t, horizon_s))
    return spans


def hold_in_repair(schedule: list, group: int, window: tuple[float, float], chips: int, replicas: int,
                   outages: np.ndarray | None, horizon_s: float) -> bool:
    """Move a windowed group's release at its window's end (``window_changes``: ``(end, group, pool, chips,
    -replicas)`` in ``schedule``) later for replicas still in repair then: each is released when its repair
    ends (or never, after the horizon). Edits ``schedule`` in place; returns whether it changed."""
    end = window[1]
    if outages is None or not len(outages) or end >= horizon_s:
        return False
    back: dict[int, float] = {}
    for fail, until, replica in outages:
        if fail < end < until:
            back[int(replica)] = until
    if not back:
        return False
    for k, entry in enumerate(schedule):
        if entry[0] == end and entry[1] == group and entry[4] == -replicas:
            pool = entry[2]
            schedule[k] = (end, group, pool, chips, -(replicas - len(back)))
            schedule.extend((until, group, pool, chips, -1) for until in back.values() if until < horizon_s)
            return True
    return False


def hold_scaled_in_repair(schedule: list, group: int, switches, outages: np.ndarray | None, replicas: int,
                          held: int, horizon_s: float) -> bool:
    """Rewrite an autoscaled group's entries of the reservation schedule (``(time_s, group, pool, chips, ±replicas)``
    beyond the ``held`` replicas the fleet reserves all run; ``sim.serving.autoscale.reservation_changes``) so that
    the group holds, at every instant, the chips of its replicas the autoscaler has on *or* that are in repair: a
    replica switched off while in repair releases its chips when the repair ends (or never, after the horizon),
    as a windowed group's (``hold_in_repair``). Without such a replica the entries are those of before. Edits
    ``schedule`` in place; returns whether it changed."""
    if outages is None or not len(outages):
        return False
    mine = [e for e in schedule if e[1] == group]
    if not mine:
        return False
    pool, chips = mine[0][2], mine[0][3]
    spans = _on_spans(switches, replicas, horizon_s)
    for fail, back, replica in outages.tolist():
        spans[int(replica)].append((fail, min(back, horizon_s)))
    change: dict[float, int] = {}
    for per in spans:  # the union of each replica's spans on and in repair
        merged: list[list[float]] = []
        for b, e in sorted(per):
            if e <= b:
                continue  # back at once (a spare, a restart)
            if merged and b <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([b, e])
        for b, e in merged:
            change[b] = change.get(b, 0) + 1
            if e < horizon_s:
                change[e] = change.get(e, 0) - 1
    change[0.0] = change.get(0.0, 0) - held  # the held replicas are the fleet's, not the schedule's
    entries = [(t, group, pool, chips, d) for t, d in sorted(change.items()) if d != 0]
    if entries == sorted(mine, key=lambda e: e[0]):
        return False
    schedule[:] = [e for e in schedule if e[1] != group] + entries
    return True


def _gap(rate: float, shape: float | None, rng: np.random.Generator) -> float:
    if shape is None:
        return float(rng.exponential(1.0 / rate))
    return float(rng.weibull(shape)) / rate / math.gamma(1.0 + 1.0 / shape)
