"""Reactive autoscaling of inference replica groups, and what it means for the chips of shared pools.

No SimPy: the decisions depend only on the requests, so they are computed once, before the cluster
runs, from each group's request table (``arrival_s``, ``prompt_tokens``, ``output_tokens``).

**Decision.** Time is cut into intervals of ``autoscale.interval`` (``I``) from 0. The active replica
count of interval ``k + 1`` is set at ``(k + 1)·I`` from the work that *arrived in interval k*::

    active[k + 1] = clamp(ceil(W_k / (I · target_utilization_frac)), min_count, count)

It is reactive: it sees the previous interval's load, never the future, so a step in load is followed
one interval late (a test checks this). Interval 0 starts at ``min_count`` (a cold start; nothing has
been observed yet). ``target_utilization_frac`` is the headroom: 0.7 keeps each replica about 70 % busy.

**Work estimate** ``W_k`` [replica-seconds]: the router spreads a service's requests over all its
groups at run time, so a group is sized for its capacity share of the service's requests (its replicas
× nominal decode rate over the service's total; ``capacity_shares``). Every request costs
``prompt · s_prefill + output · s_decode`` where the per-token times come from the group's roofline
(``plan.kernel``, the same parameters the serving kernel uses) at a *representative batch*:

* decode at batch ``B = min(max_seqs, token_budget, kv_capacity_tokens // (p̄ + ō))`` of requests with
  mean context ``c̄ = p̄ + ō/2``: ``s_decode = iteration(B tokens, B·c̄ context) / B``;
* prefill of a mean prompt, in chunks of at most ``token_budget`` tokens, with its causal attention:
  ``s_prefill = iteration(chunk tokens, chunk·(chunk+1)/2 attended) / chunk``.

``p̄`` and ``ō`` are the mean prompt and output lengths of the service's requests over the run: a static
property of the traffic mix, like a benchmark figure an operator would size with (the *load* still comes
only from the previous interval). Real batches are smaller at low load, so this estimate runs slightly
optimistic there; the target utilization absorbs it.

**Outputs.** Per group, sorted switch events ``(switch_s, switch_replica, switch_on)``: replicas
``0..k−1`` are active when ``k`` are; a scale-up turns on the lowest inactive indices, a scale-down turns
off the highest active ones; the initial state is a block of "on" events at t = 0. A group without
``autoscale`` gets one block: every replica on at t = 0. For the cluster, per shared pool, a reservation
schedule of ``(time_s, group, pool, chips_per_replica, ±replicas)`` beyond the ``min_count`` replicas
that the fleet holds for the whole run (``Fleet.reservations``); dedicated pools have no schedule.

**Windows.** A replica group active only part of the run (``active_from``/``active_until`` or its pool's
online window, ``sim.fleet.windows``) is not autoscaled (validation): its switches turn every replica on at
the window's start and off at its end, and on any pool its chips enter the schedule as a scale-up at the
start and a scale-down at the end (``window_changes``), so training uses them outside the window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim.kernels.serving_reference import iteration_time_s, replica_tables


@dataclass(frozen=True)
class GroupSwitches:
    """When each replica of one group turns on or off: sorted by time; at one instant, in array order."""

    switch_s: np.ndarray        # float64[M], seconds
    switch_replica: np.ndarray  # int64[M], local replica index
    switch_on: np.ndarray       # bool[M]

    def active_replicas(self) -> tuple[np.ndarray, np.ndarray]:
        """The active count as change events: (times [s], +1/−1 deltas)."""
        return self.switch_s, np.where(self.switch_on, 1.0, -1.0)

    def replica_seconds(self, from_s: float, to_s: float) -> float:
        """Integral of the active replica count over [from_s, to_s] [replica-seconds]."""
        times = np.clip(self.switch_s, from_s, to_s)
        return float(np.sum(np.where(self.switch_on, 1.0, -1.0) * (to_s - times)))


@dataclass(frozen=True)
class ScalingPlan:
    """Switch events per replica group (keyed by ``(service, group)``) and the cluster's reservation
    schedule, sorted by (time, scale-downs first, group)."""

    switches: dict[tuple[int, int], GroupSwitches]
    schedule: list[tuple[float, int, int, int, int]] = field(default_factory=list)


def representative_seconds_per_token(kernel: dict, mean_prompt: float, mean_output: float) -> tuple[float, float]:
    """(prefill, decode) seconds of replica time per token at a representative batch (module docstring)."""
    _, rows = replica_tables([(1, kernel)])
    row = rows[0]
    budget = kernel["token_budget"]
    per_request = max(mean_prompt + mean_output, 1.0)
    batch = max(1, min(kernel["max_seqs"], budget, int(kernel["kv_capacity_tokens"] // per_request)))
    context = batch * (mean_prompt + mean_output / 2.0)
    decode = iteration_time_s(batch, batch, context, context, row) / batch
    chunk = min(budget, max(1.0, mean_prompt))  # a prompt's own causal attention, chunk by chunk
    prefill = iteration_time_s(chunk, 0, 0.0, chunk * (chunk + 1) / 2, row) / chunk
    return prefill, decode


def active_counts(arrival_s: np.ndarray, work_s: np.ndarray, horizon_s: float, interval_s: float,
                  min_count: int, max_count: int, target_utilization_frac: float) -> np.ndarray:
    """Active replicas in each interval ``[k·I, (k+1)·I)`` that starts before the horizon (reactive)."""
    n = max(1, math.ceil(horizon_s / interval_s - 1e-9))
    inside = (arrival_s >= 0) & (arrival_s < n * interval_s)
    k = (arrival_s[inside] // interval_s).astype(np.int64)
    work = np.bincount(k, weights=work_s[inside], minlength=n)[:n]
    needed = np.ceil(work / (interval_s * target_utilization_frac) - 1e-9).astype(np.int64)
    counts = np.empty(n, dtype=np.int64)
    counts[0] = min_count
    counts[1:] = np.clip(needed[:-1], min_count, max_count)
    return counts


def switches_from_counts(counts: np.ndarray, interval_s: float) -> GroupSwitches:
    """Switch events of a per-interval active count (interval k starts at ``k · interval_s``)."""
    times, replicas, on = [], [], []
    previous = 0
    for k, count in enumerate(counts.tolist()):
        if count == previous:
            continue
        t = k * interval_s
        changed = range(previous, count) if count > previous else range(previous - 1, count - 1, -1)
        for replica in changed:
            times.append(t)
            replicas.append(replica)
            on.append(count > previous)
        previous = count
    return GroupSwitches(np.asarray(times, dtype=np.float64), np.asarray(replicas, dtype=np.int64),
                         np.asarray(on, dtype=bool))


def capacity_shares(plans) -> dict[tuple[int, int], float]:
    """Each group's share of its service's load: its replicas × nominal decode rate over the service's."""
    rate = {(p.service, p.group): p.replicas * p.kernel.get("tokens_per_s", 1.0) for p in plans}
    total: dict[int, float] = {}
    for (s, _), r in rate.items():
        total[s] = total.get(s, 0.0) + r
    return {key: r / total[key[0]] for key, r in rate.items()}


