"""Throttled inference replicas under a site power cap (``policy.power_cap.kind`` ``throttle`` or ``shed``).

Serving runs before training (``sim.serving.stage``), so the clocks of replica groups are decided before training
from what is known then: the cap schedule (``site.power_cap_mw``, piecewise constant between its dates), the
fleet's idle floor and the priorities (``workloads.inference[].priority``, default 100; training jobs' default 0).
In each window of constant cap ``C`` (``replica_clocks``):

* a service whose priority is below the highest training priority runs at ``min_clock_frac`` while a cap is in
  force (training comes first; how much power training will want is not known before it runs, so the service is
  slowed for the whole window — a simplification: a real controller would slow it only while training wants
  the power);
* the other services share ``C`` − the idle floor of every chip (and the slowed services' power) highest priority
  first (ties: file order), at full load: those that do not fit are slowed, the lowest priority first, down to
  ``min_clock_frac`` (``sim.policies.capping.clocks_within``), as for training jobs.

Only LLM replica groups on all run are slowed (not autoscaled, windowed or burst groups, nor ranking services:
those stay at full clock and count at full load here). A slowed group is served as windowed copies of itself
(``sim.fleet.windows``), one per window of constant clock, each with the kernel parameters of its chips at that
clock (``sim.fleet.power_limit.clocked``: compute rates × f; HBM keeps its rate, so memory-bound decode loses less
than prefill). At a window's end a copy takes no new request and finishes those it holds at its own clock while
the next copy takes the new ones (the drain overlaps on the same chips, as for any windowed group). Its chips draw
``power_frac(f)`` of their busy increment (``throttled_power``): the training cluster counts inference at that
power per time bin, and the time series and peak subtract what the slower clock saves.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sim.policies.capping import clocks_within, power_frac


def throttleable(service, s: int, fleet) -> list[int]:
    """Groups of service ``s`` that may be slowed: LLM groups on all run (no autoscale, window or burst)."""
    if service.family != "llm":
        return []
    return [g for g, group in enumerate(service.replicas)
            if group.autoscale is None and group.burst is None and (s, g) not in fleet.group_windows]


def replica_clocks(services, fleet, cap_windows, training_priority: int | None, min_clock: float
                   ) -> dict[tuple[int, int], tuple[tuple[float, float, float], ...]]:
    """``(service, group)`` -> ``((from_s, until_s, clock), ...)`` covering the run, for the groups slowed in at
    least one window (module docstring); ``cap_windows`` are ``(from_s, until_s, cap_w)`` in time order."""
    index = {p.name: p.index for p in fleet.pools}

    def full_w(group) -> float:
        return group.count * group.chips_per_replica * fleet.busy_increment_facility_w(index[group.pool])

    slowable = [throttleable(service, s, fleet) for s, service in enumerate(services)]
    fixed_w = sum(full_w(group) for s, service in enumerate(services) for g, group in enumerate(service.replicas)
                  if g not in slowable[s])
    demand = [sum(full_w(services[s].replicas[g]) for g in slowable[s]) for s in range(len(services))]
    below = [training_priority is not None and service.priority < training_priority for service in services]
    ranked = sorted((s for s in range(len(services)) if demand[s] > 0 and not below[s]),
                    key=lambda s: (-services[s].priority, s))
    per_window = []
    for _, _, cap_w in cap_windows:
        clocks = [1.0] * len(services)
        if cap_w is not None:
            budget = cap_w - fleet.idle_facility_w - fixed_w
            for s in range(len(services)):
                if below[s] and demand[s] > 0:
                    clocks[s] = min_clock
                    budget -= demand[s] * power_frac(min_clock)
            fitted = clocks_within(budget * (1.0 + 1e-12), [demand[s] for s in ranked], min_clock)
            for s, f in zip(ranked, fitted if fitted is not None else [min_clock] * len(ranked)):
                clocks[s] = f
        per_window.append(clocks)
    out = {}
    for s in range(len(services)):
        if all(clocks[s] >= 1.0 for clocks in per_window):
            continue
        segments: list[list[float]] = []
        for (begin, end, _), clocks in zip(cap_windows, per_window):
            if segments and segments[-1][2] == clocks[s]:
                segments[-1][1] = end
            elif end > begin:
                segments.append([begin, end, clocks[s]])
        for g in slowable[s]:
            out[(s, g)] = tuple((a, b, f) for a, b, f in segments)
    return out


def split_groups(plans: list, clocks: dict, first_group: int, plan_at) -> list:
    """``plans`` with each slowed group replaced by its windowed copies (numbered from ``first_group``);
    ``plan_at(plan, clock)`` gives a group's plan at a clock. Plans of groups not in ``clocks`` are unchanged."""
    out, k = [], 0
    for plan in plans:
        segments = clocks.get((plan.service, plan.group))
        if not segments:
            out.append(plan)
            continue
        for begin, end, f in segments:
            base = plan if f >= 1.0 else plan_at(plan, f)
            out.append(replace(base, group=first_group + k, window=(begin, end), clock=f))
            k += 1
    return out


