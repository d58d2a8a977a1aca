"""Fluid fidelity of an LLM service: arrival rates per time bin served by replica capacity.

For fleet-scale, multi-year runs where simulating every request is too slow. Per replica group and
fluid bin (``fluid_bin``, default 1 min), vectorised over bins — no per-request or per-bin Python loop:

1. **Offered load** (``sim.engine.fluid_traffic``): expected arrivals per bin and the token moments of
   the requests; the group takes its share (replicas × chips × FLOP/s, as the request-level split).
   Requests that can never fit the KV cache (``P + O > kv_capacity_tokens``) are rejected on arrival.
2. **Steady batch, busy fraction and capacity** per replica (``sim.kernels.fluid``): the batch is the
   stationary law of a processor-sharing birth–death chain whose departure rate with ``j`` running is
   ``j / (I · τ(j))`` — ``τ(j)`` the mean iteration time from the roofline (with ``per_token_s`` when the
   plan has it), ``I`` the iterations a request spends in the batch — capped at ``max_batch`` =
   min(``max_seqs``, ``token_budget``, KV capacity / E[P + O]). Busy fraction = P(batch non-empty);
   capacity = the full-batch departure rate.
3. **Backlog**: arrivals above capacity carry over, ``B_k = max(0, B_{k−1} + A_k − capacity_k)``. A bin
   with backlog is busy throughout; a bin that drains its backlog is busy until it has drained, then
   at the steady busy fraction. Backlog left at the horizon, plus the requests still in the batches,
   is unfinished; so completed + unfinished + rejected = offered.
4. **Latency**, per bin, as a mixture component weighted by the bin's accepted arrivals:
   wait = Erlang C (c = the group's batch slots; an exponential tail) or, for arrivals that meet a
   backlog, a uniform delay between the backlog they meet over the capacity; TTFT = mean residual of the
   running iteration + wait + prefill time of the prompt at the batch the arrival meets (chunked over
   the token budget left by decode tokens); TPOT = mean time in the batch over iterations (Little's law:
   running / λ, less the prefill, per decode iteration), or the full-batch iteration time under backlog; end-to-end = TTFT + (O − 1)·TPOT.
   Prompt lengths (for TTFT) and output lengths (end to end) enter through 15 slices of their
   distribution, finer in the tail. SLO attainment: the expected share of offered requests with TTFT
   and TPOT within target, from the same components (TPOT is the bin's mean, not a distribution).

Busy chip-seconds per time-series bin (``outputs.timeseries_interval``) come from the fluid bins (busy is
spread evenly inside a fluid bin), so power and energy follow load exactly as for the request-level
kernel's busy seconds. Components with nearly equal parameters (0.5 % apart) are merged before the
latency mixture; a service's percentiles therefore cost the same for a year as for an hour of steady load.
"""

from __future__ import annotations

import numpy as np

from sim.engine.fluid_latency import components, iteration_s
from sim.engine.fluid_traffic import Lengths, fluid_edges, offered_load
from sim.kernels import fluid as kernel
from sim.kernels.serving_reference import ROUTER_ROUND_ROBIN


def serve_fluid(scenario, service, groups: list, base_dir, rng: np.random.Generator) -> dict:
    """Serve one fluid-fidelity service over the horizon; per group, counts, busy time and latency
    components (``sim.results.fluid`` turns them into the summary)."""
    horizon = float(scenario.duration)
    offered = offered_load(service, fluid_edges(horizon, service.fluid_bin), base_dir, rng)
    weight = np.array([p.replicas * p.kernel["flops_per_s"] for p in groups])
    series = fluid_edges(horizon, float(scenario.outputs.timeseries_interval))  # the time-series bins
    served = [serve_group(plan, offered, share, service.slo) for plan, share in zip(groups, weight / weight.sum())]
    return {"fidelity": "fluid", "not_offered": offered.not_offered, "groups": served,
            "busy_chip_s": [_rebin(g["busy_chip_s"], offered.edges, series) for g in served],
            "kv_peak": [g["kv_peak_tokens"] for g in served]}