def plan_scaling(plans, configs: dict, requests_by_service: dict, fleet, horizon_s: float) -> ScalingPlan:
    """Switch events of every group and the reservation schedule of shared pools.

    ``plans`` are every LLM replica group in service order (their position is the group number the
    cluster's schedule names); ``configs[(service, group)]`` is a group's ``autoscale`` section (absent or
    ``None``: every replica on for the whole run); ``requests_by_service[s]`` is service ``s``'s request
    table. The router places requests across all of a service's groups at run time, so each autoscaled
    group is sized for its capacity share of the service's load (``capacity_shares``), priced at its own
    speed."""
    switches, schedule = {}, []
    shares = capacity_shares(plans)
    for index, plan in enumerate(plans):
        config = configs.get((plan.service, plan.group))
        if getattr(plan, "window", None) is not None:  # validation refuses autoscale with a window
            switches[(plan.service, plan.group)] = window_switches(plan.replicas, plan.window, horizon_s)
            schedule += window_changes(plan.window, horizon_s, index, plan.pool, plan.chips_per_replica,
                                       plan.replicas)
            continue
        if config is None:
            switches[(plan.service, plan.group)] = switches_from_counts(np.array([plan.replicas]), horizon_s)
            continue
        requests = requests_by_service[plan.service]
        prompt = requests["prompt_tokens"].to_numpy(np.float64)
        output = requests["output_tokens"].to_numpy(np.float64)
        if len(requests):
            prefill_s, decode_s = representative_seconds_per_token(plan.kernel, prompt.mean(), output.mean())
        else:
            prefill_s = decode_s = 0.0
        work_s = shares[(plan.service, plan.group)] * (prompt * prefill_s + output * decode_s)
        counts = active_counts(requests["arrival_s"].to_numpy(np.float64), work_s,
                               horizon_s, config.interval, config.min_count, plan.replicas,
                               config.target_utilization_frac)
        switches[(plan.service, plan.group)] = switches_from_counts(counts, config.interval)
        if fleet.pools[plan.pool].shared:
            schedule += reservation_changes(counts, config.interval, config.min_count, index, plan)
    schedule.sort(key=lambda e: (e[0], e[4] > 0, e[1]))
    return ScalingPlan(switches, schedule)


def reservation_changes(counts: np.ndarray, interval_s: float, held: int, group: int, plan) -> list[tuple]:
    """``(time_s, group, pool, chips_per_replica, ±replicas)`` for every change of the replicas beyond
    the ``held`` ones (those the fleet reserves for the whole run)."""
    beyond = counts - held
    changes = np.flatnonzero(np.diff(beyond, prepend=0))
    return [(k * interval_s, group, plan.pool, plan.chips_per_replica, int(delta))
            for k, delta in zip(changes.tolist(), np.diff(beyond, prepend=0)[changes].tolist())]


def window_switches(replicas: int, window: tuple[float, float], horizon_s: float) -> GroupSwitches:
    """A windowed group's replicas (``sim.fleet.windows``): all on at the window's start, all off at its end
    (when it ends before the horizon)."""
    begin, end = window
    times = [begin] * replicas + ([end] * replicas if end < horizon_s else [])
    on = [True] * replicas + ([False] * replicas if end < horizon_s else [])
    order = list(range(replicas)) + (list(range(replicas - 1, -1, -1)) if end < horizon_s else [])
    return GroupSwitches(np.asarray(times, dtype=np.float64), np.asarray(order, dtype=np.int64),
                         np.asarray(on, dtype=bool))


def window_changes(window: tuple[float, float], horizon_s: float, group: int, pool: int, chips: int,
                   replicas: int) -> list[tuple]:
    """The cluster's reservation schedule for a windowed group: its replicas placed at the window's start
    (preempting training if needed, as a scale-up) and released at its end (when before the horizon)."""
    begin, end = window
    changes = [(begin, group, pool, chips, replicas)]
    if end < horizon_s:
        changes.append((end, group, pool, chips, -replicas))
    return changes
