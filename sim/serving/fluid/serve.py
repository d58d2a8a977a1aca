"""Fluid fidelity of an LLM service: arrival rates per time bin served by replica capacity.

For fleet-scale, multi-year runs where simulating every request is too slow. Per replica group and
fluid bin (``fluid_bin``, default 1 min), vectorised over bins — no per-request or per-bin Python loop:

1. **Offered load** (``sim.serving.fluid.traffic``): expected arrivals per bin and the token moments of
   the requests. Split over the groups (``sim.serving.fluid.split``) as the request level routes: a
   request goes only to groups whose KV cache can hold it (``P + O <= kv_capacity_tokens``), shared among
   them by capacity (replicas × nominal decode rate); requests that fit no group are rejected on arrival.
2. **Steady batch, busy fraction and capacity** (``sim.kernels.fluid``): the number of requests in the
   group is a birth–death chain whose departure rate with ``j`` running in a replica is ``j / (I·τ(j))``
   — ``τ(j)`` the mean iteration time from the roofline (with ``per_token_s`` when the plan has it),
   ``I`` the iterations a request spends in the batch — with batches capped at ``max_batch`` =
   min(``max_seqs``, ``token_budget``, KV capacity / E[P + O]). Balanced routers (``least-work``,
   ``jsq``, ``central``; ``slo-aware`` is taken as one of them) keep the replicas' batches level across
   the service, so the chain runs over the whole group, and groups of alike replicas are pooled into one
   (``sim.serving.fluid.pool``; groups of different chips keep a chain each);
   ``round-robin`` is taken as a random split, one chain per replica. Busy fraction = the share of
   replicas with a non-empty batch; capacity = the full-batch departure rate.
3. **Backlog**: arrivals above capacity carry over, ``B_k = max(0, B_{k−1} + A_k − capacity_k)``. A bin
   ending with backlog is busy throughout; a bin that drains its backlog is busy until it has drained,
   then at the steady busy fraction. Backlog left at the horizon, plus the requests still in the
   batches, is unfinished; completed + unfinished + rejected = offered, and the requests that complete
   are the earliest (first come, first served).
4. **Latency** (``sim.serving.fluid.latency``): mixture components per load level weighted by the
   requests that complete — Erlang C wait or, under backlog, a uniform delay; TTFT = residual of the
   running iteration + wait + prefill; TPOT from Little's law; end to end = TTFT + (O − 1)·TPOT. SLO
   attainment is the expected share of offered requests with TTFT and TPOT within target.

Windows (``sim.fleet.windows``): a windowed group receives requests only over the active share of each
bin (``sim.serving.fluid.split``), serves them over that share only (its capacity, busy time and saturation
count it pro rata), and after its window ends keeps draining the backlog it holds; arrivals that no active
group could take are rejected (``rejected_inactive``, reason ``no replica active``).

Failures (``sim.serving.failures``): a group whose replicas are up a share ``A`` of the time (``availability``)
serves every bin with ``A × replicas`` replicas: the chain and Erlang C see each up replica's share of the
load, the capacity is ``A`` times the group's, busy time and headroom count only the replicas up (the
expected share: no outage is drawn, so a bin never loses a whole replica; the Erlang C slot count stays the
group's).

Busy chip-seconds per time-series bin (``outputs.timeseries_interval``) come from the fluid bins (busy
time spread evenly inside a fluid bin), so power and energy follow load as they do with the
request-level kernel's busy seconds, and the service's utilization has the same definition. Energy-weighted
busy chip-seconds (``sim.serving.activity``): per fluid bin ``m · busy + (1 − m) · min(busy, compute)``, with
compute = the requests entering service in the bin × one request's compute seconds (prefill and decode tokens and
the context they attend, at the mean lengths), the request level's sum over iterations in aggregate (the work is
counted in the bin it enters service).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sim.fleet.windows import active_fraction
from sim.kernels import fluid as kernel
from sim.serving.activity import energy_weighted_s
from sim.serving.fluid.latency import components, iteration_s
from sim.serving.fluid.pool import pool, split
from sim.serving.fluid.split import capacity_share, covers_of, group_lengths, inactive_frac, rejected_frac
from sim.serving.fluid.traffic import Lengths, fluid_edges, offered_load
from sim.serving.headroom import batch_cap, per_request_means


def serve_fluid(service, groups: list, horizon_s: float, bin_width_s: float, base_dir,
                rng: np.random.Generator, start=None) -> dict:
    """Serve one fluid-fidelity service over ``horizon_s``; per group, counts, busy time per time-series
    bin of ``bin_width_s`` and latency components (``sim.serving.fluid.summary`` turns them into the
    summary)."""
    offered = offered_load(service, fluid_edges(horizon_s, service.fluid_bin), base_dir, rng, start)
    covers = covers_of(groups, offered.edges)
    lengths = group_lengths(offered, groups, capacity_share(groups), covers)
    rejected = float(np.sum(offered.arrivals * rejected_frac(offered, groups)))
    inactive = 0.0 if covers is None else float(np.sum(offered.arrivals * inactive_frac(offered, groups)))
    interval = bin_width_s
    series = fluid_edges(horizon_s, interval)  # the time-series bins
    length = int(np.ceil(horizon_s / interval)) + 1  # as the request-level kernel's busy array
    balanced = service.router.kind != "round-robin"
    # balanced routers level batches across all of the service's replicas: alike groups share one chain
    chains, loads, members = pool(groups, lengths, balanced)
    served = split(groups, [serve_group(replace(plan, kernel={**plan.kernel, "balanced": balanced}), offered, taken,
                                        service.slo) for plan, taken in zip(chains, loads)], members)
    return {"fidelity": "fluid", "not_offered": offered.not_offered, "rejected": rejected + inactive,
            "rejected_inactive": inactive, "windowed": covers is not None, "groups": served,
            "edges": offered.edges,
            "offered_per_bin": offered.arrivals, "served_per_bin": sum(g["served_per_bin"] for g in served),
            "met_per_bin": sum(g["met_per_bin"] for g in served),
            "busy_chip_s": [_rebin(g["busy_chip_s"], offered.edges, series, length) for g in served],
            "energy_chip_s": [_rebin(g["energy_chip_s"], offered.edges, series, length) for g in served],
            "kv_peak": [g["kv_peak_tokens"] for g in served]}


def serve_group(plan, offered, lengths: Lengths, slo) -> dict:
    """One replica group's part of the offered load through the fluid model (module docstring): the
    requests routed to it, ``offered.arrivals × lengths.accepted_frac`` per bin, all of which fit its KV
    cache. ``offered`` counts these requests; the service's rejections are kept apart."""
    k = plan.kernel
    replicas, widths = plan.replicas, np.diff(offered.edges)
    up = getattr(plan, "availability", 1.0)  # share of replicas up (failures): the others serve nothing
    accepted = offered.arrivals * lengths.accepted_frac
    active_s = widths  # the seconds of each bin the group is active: what its headroom counts
    if getattr(plan, "window", None) is not None:  # a windowed group serves only the active part of a bin
        active_s = widths * active_fraction(plan.window, offered.edges)
        widths = widths * serving_cover(plan.window, offered.edges)  # and drains its backlog after it
        rate = np.divide(accepted, widths, out=np.zeros(len(widths)), where=widths > 0)
    else:
        rate = accepted / widths
    rows, row = _steady_state(k, replicas, rate / up, lengths, len(widths))
    group_rate = replicas * up * rows["full_rate"][row]
    backlog = kernel.fluid_backlog(accepted, group_rate * widths)
    before = np.concatenate(([0.0], backlog[:-1]))
    meets = _share_meeting_backlog(before, backlog, rate, group_rate, widths)
    busy = (meets + (1.0 - meets) * rows["busy"][row]) * up
    last = row[-1]  # there is at least one bin: the horizon is positive
    in_batches = replicas * float(rows["running"][last])  # still running at the horizon
    unfinished = min(float(backlog[-1]) + in_batches, float(accepted.sum()))
    served = before + accepted - backlog
    tokens = float(np.sum(served * rows["output"][row])) - in_batches * float(rows["output"][last])
    completed = float(accepted.sum()) - unfinished
    # first come, first served: the requests that complete are the earliest arrivals
    finishing = np.clip(completed - (np.cumsum(accepted) - accepted), 0.0, accepted)
    latency = components(k, replicas, rows, row, meets, before, backlog, group_rate, finishing, offered, slo)
    busy_replica_s = busy * widths * replicas
    return {"offered": float(accepted.sum()), "completed": completed, "unfinished": unfinished,
            "output_tokens": max(tokens, 0.0),
            "busy_chip_s": busy_replica_s * plan.chips_per_replica,
            "energy_chip_s": energy_weighted_s(busy_replica_s, served * _compute_s(k, rows, row),
                                               k.get("memory_activity", 1.0)) * plan.chips_per_replica,
            "served_per_bin": served, "backlog_per_bin": backlog,
            **_headroom(rows, row, meets, active_s * replicas * up), **latency}


