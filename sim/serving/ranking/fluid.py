"""Ranking services at ``fidelity: fluid``: arrival rates per time bin served by batch-service queues.

For months of recommendation load, where drawing every query is too slow. Per replica group and fluid
bin (``fluid_bin``), vectorised over the distinct load levels (``sim.kernels.fluid.merge_rows``):

1. **Offered load**: expected queries per bin (``sim.serving.fluid.traffic.offered_load``, the LLM fluid
   path: Poisson, diurnal in closed form, bursty along one drawn path). Items per query from the exact pmf
   of the drawn count ``max(1, ceil(X))`` (``_items_pmf``): a query with more items than every group's ``max_items``
   (activation memory) is rejected; the others split over the groups as the service's router sends them
   (a static split per load level, ``_split``):

   * ``round-robin``: every replica the same share, whatever its speed (a group of slow chips can be overloaded
     while the service has room; its backlog grows as at the request level).
   * ``least-work``, ``jsq``, ``central`` (``_ordered_entry``): an arrival takes an *empty* replica (no batch
     in service or forming: work 0, count 0, or the lowest-index idle replica pulling from the central queue),
     lowest index first, so the groups are tried in order, each a loss system for the arrivals that reach it
     (Erlang B at the offered load that carries its occupied replicas). The queries that find every replica
     occupied go where a replica frees first (``least-work``, ``central``: by capacity) or to the replicas
     alike (``jsq`` counts queries, not work: by replicas), no group beyond 98 % of its capacity. A damped
     fixed point per load level, since each group's occupancy depends on what it is sent.
   * ``slo-aware`` (``_cheapest_first``): the cheapest group keeps the queries whose predicted wait fits
     the router's target, a fixed point of what it keeps; the rest passes on.

2. **Batch-service queue per group** (a mean-value approximation; ``m`` the mean items, ``λ`` a
   replica's query rate — the group's over its replicas, balanced routers leveling them):

   * batch size ``N = clip(max(1 + f·d, λ·S(N·m)), 1, B)`` by fixed point — the timer ``d``
     (``max_queue_delay_ms``) collects ``f·d`` followers behind the first query, ``f`` the rate at which
     the router sends queries to a replica whose timer runs (``_follower_rate``: ``λ`` for round-robin,
     the group's rate for ``central``, less for routers that prefer an empty replica); under load the
     queries that arrive during a batch's service ``S`` form the next one; ``B`` = ``max_batch`` capped by
     the activation memory (``max_items / m``). With ``B = 1`` a batch closes at once (the timer never runs).
   * batch time ``S(N·m)`` (``RankingCost.batch_time_s``; linear in items within a roofline regime, so the
     mean batch time is the time of the mean batch), busy fraction ``ρ = λ·S(N·m)/N``.
   * batches queue for the group's replicas as M/G/c (Erlang C, Allen–Cunneen): ``c`` = replicas for
     balanced routers (one queue in effect), 1 per replica for round-robin; batches arrive at ``λ/N``,
     with interarrival SCV ``1/N`` (formed by counting arrivals; ``1/(N·R)`` under round-robin, which
     hands a replica every R-th query of the service's R replicas, with the Krämer–Langenbach-Belz factor
     for that regular stream when ``B = 1``) and service SCV from the items variance
     (``N · Var[K] · slope² / S²``). ``W_q = C · S/(c·(1 − ρ)) · (SCV_A + SCV_S)/2``, exponential
     (rate ``r = C/W_q``) beyond an atom at 0. ``jsq`` adds ``C·(1 − ρ)·S·(1 + SCV_S)/2``: a query that
     waits sits behind the batch of the replica it picked, not the first of ``c`` to end.
   * with several groups under ``least-work``, ``jsq`` or ``central``, the queries that wait are those that
     found every replica of the service occupied: one queue over all of them, ``P(wait)`` Erlang C over the
     service's replicas at their busy sum, shared out by the split's overflow shares, the conditional wait
     exponential at (batch slots/s − batches/s)/SCV; under ``jsq`` shared in proportion to each group's
     batch time (the queue ahead is about as long on every replica).
   * saturated batching: when the batch is what arrives during the one before (``N = λ·S(N·m) < B``, so
     ``ρ = 1``) the replica serves back to back and a query waits for the batch in service to end, uniform
     over ``S``, then rides the next one (no timer wait, no queueing wait).
   * the formation wait: the batch's first query waits ``T = d`` (or the time to fill ``B``), its
     followers a uniform share of it (mean ``T·(1 + (N − 1)/2)/N``). The timer runs while the batch
     queues, so only the queueing wait beyond ``T`` adds: ``P(W_q > T + t) = C·e^(−r(T + t))``.
   * latency = formation wait + queueing wait + the batch's time with the query's own items and ``N − 1``
     mean queries beside it (own items in slices of the pmf, each uniform across its slice).
3. **Backlog** as the LLM fluid fidelity (``sim.serving.fluid.serve``): arrivals above capacity
   (replicas × ``B``/``S(B·m)``) carry over, the share of a bin spent with a backlog is busy throughout,
   queries that meet one wait a uniform delay between the backlogs over capacity; in a bin whose backlog grows
   and outlasts the horizon only the bin's earliest queries complete, and their waits stop at that share.
   Backlog and the batches in service at the horizon are unfinished; completed + unfinished + rejected =
   offered.

Percentiles come from the mixture of the components (``sim.kernels.fluid.mixture_quantiles``); SLO
attainment is the expected share of offered queries within ``latency_p99_ms``. Busy chip-seconds per
time-series bin give utilization as the request-level kernel's busy seconds do; power and energy take the
energy-weighted ones (``sim.serving.activity``): per fluid bin ``m · busy + (1 − m) · min(busy, compute)``, compute
= the queries entering service × the mean items × the compute seconds per item (the request level's sum over
batches of ``min(1, compute ÷ batch time)`` × batch time, in aggregate).

Where the analytic waits below are poor - ``least-work``, ``jsq``, ``central`` or ``slo-aware`` over groups of
different chips, or with batching - and a ``micro_rng`` is given (the families pass the run's ``ranking`` stream),
the split, busy fraction, mean batch and steady latency come from the micro-simulation metamodel
(``sim.serving.ranking.micro``: the request-level kernel per load level on a 5 % rate grid, ``_micro_split``);
the backlog model stays for rows at or above its ceiling. Where the analytic model alone is poor
(``benchmarks/ranking_fluid_fidelity.py`` prints the grid; docs/inference.md has the figures):
the batch size is a mean, not a distribution, so batching near saturation with small batches
(MTIA-class chips, whose per-query cost dwarfs the per-batch one) is off by tens of % either way; ``jsq`` with
batching and heavy loads on mixed chips, and ``slo-aware`` beyond light loads (its predictions let the cheap
group's queue grow to the target, a truncated queue this model does not have) are far off; p99 is not held
to the request level. The all-or-nothing ``max_items`` eligibility per group is not split by band (queries a
small group cannot run still count in its share). ``tests/test_fluid_ranking.py`` asserts the cells that agree.

Windows (``sim.fleet.windows``): a windowed group takes queries only over the active share of each bin, split
by capacity × that share (the router's split - least-work's index order, jsq's overflow, slo-aware's
cheapest-first - is not applied with windows), serves them over that share and drains its backlog after its
window; queries arriving when no group is active are rejected (``no replica active``).

Failures (``sim.serving.failures``): no outage is drawn; a group whose replicas are up a share ``A`` of the time
(``RankingPlan.availability``) serves with ``A × replicas`` replicas in every bin (a windowed one: in the bins it
serves). Its
capacity is ``A`` times the group's, and that capacity is all the **analytic split** sees: the overflow shares by
capacity (``least-work``, ``central``), slo-aware's cheapest-first limits and the metamodel's ceiling; the
ordered entry's Erlang B stages still count every replica. The group's **batch-service queue** takes the
group's rate over the replicas up (``λ/A`` per replica), its busy time counts only those (``× A``) and its
backlog drains at the reduced capacity. The **metamodel path** (``sim.serving.ranking.micro``) simulates its
levels with every replica up: below its ceiling (lowered by ``A``) latency, batch and busy fraction are those
of a fleet without failures; above it the backlog model at the reduced capacity serves. The expected share: a
bin never loses a whole replica, so the spikes of a drawn outage are not there.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from sim.fleet.windows import NO_REPLICA_ACTIVE, active_fraction
from sim.kernels import fluid as kernel
from sim.serving.activity import energy_weighted_s
from sim.serving.fluid.serve import _rebin, _share_meeting_backlog, serving_cover
from sim.serving.fluid.split import union_cover
from sim.serving.fluid.traffic import QUANTILE_EDGES, fluid_edges, offered_load
from sim.serving.ranking.micro import (
    MICRO_CEILING,
    MICRO_EDGES,
    MICRO_FINE_FROM,
    grid_code,
    grid_position,
    grid_rate,
    micro_table,
    poor_cell,
)
from sim.workload.distributions import cdf, empirical_stamp, token_pmf

FIXED_POINT_STEPS = 30  # iterations of the batch-size fixed point (it converges in a few)


def serve_ranking_fluid(plan, service, horizon_s: float, bin_width_s: float, base_dir,
                        rng: np.random.Generator, start=None, micro_rng: np.random.Generator | None = None) -> dict:
    """Serve one ranking service at fluid fidelity (module docstring): per group, counts, items, batches,
    latency components and busy chip-seconds per time-series bin of ``bin_width_s``; ``start`` is the
    scenario's start date (growth points count from it). ``micro_rng`` (the run's ``ranking`` stream) seeds
    the micro-simulation metamodel (``sim.serving.ranking.micro``) used for the cells where the analytic
    waits are poor; without it the analytic model serves every cell."""
    offered = offered_load(service, fluid_edges(horizon_s, service.fluid_bin), base_dir, rng, start)
    widths = np.diff(offered.edges)
    items = _items(plan, service, base_dir)
    batch_cap = [_batch_cap(plan, g, items.mean) for g in range(len(plan.pools))]
    capacity = _capacity(plan, items, batch_cap)
    accepted = offered.arrivals * items.accepted
    rejected = float(offered.arrivals.sum()) * (1.0 - items.accepted)
    slo_s = service.slo.latency_p99_ms / 1e3 if service.slo is not None else None
    windows = list(plan.windows) if plan.windows else [None] * len(plan.pools)
    inactive = 0.0
    windowed = any(w is not None for w in windows)
    use_micro = (micro_rng is not None and not windowed and items.accepted > 0
                 and poor_cell(plan, service.router.kind))
    if windowed:  # windowed groups: each takes queries only while active
        covers = [np.ones(len(widths)) if w is None else active_fraction(w, offered.edges) for w in windows]
        union = union_cover(windows, offered.edges)
        inactive = float(np.sum(accepted * (1.0 - union)))
        weight = sum(c * cover for c, cover in zip(capacity, covers))
        routed = [np.divide(accepted * union * c * cover, weight, out=np.zeros(len(widths)), where=weight > 0)
                  for c, cover in zip(capacity, covers)]
        pooled = [None] * len(plan.pools)
    else:
        split = accepted
        if use_micro and service.router.kind == "slo-aware":
            # the metamodel routes the bins below its ceiling: the analytic split (bin by bin) is needed only above
            above = offered.arrivals / widths >= _micro_ceiling(plan, service, capacity, items)
            split = np.where(above, accepted, 0.0)
        routed, pooled = _split(plan, service.router.kind, slo_s, split, widths, items, batch_cap, capacity)
    micro = [None] * len(plan.pools)
    if use_micro:
        routed, micro = _micro_split(plan, service, offered.arrivals / widths, accepted, routed, capacity, items,
                                     base_dir, micro_rng, slo_s)
    groups = [_serve_group(plan, g, routed[g], widths if windows[g] is None
                           else widths * serving_cover(windows[g], offered.edges), items, batch_cap[g],
                           service.router.kind, slo_s, pooled[g], micro[g])
              for g in range(len(plan.pools))]
    series = fluid_edges(horizon_s, bin_width_s)
    length = int(np.ceil(horizon_s / bin_width_s)) + 1  # as the request-level kernel's busy array
    return {"fidelity": "fluid", "edges": offered.edges, "offered_per_bin": offered.arrivals,
            "served_per_bin": sum(g["served_per_bin"] for g in groups), "rejected": rejected + inactive,
            "rejected_inactive": inactive,
            "met_per_bin": (sum(g["met_per_bin"] for g in groups) if slo_s is not None else None),
            "mean_items": items.mean, "groups": groups,
            "busy_chip_s": [_rebin(g["busy_chip_s"], offered.edges, series, length) for g in groups],
            "energy_chip_s": [_rebin(g["energy_chip_s"], offered.edges, series, length) for g in groups],
            "batches": [g["batches"] for g in groups]}


def capacity_per_s(plan, service, base_dir) -> np.ndarray:
    """Queries/s each replica group serves at full batches of the mean accepted query (replicas × batch cap ÷
    the batch's time): the fluid model's capacity, which its overload backlog and the load split use."""
    items = _items(plan, service, base_dir)
    return _capacity(plan, items, [_batch_cap(plan, g, items.mean) for g in range(len(plan.pools))])


def _items(plan, service, base_dir) -> Items:
    largest = max(c.max_items for c in plan.costs)
    dist = service.traffic.generator.items_per_request
    return Items.of(*_items_pmf(dist, str(base_dir), largest, empirical_stamp(dist, base_dir)))


def _micro_split(plan, service, rate: np.ndarray, accepted: np.ndarray, routed: list, capacity: np.ndarray,
                 items, base_dir, micro_rng, slo_s) -> tuple[list, list]:
    """The micro-simulation metamodel (``sim.serving.ranking.micro``) per bin: the offered ``rate`` [queries/s]
    on the ``MICRO_STEP`` grid, each bin between two simulated levels mixed linearly. Below ``MICRO_CEILING`` of
    the capacity (round-robin: of the rate that fills its first group) the measured shares route the queries;
    above it the analytic ``routed`` stays (the backlog model carries the queue) and the highest simulated level
    gives the in-service figures. Returns the queries per bin of each group and per group the per-bin figures
    ``_serve_group`` takes."""
    ceiling = _micro_ceiling(plan, service, capacity, items)
    top = grid_code(ceiling) if ceiling > 0 else 0
    low, high, frac = grid_position(np.where(rate > 0, np.minimum(rate, grid_rate(top)), grid_rate(top)),
                                    MICRO_FINE_FROM * ceiling, top)
    codes, index = np.unique(np.concatenate((low, high)), return_inverse=True)
    seed = int(micro_rng.integers(1 << 62))
    dist = service.traffic.generator.items_per_request
    pmf, _ = _items_pmf(dist, str(base_dir), max(c.max_items for c in plan.costs), empirical_stamp(dist, base_dir))
    table = micro_table(plan, pmf, codes, seed, slo_s)
    lo, hi = index[:len(low)], index[len(low):]

    rest = 1.0 - frac

    def mix(values, g):  # per bin, group ``g``'s column of ``values`` (grid points first) mixed by the bin's position
        column = values[:, g]
        return column[lo] * rest + column[hi] * frac

    below = rate < ceiling
    out_routed = [np.where(below, accepted * mix(table["share"], g), routed[g]) for g in range(len(plan.pools))]
    micro = [{"rho": mix(table["rho"], g), "batch": mix(table["batch"], g), "lo": lo, "hi": hi, "frac": frac,
              "quantiles": table["quantiles"][:, g], "mean": table["mean"][:, g], "met": table["met"][:, g],
              "below": below}
             for g in range(len(plan.pools))]
    return out_routed, micro


def _micro_ceiling(plan, service, capacity: np.ndarray, items) -> float:
    """Offered rate [queries/s] from which the metamodel is not used: ``MICRO_CEILING`` of the capacity
    (round-robin: of the rate that fills its first group, each replica taking an equal share)."""
    full = float(capacity.sum())
    if service.router.kind == "round-robin":
        full = float(np.min(capacity * sum(plan.replicas) / np.asarray(plan.replicas, dtype=np.float64)))
    return MICRO_CEILING * full / items.accepted


def _micro_components(micro: dict, steady_w: np.ndarray) -> dict:
    """Latency components of the steady (no backlog) queries from the simulated levels: per grid point, one
    uniform slice between each pair of measured quantiles, weighted by the queries of the bins that mix it,
    shifted so each point keeps its measured mean."""
    points = len(micro["mean"])
    weight = (np.bincount(micro["lo"], weights=steady_w * (1.0 - micro["frac"]), minlength=points)
              + np.bincount(micro["hi"], weights=steady_w * micro["frac"], minlength=points))
    q = micro["quantiles"]
    share = np.diff(MICRO_EDGES)
    low, spread = q[:, :-1], np.diff(q, axis=1)
    correction = micro["mean"] - np.sum(share[None, :] * (low + spread / 2.0), axis=1)
    keep = weight > 0
    n = int(keep.sum()) * len(share)
    zeros = np.zeros(n)
    return {"weight": (weight[keep][:, None] * share[None, :]).ravel(),
            "shift": (low[keep] + correction[keep][:, None]).ravel(), "spread": spread[keep].ravel(),
            "exp_mass": zeros, "exp_rate": zeros, "uniform_mass": zeros, "uniform_low": zeros, "uniform_high": zeros}


def _capacity(plan, items, batch_cap: list) -> np.ndarray:
    return np.array([plan.up(g) * plan.replicas[g] * batch_cap[g]
                     / plan.costs[g].batch_time_s(batch_cap[g] * items.mean)
                     for g in range(len(plan.pools))])


def _split(plan, router: str, slo_s, accepted: np.ndarray, widths: np.ndarray, items, batch_cap: list,
           capacity: np.ndarray) -> tuple[list, list]:
    """Queries per bin routed to each group as ``router`` sends them (module docstring, step 1), and per group
    the service-wide wait of ``_ordered_entry`` (``None``: the group's own queue)."""
    pooled = [None] * len(plan.pools)
    if router == "slo-aware" and slo_s is not None and len(plan.pools) > 1:
        routed = _cheapest_first(plan, accepted, widths, items, batch_cap, capacity)
    elif router == "round-robin":
        routed = [accepted * plan.replicas[g] / sum(plan.replicas) for g in range(len(plan.pools))]
    elif len(plan.pools) > 1:
        routed, pooled = _ordered_entry(plan, accepted, widths, items, batch_cap, capacity, router)
    else:
        routed = [accepted]
    return routed, pooled


SPLIT_STEPS = 40  # iterations of the ordered-entry split's fixed point
SPLIT_CEILING = 0.98  # share of its capacity beyond which a group's queue grows without bound


def _erlang_b(servers: int, load: np.ndarray) -> np.ndarray:
    """Erlang B (the share of arrivals that find all ``servers`` taken) at offered ``load`` [Erlang], vectorised."""
    blocking = np.ones_like(load)
    for k in range(1, servers + 1):
        blocking = load * blocking / (k + load * blocking)
    return blocking


def _ordered_entry(plan, accepted: np.ndarray, widths: np.ndarray, items, batch_cap: list, capacity,
                   router: str) -> list:
    """The work- and count-aware routers (``least-work``, ``jsq``, ``central``) as a split over groups: an
    arrival takes an empty replica (no batch in service, none forming: its work and count are 0) of the
    lowest index, so the groups are tried in order, each a loss system for the arrivals that reach it
    (Erlang B at the offered load that carries its mean occupied replicas ``R·u``, ``u`` = busy + timing
    share of a replica from its batch-service queue); the queries that find every replica occupied join
    one: the replica that frees first is the likelier (by capacity), or under ``jsq`` any alike (by replicas),
    none beyond ``SPLIT_CEILING`` of its capacity. A damped fixed point over the groups' rates, per load
    level. Returns the queries per bin of each group and its share of the service-wide queue (module
    docstring): ``wait_prob`` (the share of its queries that wait) and ``rate`` (of the exponential wait)."""
    groups = range(len(plan.pools))
    share = capacity / capacity.sum()
    if router == "jsq":  # counts, not speed: the queries that find all occupied go to replicas alike
        share = np.asarray(plan.replicas, dtype=np.float64) / sum(plan.replicas)
    (lam,), _, row = kernel.merge_rows([accepted / widths], [accepted / widths], np.ones(len(widths)))
    rates = [lam * share[g] for g in groups]
    offered = [np.zeros_like(lam) for _ in groups]
    delays = [float(plan.kernel["max_delay_s"][plan.group_of_replica == g][0]) for g in groups]
    follow = [np.zeros_like(lam) for _ in groups]
    for _ in range(SPLIT_STEPS):
        reach, new = lam, []
        for g in groups:
            q = _steady(plan.costs[g], plan.replicas[g], rates[g], delays[g], batch_cap[g], items, router,
                        follow=follow[g])
            occupied = np.minimum(q["rho"] + q["lam"] / q["batch"] * q["fill"], 1.0 - 1e-9) * plan.replicas[g]
            blocked = _erlang_b(plan.replicas[g], offered[g])
            offered[g] = np.minimum(occupied / np.maximum(1.0 - blocked, 1e-9), 1e6)
            blocked = _erlang_b(plan.replicas[g], offered[g])
            new.append(reach * (1.0 - blocked))
            reach = reach * blocked
        target = [new[g] + reach * share[g] for g in groups]
        # no group is sent more than it can serve: the router sees its queue grow and sends elsewhere
        excess = sum(np.maximum(target[g] - SPLIT_CEILING * capacity[g], 0.0) for g in groups)
        target = [np.minimum(target[g], SPLIT_CEILING * capacity[g]) for g in groups]
        room = [SPLIT_CEILING * capacity[g] - target[g] for g in groups]
        total_room = sum(room)
        target = [target[g] + excess * np.divide(room[g], total_room, out=np.zeros_like(lam), where=total_room > 0)
                  for g in groups]
        rates = [0.5 * rates[g] + 0.5 * target[g] for g in groups]
        # a timer collects followers only from the queries that find every replica of the service occupied (its
        # share of them, over its replicas); under central every query joins the one forming batch
        follow = [lam if router == "central" else reach * share[g] / plan.replicas[g] for g in groups]
    # the queries that find every replica occupied wait in what is in effect one queue for all the replicas:
    # M/G/c over the service's batch slots, conditional wait exponential at (batch capacity − batch rate)/SCV
    steady = [_steady(plan.costs[g], plan.replicas[g], rates[g], delays[g], batch_cap[g], items, router,
                      follow=follow[g]) for g in groups]
    slots = sum(plan.replicas[g] / steady[g]["service"] for g in groups)
    batches = sum(rates[g] / steady[g]["batch"] for g in groups)
    scv = sum(rates[g] * steady[g]["scv"] for g in groups) / np.maximum(lam, 1e-300)
    servers = sum(plan.replicas)
    busy = sum(plan.replicas[g] * steady[g]["rho"] for g in groups)
    waiting = lam * kernel.erlang_c(servers, busy)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(batches < slots, (slots - batches) / scv, 0.0)
        waits = [np.clip(np.divide(waiting * share[g], rates[g], out=np.zeros_like(lam), where=rates[g] > 0), 0, 1)
                 for g in groups]
    routed = [rates[g][row] * widths for g in groups]
    rates_g = [rate for _ in groups]
    if router == "jsq":
        # a query waits behind the replica it picked, with about as many queries ahead of it on any replica:
        # the pooled wait shared out in proportion to the groups' batch times
        waiting = [waits[g] * rates[g] for g in groups]
        mean_s = sum(waiting[g] * steady[g]["service"] for g in groups) / np.maximum(sum(waiting), 1e-300)
        rates_g = [rate * mean_s / steady[g]["service"] for g in groups]
    pooled = [{"wait_prob": waits[g][row], "rate": rates_g[g][row], "follow": follow[g][row]} for g in groups]
    return routed, pooled


def _cheapest_first(plan, accepted: np.ndarray, widths: np.ndarray, items, batch_cap: list, capacity) -> list:
    """The ``slo-aware`` router as a split: the groups in order of cost per query (``cost_per_s`` × the batch
    time of a mean query, ties to the lower index) each keep the queries whose predicted latency fits
    the router's target ``slo_s`` and pass the rest on: a query overflows a group when its queueing wait
    would exceed ``slo_s`` less its own batch time, ``P = C·e^(−r·(slo_s − S))`` of the group's M/G/c queue
    at the rate offered to it (capped just below capacity). What overflows the last group is shared by
    capacity, as the router then picks the lowest prediction."""
    slo_s = float(plan.kernel["slo_s"])
    cost = [float(plan.kernel["cost_per_s"][plan.group_of_replica == g][0]) * plan.costs[g].batch_time_s(items.mean)
            for g in range(len(plan.pools))]
    left = accepted / widths
    routed = [np.zeros_like(left) for _ in cost]
    for g in sorted(range(len(cost)), key=lambda g: (cost[g], g)):
        (rate_rows,), _, row = kernel.merge_rows([left], [left], np.ones(len(left)))
        delay = float(plan.kernel["max_delay_s"][plan.group_of_replica == g][0])
        room = max(slo_s - plan.costs[g].batch_time_s(items.mean), 0.0)
        # the rate the group keeps is a fixed point: what it is sent sets its queue, which sets what overflows
        kept = np.minimum(rate_rows, 0.99 * capacity[g])
        for _ in range(SPLIT_STEPS):
            q = _steady(plan.costs[g], plan.replicas[g], kept, delay, batch_cap[g], items, "slo-aware")
            overflow = np.where(q["rate"] > 0, q["wait_prob"] * np.exp(-q["rate"] * room), q["wait_prob"])
            step = 0.5 * np.minimum(rate_rows * (1.0 - overflow), 0.99 * capacity[g]) - 0.5 * kept
            kept = kept + step
            if np.all(np.abs(step) <= 1e-6 * np.maximum(kept, 1e-9)):
                break
        kept = kept[row]
        routed[g] = np.minimum(kept, left)
        left = left - routed[g]
    share = capacity / capacity.sum()
    return [(routed[g] + left * share[g]) * widths for g in range(len(cost))]


class Items:
    """Items per accepted query: mean, variance, share accepted, and slices of the pmf ([low, high] items,
    the last slice a point at its mean) between ``QUANTILE_EDGES``."""

    def __init__(self, accepted, mean, variance, slices):
        self.accepted, self.mean, self.variance, self.slices = accepted, mean, variance, slices

    @classmethod
    def of(cls, fits: np.ndarray, accepted: float) -> Items:
        """From the pmf of the item counts that fit (``_items_pmf``) and their total probability."""
        k = np.arange(len(fits), dtype=np.float64)
        if accepted <= 0:
            return cls(0.0, 1.0, 0.0, np.ones((len(QUANTILE_EDGES) - 1, 2)))
        p = fits / accepted
        mean = float(np.sum(p * k))
        variance = max(float(np.sum(p * k * k)) - mean * mean, 0.0)
        cumulative = np.cumsum(p)
        edges = np.searchsorted(cumulative, np.maximum(QUANTILE_EDGES, 1e-12) - 1e-12).astype(np.float64)
        edges = np.minimum(edges, len(fits) - 1)
        slices = np.stack((edges[:-1], edges[1:]), axis=1)
        top = k >= edges[-2]
        slices[-1] = float(np.sum(p[top] * k[top])) / max(float(p[top].sum()), 1e-300)
        # recentre so the slices' mean is the mean exactly (the uniform spread within a slice is approximate)
        slice_mean = float(np.sum(np.diff(QUANTILE_EDGES) * slices.mean(axis=1)))
        slices = slices + (mean - slice_mean)
        return cls(accepted, mean, variance, np.maximum(slices, 0.0))


@lru_cache(maxsize=32)
def _items_pmf(dist, base_dir: str, largest: int, stamp=None) -> tuple[np.ndarray, float]:
    """P(items = k) of the drawn count ``max(1, ceil(X))`` for k up to ``largest`` (what some replica can
    run) and P(items <= largest); above the point where P(X > k) < 1e-9 the pmf of ``token_pmf`` is used
    (its last sliver of mass on its top count), so a large ``largest`` costs no more than the pmf. ``stamp``:
    the identity of an empirical distribution's file (``empirical_stamp``), so a changed file is read again."""
    top = 1
    while cdf(dist, np.array([float(top)]), Path(base_dir))[0] < 1.0 - 1e-9 and top < 1 << 26:
        top *= 2
    if largest >= top:
        pmf = token_pmf(dist, Path(base_dir))
        pmf.flags.writeable = False
        return pmf, 1.0
    upto = cdf(dist, np.arange(largest + 1, dtype=np.float64), Path(base_dir))
    pmf = np.maximum(np.diff(upto, prepend=0.0), 0.0)
    pmf[min(1, largest)] += pmf[0]  # counts below 1 are rounded up to 1
    pmf[0] = 0.0 if largest >= 1 else pmf[0]
    pmf.flags.writeable = False
    return pmf, float(upto[-1])


def _batch_cap(plan, g: int, mean_items: float) -> int:
    """Largest batch of mean queries a replica of group ``g`` takes: ``max_batch`` and activation memory."""
    max_batch = int(plan.kernel["max_batch"][plan.group_of_replica == g][0])
    return int(max(1, min(max_batch, plan.costs[g].max_items // max(mean_items, 1.0))))


def _batch_time(cost, items):
    """``RankingCost.batch_time_s`` vectorised over ``items``, with the slope [s/item] of its regime there."""
    compute = cost.compute_s_per_item * items
    memory = cost.weights_s + cost.embedding_s_per_item * items
    slope = np.where(compute >= memory, cost.compute_s_per_item, cost.embedding_s_per_item)
    return cost.overhead_s + np.maximum(compute, memory), slope


def _serve_group(plan, g: int, accepted: np.ndarray, widths: np.ndarray, items: Items, cap: int,
                 router: str, slo_s, pooled: dict | None = None, micro: dict | None = None) -> dict:
    """One replica group's share of the queries (``accepted`` per bin) through the batch-service queue;
    ``micro``: the per-bin figures of the micro-simulation metamodel (``_micro_split``), which replace the
    analytic busy fraction, batch size and steady latency. ``load`` in the result: the group's queries in its
    busiest bin ÷ what its backlog drains there (its capacity, full batches of the mean query; where the metamodel
    serves a level, at least the level's rate ÷ ``MICRO_CEILING``, its queue being in the simulated latency);
    above 1 the backlog grows for as long as that rate lasts (an overloaded group)."""
    cost, replicas, up = plan.costs[g], plan.replicas[g], plan.up(g)
    delay = float(plan.kernel["max_delay_s"][plan.group_of_replica == g][0])
    m = items.mean
    # a windowed group's ``widths`` are the served share of each bin (``serving_cover``), some of them 0
    lam = accepted / widths if (widths > 0).all() else np.divide(accepted, widths, out=np.zeros(len(widths)),
                                                                 where=widths > 0)
    per_up = lam / up if up < 1.0 else lam  # failures: the replicas up take the group's queries
    if pooled is None:
        (lam_rows,), _, row = kernel.merge_rows([per_up], [per_up], np.ones(len(widths)))
        rows = _steady(cost, replicas, lam_rows, delay, cap, items, router, cycle=sum(plan.replicas))
    else:
        columns = [per_up, pooled["wait_prob"], pooled["rate"], pooled["follow"]]
        (lam_rows, wait_rows, rate_rows, follow_rows), _, row = kernel.merge_rows(columns, columns,
                                                                                 np.ones(len(widths)))
        rows = _steady(cost, replicas, lam_rows, delay, cap, items, router, (wait_rows, rate_rows),
                       follow=follow_rows)
    full_s, _ = _batch_time(cost, cap * m)
    group_rate = up * replicas * cap / float(full_s)
    room = group_rate * widths
    if micro is not None:  # below the ceiling the simulated level's queue is in its latency: no fluid backlog
        room = np.where(micro["below"], np.maximum(room, accepted / MICRO_CEILING), room)
    backlog = kernel.fluid_backlog(accepted, room)
    before = np.concatenate(([0.0], backlog[:-1]))
    meets = _share_meeting_backlog(before, backlog, lam, group_rate, widths)
    busy = meets * up + (1.0 - meets) * (rows["rho"][row] * up if micro is None else micro["rho"])
    served = before + accepted - backlog
    in_service = up * replicas * float(rows["rho"][row[-1]] * rows["batch"][row[-1]])
    unfinished = min(float(backlog[-1]) + in_service, float(accepted.sum()))
    completed = float(accepted.sum()) - unfinished
    finishing = np.clip(completed - (np.cumsum(accepted) - accepted), 0.0, accepted)
    batch_per_bin = meets * cap + (1.0 - meets) * (rows["batch"][row] if micro is None else micro["batch"])
    parts = _components(rows, row, meets, before, backlog, group_rate, finishing, accepted, items, cost, cap,
                        steady=micro is None)
    keep = parts.pop("keep")
    met, met_per_bin = None, None
    if micro is not None:
        steady_w = finishing * (1.0 - meets)
        if slo_s is not None:
            met_each = parts["weight"] * kernel.component_cdf(slo_s, *(parts[n] for n in ARGS[1:]))
            met_per_bin = steady_w * (micro["met"][micro["lo"]] * (1.0 - micro["frac"])
                                      + micro["met"][micro["hi"]] * micro["frac"])
            hit = np.flatnonzero(meets > 0)[keep[2 * len(rows["lam"]):]]
            met_per_bin[hit] += met_each.reshape(len(hit), -1).sum(axis=1) if len(hit) else 0.0
            met = float(met_per_bin.sum())
        extra = _micro_components(micro, steady_w)
        parts = {name: np.concatenate((extra[name], parts[name])) for name in ARGS}
    elif slo_s is not None:
        met_each = parts["weight"] * kernel.component_cdf(slo_s, *(parts[n] for n in ARGS[1:]))
        met = float(np.sum(met_each))
        met_per_bin = _met_per_bin(met_each, keep, row, meets, finishing, len(rows["lam"]))
    return {"offered": float(accepted.sum()), "completed": completed, "unfinished": unfinished,
            "items": completed * m, "met": met, "met_per_bin": met_per_bin, "latency": parts,
            "batches": float(np.sum(served / batch_per_bin)),
            "busy_chip_s": busy * widths * replicas * plan.chips_per_replica[g],
            # the compute seconds of the queries entering service in the bin (sim.serving.activity)
            "energy_chip_s": energy_weighted_s(busy * widths * replicas, served * m * cost.compute_s_per_item)
            * plan.chips_per_replica[g],
            "served_per_bin": served, "backlog_per_bin": backlog,
            "load": float(np.max(np.divide(accepted, room, out=np.zeros(len(room)), where=room > 0), initial=0.0))}


def _met_per_bin(met_each: np.ndarray, keep: np.ndarray, row: np.ndarray, meets: np.ndarray,
                 finishing: np.ndarray, rows_n: int) -> np.ndarray:
    """Queries within the SLO per arrival bin: a steady load level's met share (its first-of-batch and
    follower components together) for the bin's queries that meet no backlog, and the bin's own backlog
    component for the rest; the bins sum to the group's ``met``."""
    met = np.zeros(len(keep))
    if keep.any():  # a group the slo-aware split sends nothing has no component
        met[keep] = met_each.reshape(int(keep.sum()), -1).sum(axis=1)
    steady_w = np.bincount(row, weights=finishing * (1.0 - meets), minlength=rows_n)
    steady_share = np.divide(met[:rows_n] + met[rows_n:2 * rows_n], steady_w, out=np.zeros(rows_n),
                             where=steady_w > 0)
    per_bin = finishing * (1.0 - meets) * steady_share[row]
    per_bin[np.flatnonzero(meets > 0)] += met[2 * rows_n:]
    return per_bin


def _follower_rate(router: str, lam, replicas: int, service, batch, delay: float):
    """Rate [1/s] at which queries join a batch whose timer runs: round-robin sends a replica its share
    ``λ`` blindly; ``central`` keeps one queue, so the group's ``R·λ`` join the oldest query's batch; the
    other routers send a query to an empty replica while there is one (its work is 0), so a timer collects
    followers only while the ``R − 1`` other replicas are all occupied (busy or timing), taken independent:
    ``λ·u^(R−1)`` with ``u = min(1, ρ + (λ/N)·d)``."""
    if router == "round-robin":
        return lam
    if router == "central":
        return lam * replicas
    occupied = np.minimum(1.0, lam * service / batch + lam / batch * delay)
    return lam * occupied ** (replicas - 1)


def _steady(cost, replicas: int, lam_group, delay: float, cap: int, items: Items, router: str,
            pooled=None, cycle: int | None = None, follow=None) -> dict:
    """Per load level: batch size, busy fraction, batch time, formation and queueing waits (docstring);
    ``pooled``: the service-wide (wait probability, conditional wait rate) of ``_ordered_entry``; ``cycle``: the
    replicas round-robin cycles over (default the group's); ``follow``: the rate [1/s] at which queries join a
    replica whose timer runs, when the split knows it (default ``_follower_rate``)."""
    lam = lam_group / replicas
    m = items.mean
    batch = np.ones_like(lam)
    for _ in range(FIXED_POINT_STEPS):
        service, _ = _batch_time(cost, batch * m)
        rate_in = _follower_rate(router, lam, replicas, service, batch, delay) if follow is None else follow
        followers = rate_in * delay
        batch = np.clip(np.maximum(1.0 + followers, lam * service), 1.0, cap)
    service, slope = _batch_time(cost, batch * m)
    rho = lam * service / batch
    servers = 1 if router == "round-robin" else replicas
    stable = rho < 1.0
    load = np.where(stable, rho, 0.0) * servers
    wait_prob = np.where(stable, kernel.erlang_c(servers, load), 1.0)
    # batch interarrivals: N query gaps (SCV 1/N); round-robin hands a replica every R-th query (SCV 1/(N·R))
    arrival_scv = 1.0 / (batch * ((cycle or replicas) if router == "round-robin" else 1))
    service_scv = batch * items.variance * slope ** 2 / service ** 2
    scv = (arrival_scv + service_scv) / 2.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        queue = np.where(stable, wait_prob * service / (servers * (1.0 - rho)) * scv, np.inf)
        if router == "round-robin" and cap == 1:
            # one replica, arrivals more regular than Poisson (every R-th query): Allen–Cunneen overstates the
            # wait; the Krämer–Langenbach-Belz factor for GI/G/1 with arrival SCV < 1 corrects it (not applied
            # to batches, whose formation is not a renewal stream of that SCV)
            queue = queue * np.exp(-2.0 * (1.0 - rho) * (1.0 - arrival_scv) ** 2
                                   / (3.0 * rho * (arrival_scv + service_scv)))
        if pooled is not None:  # the service-wide queue of the ordered-entry split (``_ordered_entry``)
            wait_prob = pooled[0]
            stable = pooled[1] > 0
            queue = np.where(stable, wait_prob / np.where(stable, pooled[1], 1.0), np.inf)
        if router == "jsq":
            # jsq picks by count, not by the time left: a query that waits sits behind one replica's batch in
            # service, a mean residual S(1 + SCV_S)/2, where a pooled queue waits for the first of c to end;
            # as the queues grow they level and the pooled wait takes over, hence the weight 1 − ρ
            queue = queue + wait_prob * np.clip(1.0 - rho, 0.0, 1.0) * service * (1.0 + service_scv) / 2.0
        fill = np.where(cap > 1, np.where(batch < cap, delay, np.minimum(delay, (cap - 1) / np.maximum(
            _follower_rate(router, lam, replicas, service, batch, delay) if follow is None else follow, 1e-300))),
                        0.0)
    # saturated: the batch is what arrives during the one before (N = λ·S(N·m) < B), so the replica serves back
    # to back and a query waits for the batch in service to end, uniform over its time, then rides the next one
    saturated = (lam * service >= batch * (1.0 - 1e-9)) & (batch < cap)
    fill = np.where(saturated, service, fill)
    first = np.where(saturated, 0.0, 1.0 / batch)
    formation = np.where(saturated, service / 2.0, np.where(cap > 1, fill * (1.0 + (batch - 1.0) / 2.0) / batch, 0.0))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rate = np.where(stable & (queue > 0) & ~saturated, wait_prob / queue, 0.0)
        # the timer runs while the batch queues: only the wait beyond it adds, P(W_q > T + t) = C·e^(−r(T + t))
        excess = np.where(rate > 0, wait_prob * np.exp(-rate * fill), 0.0)
    return {"lam": lam, "batch": batch, "service": service, "slope": slope, "rho": np.minimum(rho, 1.0),
            "excess_prob": excess, "rate": rate, "wait_prob": wait_prob, "fill": fill, "formation": formation,
            "stable": stable, "scv": scv, "first": first}


ARGS = ("weight", "shift", "spread", "exp_mass", "exp_rate", "uniform_mass", "uniform_low", "uniform_high")


def _components(rows, row, meets, before, backlog, group_rate, finishing, accepted, items: Items, cost,
                cap: int, steady: bool = True) -> dict:
    """Latency components weighted by the completing queries: one per load level (formation + Erlang C
    wait) and one per bin that meets a backlog (a full batch after a uniform delay), each spread over the
    slices of the query's own items; ``keep`` marks the parts with weight (see ``_met_per_bin``); ``steady``
    False leaves the load levels out (the micro-simulation metamodel gives them)."""
    m = items.mean
    steady_w = np.bincount(row, weights=finishing * (1.0 - meets) * steady, minlength=len(rows["lam"]))
    # the batch time less the mean items of one query: the rest comes from the query's own slice
    others, slope = _batch_time(cost, rows["batch"] * m)
    others = others - slope * m
    zeros = np.zeros(len(steady_w))
    fill, excess, rate, first = rows["fill"], rows["excess_prob"], rows["rate"], rows["first"]
    # the batch's first query waits the whole timer; its followers a uniform share of it, and the queueing
    # excess after a uniform part (its exponential stretched so that the mean stays T/2 + 1/r)
    with np.errstate(divide="ignore"):
        stretched = np.where(rate > 0, 1.0 / (fill / 2.0 + 1.0 / np.where(rate > 0, rate, 1.0)), 0.0)
    steady = {"weight": np.concatenate((steady_w * first, steady_w * (1.0 - first))),
              "shift": np.concatenate((fill + others, others)), "slope": np.concatenate((slope, slope)),
              "exp_mass": np.concatenate((excess, excess)), "exp_rate": np.concatenate((rate, stretched)),
              "uniform_mass": np.concatenate((zeros, 1.0 - excess)),
              "uniform_low": np.concatenate((zeros, zeros)), "uniform_high": np.concatenate((zeros, fill))}
    hit = np.flatnonzero(meets > 0)
    full, full_slope = _batch_time(cost, cap * m)
    ones = np.ones(len(hit))
    queued = {"weight": finishing[hit] * meets[hit], "shift": ones * (float(full) - float(full_slope) * m),
              "slope": ones * float(full_slope), "exp_mass": 0 * ones, "exp_rate": 0 * ones, "uniform_mass": ones,
              "uniform_low": np.where(backlog[hit] > 0, np.minimum(before[hit], backlog[hit]), 0.0) / group_rate,
              "uniform_high": np.maximum(before[hit], backlog[hit]) / group_rate}
    # while the backlog grows, the bin's queries that complete are its earliest: their waits stop at the share
    # that completes, not at the bin's end
    done = np.divide(finishing[hit], accepted[hit], out=np.ones(len(hit)), where=accepted[hit] > 0)
    rising = backlog[hit] > before[hit]
    queued["uniform_high"] = np.where(rising, before[hit] + done * (backlog[hit] - before[hit]),
                                      np.maximum(before[hit], backlog[hit])) / group_rate
    parts = {name: np.concatenate((steady[name], queued[name])) for name in steady}
    keep = parts["weight"] > 0
    parts = {name: values[keep] for name, values in parts.items()}
    share = np.diff(QUANTILE_EDGES)
    low, high = items.slices[:, 0], items.slices[:, 1]
    out = {"weight": (parts["weight"][:, None] * share[None, :]).ravel(),
           "shift": (parts["shift"][:, None] + parts["slope"][:, None] * low[None, :]).ravel(),
           "spread": (parts["slope"][:, None] * (high - low)[None, :]).ravel()}
    for name in ARGS[3:]:
        out[name] = np.repeat(parts[name], len(share))
    out["keep"] = keep  # which of the parts (steady first, steady followers, backlog bins) have weight
    return out


def ranking_fluid_summary(plan, service, fleet, result: dict, horizon_s: float) -> dict:
    """``summary["inference"][service]`` of a fluid ranking service, in the request-level keys: counts that
    add up (expected values rounded), latency from the mixture, SLO, items, energy, cost, perf/W."""
    from sim.serving.ranking.summary import REJECT_REASON

    parts = result["groups"]
    rejected = round(result["rejected"])
    offered = round(float(np.sum(result["offered_per_bin"])))
    unfinished = min(round(sum(g["unfinished"] for g in parts)), offered - rejected)
    summary = _group_figures(plan, result, range(len(plan.pools)), service.slo, fleet, horizon_s,
                             offered=offered)
    summary["completed"] = offered - rejected - unfinished
    summary["requests"] = {"offered": offered, "completed": summary["completed"], "rejected": rejected,
                           "unfinished": unfinished, "not_offered": 0}
    inactive = min(round(result.get("rejected_inactive", 0.0)), rejected)
    reasons = {REJECT_REASON: rejected - inactive, NO_REPLICA_ACTIVE: inactive}
    summary["rejected_reasons"] = {reason: n for reason, n in reasons.items() if n}
    summary["family"] = "ranking"
    summary["fidelity"] = "fluid"
    by_accel: dict[str, list[int]] = {}
    for g, pool in enumerate(plan.pools):
        by_accel.setdefault(fleet.pools[pool].accelerator.id, []).append(g)
    summary["by_accelerator"] = {accel: _group_figures(plan, result, gs, service.slo, fleet, horizon_s)
                                 for accel, gs in sorted(by_accel.items())}
    return summary


def _group_figures(plan, result, groups, slo, fleet, horizon_s: float, offered: float | None = None) -> dict:
    """The request-level ``_group_summary`` keys over ``groups`` (SLO attainment over their queries, or
    over ``offered`` — the service's, rejections included)."""
    from sim.serving.ranking.summary import _energy_cost

    groups = list(groups)
    parts = [result["groups"][g] for g in groups]
    completed = round(sum(p["completed"] for p in parts))
    latency = {name: np.concatenate([p["latency"][name] for p in parts]) for name in ARGS}
    if latency["weight"].sum() > 0:
        p50, p90, p99 = kernel.mixture_quantiles((0.5, 0.9, 0.99), *(latency[n] for n in ARGS))
        stats = {"mean": kernel.mixture_mean(*(latency[n] for n in ARGS)), "p50": float(p50), "p90": float(p90),
                 "p99": float(p99)}
    else:
        stats = {"mean": None, "p50": None, "p90": None, "p99": None}
    met = sum(p["met"] for p in parts) if slo is not None else None
    offered = sum(p["offered"] for p in parts) if offered is None else offered
    items = sum(p["items"] for p in parts)
    energy = {"energy_chip_s": [result["energy_chip_s"][g] if g in groups else None for g in range(len(plan.pools))]}
    it_j, cost_usd, peak = _energy_cost(plan, energy, groups, fleet, horizon_s, np.array([result["mean_items"]]))
    return {
        "completed": completed,
        "latency_s": stats,
        "slo_attainment": float(met / offered) if met is not None and offered else None,
        "goodput_rps": float(met / horizon_s) if met is not None else None,
        "items_per_s": items / horizon_s,
        "it_energy_per_1k_requests_kwh": it_j / 3.6e6 / completed * 1e3 if completed else None,
        "cost_per_1m_requests_usd": cost_usd / completed * 1e6 if completed else None,
        "items_per_it_joule": items / it_j if it_j > 0 else None,
        "peak_items_per_s_per_kw": peak,
        "batches": round(sum(p["batches"] for p in parts)),
        "embedding_sram_hit_rate": {fleet.pools[plan.pools[g]].name: plan.costs[g].hit_rate for g in groups},
    }