def throttled_power(plans, busy_chip_s: list, fleet, edges: np.ndarray) -> dict[int, tuple]:
    """Per pool with slowed copies: ``(times, IT power changes [W], throttled chip changes)`` step events (as
    ``sim.training.capping.PowerCap.power_events``): each bin's energy-weighted busy chip-seconds
    (``sim.serving.activity``) of a copy at clock ``f`` draw ``1 − power_frac(f)`` less of their busy increment,
    and its chips count as throttled over its window."""
    out: dict[int, list] = {}
    widths = np.diff(edges)
    for plan, busy in zip(plans, busy_chip_s):
        f = getattr(plan, "clock", 1.0)
        if f >= 1.0:
            continue
        pool = fleet.pools[plan.pool]
        saved = -np.asarray(busy, dtype=np.float64)[: len(widths)] / widths \
            * (pool.busy_w_with_server - pool.idle_w_with_server) * (1.0 - power_frac(f))
        steps = np.diff(np.concatenate(([0.0], saved, [0.0])))
        chips = plan.replicas * plan.chips_per_replica
        rows = out.setdefault(plan.pool, [[], [], []])
        rows[0] += [edges[: len(saved) + 1], np.array(plan.window, dtype=np.float64)]
        rows[1] += [steps, np.zeros(2)]
        rows[2] += [np.zeros(len(saved) + 1), np.array([chips, -chips], dtype=np.float64)]
    return {pool: tuple(np.concatenate(r) for r in rows) for pool, rows in sorted(out.items())}


def throttled_chip_hours(plans) -> float:
    """Replica chips held below full clock × hours (copies' windows)."""
    return sum(plan.replicas * plan.chips_per_replica * (plan.window[1] - plan.window[0])
               for plan in plans if getattr(plan, "clock", 1.0) < 1.0) / 3600.0


def apply_clocks(run, switches: dict | None = None) -> None:
    """Replace ``run``'s slowed groups (``run.context.replica_clocks``) by their windowed copies, numbered after
    its groups; ``switches`` (request level) receives each copy's window switches."""
    from sim.serving.autoscale import window_switches
    from sim.serving.llm.plan import plan_groups

    c = run.context
    if not c.replica_clocks:
        return
    first = max([len(run.service.replicas)] + [plan.group + 1 for plan in run.scaled_groups])

    def plan_at(plan, f: float):
        fresh = plan_groups(run.index, run.service, c.fleet, c.catalog, c.porting, clock=f, only=plan.group)[0]
        return replace(plan, kernel=fresh.kernel)

    run.scaled_groups = split_groups(run.scaled_groups, c.replica_clocks, first, plan_at)
    if switches is not None:
        for plan in run.scaled_groups:
            if plan.group >= first:
                switches[(plan.service, plan.group)] = window_switches(plan.replicas, plan.window, c.horizon_s)