def _compute_s(k: dict, rows: dict, row: np.ndarray) -> np.ndarray:
    """Compute seconds of one request's work on a replica per bin (the roofline's compute term,
    ``serving_reference.iteration_time_s``, over its mean prompt and decode tokens and the context they attend:
    ``P(P + 1)/2`` for its prompt, taken at the mean prompt as ``iteration_s`` does)."""
    prompt, decode, context = rows["prompt"][row], rows["decode"][row], rows["context"][row]
    flop = k["flop_per_token"] * (prompt + decode) + k.get("attn_flop_per_token_ctx", 0.0) * (
        prompt * (prompt + 1.0) / 2.0 + context)
    return flop / k["flops_per_s"]


def _steady_state(k: dict, replicas: int, arrival_per_s: np.ndarray, lengths: Lengths, bins: int):
    """The chain of ``sim.kernels.fluid.stationary_group`` and Erlang C, evaluated once per distinct
    (load, lengths) row — the bins of a long run differ mostly in load, so there are far fewer rows than
    bins. Returns the rows' quantities (per replica) and every bin's row."""
    means = per_request_means(lengths)
    max_batch = batch_cap(k, means["prompt"] + means["decode"] + 1)
    columns = {"lam": arrival_per_s / replicas, **means, "max_batch": max_batch}
    varying = [name for name, values in columns.items() if np.ndim(values) > 0]  # constant lengths stay scalars
    merged, _, row = kernel.merge_rows([columns[n] for n in varying], [columns[n] for n in varying], np.ones(bins))
    count = len(merged[0])
    r = {name: np.full(count, float(values)) for name, values in columns.items() if name not in varying}
    r.update(zip(varying, merged))
    r["max_batch"] = np.round(r["max_batch"]).astype(np.int64)
    r["iterations"] = r["decode"] + r["chunks"]
    r["output"] = r["decode"] + 1.0
    _chain(k, r, replicas)
    r["wait_prob"] = np.empty(len(r["lam"]))
    for size in np.unique(r["max_batch"]):  # the admission queue's servers are the group's batch slots
        rows_of = r["max_batch"] == size
        slots = int(replicas * size)
        r["wait_prob"][rows_of] = kernel.erlang_c(slots, r["lam"][rows_of] * slots / r["full_rate"][rows_of])
    return r, row