def serve_group(plan, offered, share: float, slo) -> dict:
    """One replica group's share of the offered load through the fluid model (module docstring)."""
    k = plan.kernel
    replicas, widths = plan.replicas, np.diff(offered.edges)
    lengths = offered.lengths(k["kv_capacity_tokens"], k["token_budget"])
    arrivals = offered.arrivals * share
    accepted = arrivals * lengths.accepted_frac
    rows, row = _steady_state(k, replicas, accepted / widths, lengths, len(widths))
    group_rate = replicas * rows["full_rate"][row]
    backlog = kernel.fluid_backlog(accepted, group_rate * widths)
    before = np.concatenate(([0.0], backlog[:-1]))
    meets = _share_meeting_backlog(before, backlog, accepted / widths, group_rate, widths)
    busy = meets + (1.0 - meets) * rows["busy"][row]
    last = row[-1] if len(row) else 0
    in_batches = replicas * float(rows["running"][last]) if len(row) else 0.0
    unfinished = min(float(backlog[-1]) + in_batches if len(row) else 0.0, float(accepted.sum()))
    served = before + accepted - backlog
    tokens = float(served @ rows["output"][row]) - in_batches * float(rows["output"][last]) if len(row) else 0.0
    completed = float(accepted.sum()) - unfinished
    # first come, first served: the requests that complete are the earliest arrivals
    finishing = np.clip(completed - (np.cumsum(accepted) - accepted), 0.0, accepted)
    latency = components(k, replicas, rows, row, meets, before, backlog, group_rate, finishing, offered, slo)
    return {"offered": float(arrivals.sum()), "rejected": float(arrivals.sum() - accepted.sum()),
            "completed": completed, "unfinished": unfinished, "output_tokens": max(tokens, 0.0),
            "busy_chip_s": busy * widths * replicas * plan.chips_per_replica,
            "served_per_bin": served, "backlog_per_bin": backlog, **latency}


def _steady_state(k: dict, replicas: int, arrival_per_s: np.ndarray, lengths: Lengths, bins: int):
    """The chain of ``sim.kernels.fluid.stationary_group`` and Erlang C, evaluated once per distinct
    (load, lengths) row — the bins of a long run differ mostly in load, so there are far fewer rows than
    bins. Returns the rows' quantities (per replica) and every bin's row."""
    means = _per_request(lengths)
    max_batch = np.maximum(np.minimum(min(k["max_seqs"], k["token_budget"]), np.floor(
        k["kv_capacity_tokens"] / np.maximum(means["prompt"] + means["decode"] + 1, 1))), 1.0)
    columns = {"lam": arrival_per_s / replicas, **means, "max_batch": max_batch}
    varying = [name for name, values in columns.items() if np.ndim(values) > 0]  # constant lengths stay scalars
    merged, _, row = kernel.merge_rows([columns[n] for n in varying], [columns[n] for n in varying], np.ones(bins))
    count = len(merged[0])
    r = {name: np.full(count, float(values)) for name, values in columns.items() if name not in varying}
    r.update(zip(varying, merged))
    r["max_batch"] = np.round(r["max_batch"]).astype(np.int64)
    r["iterations"] = r["decode"] + r["chunks"]
    r["output"] = r["decode"] + 1.0
    # balanced routers (least-work, jsq, central) keep the replicas' batches level: one chain for the group;
    # round-robin splits arrivals blindly: one chain per replica, at its share of the arrivals
    pooled = replicas if k["router"] != ROUTER_ROUND_ROBIN else 1
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
    r["wait_prob"] = np.empty(len(top))
    for size in np.unique(top):  # the admission queue's servers are the group's batch slots
        rows_of = top == size
        slots = int(replicas * size)
        r["wait_prob"][rows_of] = kernel.erlang_c(slots, r["lam"][rows_of] * slots / r["full_rate"][rows_of])
    return r, row


def _per_request(lengths: Lengths) -> dict[str, np.ndarray]:
    """Per-request means per bin (0-d when constant): decode tokens, prompt, prompt chunks, context."""
    return {"decode": lengths.output - 1.0, "prompt": lengths.prompt, "chunks": np.maximum(lengths.chunks, 1.0),
            "context": lengths.context}


def _share_meeting_backlog(before, after, arrival_per_s, group_rate, widths) -> np.ndarray:
    """Share of each bin's time (and arrivals) with a backlog: all of it when the bin ends with one; the
    drain time ``before / (capacity − arrival rate)`` when the bin clears the backlog it started with."""
    with np.errstate(divide="ignore", invalid="ignore"):
        drain = np.where(before > 0, before / np.maximum(group_rate - arrival_per_s, 1e-300), 0.0)
    return np.where(after > 0, 1.0, np.clip(drain / widths, 0.0, 1.0))


def _rebin(per_bin: np.ndarray, edges: np.ndarray, series_edges: np.ndarray) -> np.ndarray:
    """Amounts per fluid bin onto the time-series bins, spread evenly inside each fluid bin."""
    cumulative = np.concatenate(([0.0], np.cumsum(per_bin)))
    return np.diff(np.interp(series_edges, edges, cumulative))