def _chain(k: dict, r: dict, replicas: int) -> None:
    """Fill the rows ``r`` with the chain's busy fraction, batch, capacity and full-batch iteration time,
    a chunk of rows at a time (rows × batch sizes within ``MAX_CELLS``)."""
    # balanced routers (least-work, jsq, central) keep the replicas' batches level: one chain for the group;
    # round-robin splits arrivals blindly: one chain per replica, at its share of the arrivals
    pooled = replicas if k["balanced"] else 1
    names = ("busy", "running", "seen", "busy_seen", "full_rate", "tau_full")
    r.update({name: np.empty(len(r["lam"])) for name in names})
    top = r["max_batch"]
    step = max(1, kernel.MAX_CELLS // min(pooled * int(top.max(initial=1)), 1 << 16))
    for a in range(0, len(top), step):
        s = slice(a, a + step)
        tau = iteration_s(k, np.arange(1, int(top[s].max()) + 1, dtype=np.float64)[None, :],
                          {n: r[n][s, None] for n in ("decode", "prompt", "chunks", "context", "iterations")})
        out = kernel.stationary_group(r["lam"][s] * pooled, tau, r["iterations"][s], top[s], pooled)
        for name, values in zip(names[:5], out[:5]):
            r[name][s] = values
        r["tau_full"][s] = tau[np.arange(tau.shape[0]), top[s] - 1]


def _headroom(rows: dict, row: np.ndarray, meets: np.ndarray, replica_s: np.ndarray) -> dict:
    """A group's headroom amounts over the run (each adds over groups; ``replica_s`` = replica-seconds per
    bin): output tokens at full batches (``saturation_tokens``, the chain's capacity), busy replica-seconds
    weighted by batch ÷ batch cap (``batch_fill_s``) and KV token-seconds (``kv_token_s``: the bin-mean
    batch × E[P + O]). A bin's share with a backlog runs full batches; the rest its steady mean batch."""
    cap = rows["max_batch"][row].astype(np.float64)
    running = meets * cap + (1.0 - meets) * rows["running"][row]  # mean requests in a replica's batch
    return {"saturation_tokens": float(np.sum(replica_s * rows["full_rate"][row] * rows["output"][row])),
            "batch_fill_s": float(np.sum(replica_s * running / cap)),
            "kv_token_s": float(np.sum(replica_s * running * (rows["prompt"][row] + rows["output"][row])))}


def _share_meeting_backlog(before, after, arrival_per_s, group_rate, widths) -> np.ndarray:
    """Share of each bin's time (and arrivals) with a backlog: all of it when the bin ends with one; the
    drain time ``before / (capacity − arrival rate)`` when the bin clears the backlog it started with."""
    spare = group_rate - arrival_per_s
    # only a bin with spare capacity can drain; elsewhere the backlog takes the whole bin (no 1/0 overflow)
    drain = np.divide(before, spare, out=np.where(before > 0, widths, 0.0), where=(before > 0) & (spare > 0))
    if not (widths > 0).all():  # a windowed group's bins outside its window serve nothing
        return np.where(after > 0, 1.0, np.clip(np.divide(drain, widths, out=np.zeros(len(widths)),
                                                          where=widths > 0), 0.0, 1.0))
    return np.where(after > 0, 1.0, np.clip(drain / widths, 0.0, 1.0))


def serving_cover(window: tuple[float, float], edges: np.ndarray) -> np.ndarray:
    """Share of each fluid bin a windowed group serves: the share inside its window (pro rata at an edge), and
    whole bins after the window ends, where it only drains its backlog (it receives no new requests there:
    ``sim.serving.fluid.split``)."""
    cover = active_fraction(window, edges)
    return np.where(edges[:-1] >= window[1], 1.0, cover)


def _rebin(per_bin: np.ndarray, edges: np.ndarray, series_edges: np.ndarray, length: int) -> np.ndarray:
    """Amounts per fluid bin onto the time-series bins, spread evenly inside each fluid bin; ``length``
    entries (zeros after the horizon), the request-level kernel's length, so the two add up per pool."""
    cumulative = np.concatenate(([0.0], np.cumsum(per_bin)))
    out = np.zeros(max(length, len(series_edges) - 1))
    out[: len(series_edges) - 1] = np.diff(np.interp(series_edges, edges, cumulative))
    return out
