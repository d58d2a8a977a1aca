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
   wait = Erlang C (c = replicas, μ = full-batch rate; an exponential tail) or, for arrivals that meet a
   backlog, a uniform delay between the backlog they meet over the capacity; TTFT = mean residual of the
   running iteration + wait + prefill time of the prompt at the batch the arrival meets (chunked over
   the token budget left by decode tokens); TPOT = mean time in the batch over iterations (Little's law:
   running / (λ · I)), or the full-batch iteration time under backlog; end-to-end = TTFT + (O − 1)·TPOT.
   Prompt lengths (for TTFT) and output lengths (end to end) enter through 15 slices of their
   distribution, finer in the tail. SLO attainment: the expected share of offered requests with TTFT
   and TPOT within target, from the same components (TPOT is the bin's mean, not a distribution).

Busy chip-seconds per time-series bin (``outputs.timeseries_interval``) come from the fluid bins (busy is
spread evenly inside a fluid bin), so power and energy follow load exactly as for the request-level
kernel's busy seconds. Components with nearly equal parameters (0.2 % apart) are merged before the
latency mixture; a service's percentiles therefore cost the same for a year as for an hour of steady load.
"""

from __future__ import annotations

import numpy as np

from sim.engine.fluid_traffic import Lengths, fluid_edges, offered_load
from sim.kernels import fluid as kernel
from sim.kernels.serving_reference import ROUTER_ROUND_ROBIN
from sim.results.series import bin_edges

MERGE_STEP = 0.002  # relative spacing of the parameter grid on which bins are merged


def serve_fluid(scenario, service, groups: list, base_dir, rng: np.random.Generator) -> dict:
    """Serve one fluid-fidelity service over the horizon; per group, counts, busy time and latency
    components (``sim.results.fluid`` turns them into the summary)."""
    horizon = float(scenario.duration)
    offered = offered_load(service, fluid_edges(horizon, service.fluid_bin), base_dir, rng)
    weight = np.array([p.replicas * p.kernel["flops_per_s"] for p in groups])
    series = bin_edges(horizon, float(scenario.outputs.timeseries_interval))
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
    state = _steady_state(k, replicas, accepted / widths, _per_bin(lengths, len(widths)))
    capacity = replicas * state["full_rate"] * widths
    backlog = kernel.fluid_backlog(accepted, capacity)
    before = np.concatenate(([0.0], backlog[:-1]))
    group_rate = replicas * state["full_rate"]
    meets = _share_meeting_backlog(before, backlog, accepted / widths, group_rate, widths)
    busy = meets + (1.0 - meets) * state["busy"]
    in_batches = replicas * (state["running"][-1] if len(widths) else 0.0)
    unfinished = min(float(backlog[-1]) + in_batches if len(widths) else 0.0, float(accepted.sum()))
    served = before + accepted - backlog
    outputs = state["output"]
    tokens = float(served @ outputs) - in_batches * (float(outputs[-1]) if len(widths) else 0.0)
    latency = _latency(k, replicas, state, meets, before, backlog, group_rate, accepted, offered, slo)
    completed = float(accepted.sum()) - unfinished
    scale = completed / float(accepted.sum()) if accepted.sum() > 0 else 0.0
    batch_kv = np.where(accepted > 0, latency.pop("batch") * state["reservation"], 0.0)
    return {"offered": float(arrivals.sum()), "rejected": float(arrivals.sum() - accepted.sum()),
            "completed": completed, "unfinished": unfinished, "output_tokens": max(tokens, 0.0),
            "met": latency.pop("met") * scale, "busy_chip_s": busy * widths * replicas * plan.chips_per_replica,
            "kv_peak_tokens": int(min(batch_kv.max(initial=0.0), k["kv_capacity_tokens"])),
            "served_per_bin": served, "backlog_per_bin": backlog, **latency}


def _per_bin(lengths: Lengths, bins: int) -> dict[str, np.ndarray]:
    """Per-bin per-request means: decode tokens, prompt, chunks, context, iterations, output, reservation."""
    def full(values):
        return np.broadcast_to(np.asarray(values, dtype=np.float64), (bins,))
    output = full(lengths.output)
    chunks = np.maximum(full(lengths.chunks), 1.0)
    return {"decode": output - 1.0, "prompt": full(lengths.prompt), "chunks": chunks,
            "context": full(lengths.context), "iterations": output - 1.0 + chunks, "output": output,
            "reservation": full(lengths.prompt) + output}


def _steady_state(k: dict, replicas: int, arrival_per_s: np.ndarray, means: dict) -> dict:
    """The chain of ``sim.kernels.fluid.stationary_batch`` and Erlang C, evaluated once per distinct
    (load, lengths) row — the rows of a long run differ only in load, so far fewer rows than bins."""
    max_batch = np.minimum(min(k["max_seqs"], k["token_budget"]),
                           np.floor(k["kv_capacity_tokens"] / np.maximum(means["reservation"], 1.0)))
    max_batch = np.maximum(max_batch, 1.0)
    lam = arrival_per_s / replicas
    # balanced routers (least-work, jsq, central) keep the replicas' batches level: one chain for the group;
    # round-robin splits arrivals blindly: one chain per replica, at its share of the arrivals
    pooled = replicas if k["router"] != ROUTER_ROUND_ROBIN else 1
    columns = [lam, means["decode"], means["prompt"], means["chunks"], means["context"], max_batch]
    rows, inverse = merge_rows(columns, np.ones(len(lam)))
    lam_r, decode, prompt, chunks, context, top = rows[:-1]
    top = np.round(top).astype(np.int64)
    iterations = decode + chunks
    busy, running, seen, busy_seen, full_rate, tau_full = (np.empty(len(lam_r)) for _ in range(6))
    step = max(1, kernel.MAX_CELLS // min(pooled * int(top.max(initial=1)), 1 << 16))
    for a in range(0, len(lam_r), step):
        s = slice(a, a + step)
        j = np.arange(1, int(top[s].max()) + 1, dtype=np.float64)[None, :]
        tau = _iteration_s(k, j, decode[s, None], prompt[s, None], chunks[s, None], context[s, None],
                           iterations[s, None])
        busy[s], running[s], seen[s], busy_seen[s], full_rate[s], _ = kernel.stationary_group(
            lam_r[s] * pooled, tau, iterations[s], top[s], pooled)
        tau_full[s] = tau[np.arange(tau.shape[0]), top[s] - 1]
    wait_prob = kernel.erlang_c(replicas, lam_r * replicas / full_rate)
    state = {name: values[inverse] for name, values in
             (("busy", busy), ("running", running), ("seen", seen), ("busy_seen", busy_seen),
              ("full_rate", full_rate), ("tau_full", tau_full),
              ("wait_prob", wait_prob), ("max_batch", top.astype(np.float64)))}
    return {**state, **means, "lam": lam}


def _iteration_s(k: dict, batch, decode, prompt, chunks, context, iterations):
    return kernel.mean_iteration_time_s(
        batch, decode, prompt, chunks, context, iterations, k["flop_per_token"], k["flops_per_s"],
        k["weight_bytes"], k["kv_bytes_per_token"], k["bytes_per_s"], k["overhead_s"], k.get("per_token_s", 0.0))


def _share_meeting_backlog(before, after, arrival_per_s, group_rate, widths) -> np.ndarray:
    """Share of each bin's time (and arrivals) with a backlog: all of it when the bin ends with one; the
    drain time ``before / (capacity − arrival rate)`` when the bin clears the backlog it started with."""
    with np.errstate(divide="ignore", invalid="ignore"):
        drain = np.where(before > 0, before / np.maximum(group_rate - arrival_per_s, 1e-300), 0.0)
    return np.where(after > 0, 1.0, np.clip(drain / widths, 0.0, 1.0))


def _latency(k, replicas, state, meets, before, backlog, group_rate, accepted, offered, slo) -> dict:
    """Latency mixture components of the group (TTFT, end to end, TPOT), merged, and the expected number
    of accepted requests within both SLO targets."""
    lam, iterations = state["lam"], state["iterations"]
    stable = 1.0 - meets
    with np.errstate(divide="ignore", invalid="ignore"):
        tpot_steady = np.where(lam > 0, state["running"] / (lam * iterations), state["tau_full"])
        batch_busy = np.where(state["busy"] > 0, state["running"] / state["busy"], 1.0)
    tpot = meets * state["tau_full"] + stable * tpot_steady
    seen = meets * state["max_batch"] + stable * state["seen"]
    busy_batch = meets * state["max_batch"] + stable * batch_busy
    residual = (meets + stable * state["busy_seen"]) * _iteration_s(
        k, busy_batch, state["decode"], state["prompt"], state["chunks"], state["context"], iterations) / 2.0
    decode_seen = seen * state["decode"] / iterations
    memory_s = (k["weight_bytes"] + k["kv_bytes_per_token"] * seen * state["context"] / iterations) / k["bytes_per_s"]
    exp_rate = np.maximum(group_rate - lam * replicas, 0.0)
    columns = [residual, tpot, stable * state["wait_prob"], exp_rate, meets,
               np.where(backlog > 0, np.minimum(before, backlog), 0.0) / group_rate,
               np.maximum(before, backlog) / group_rate,
               decode_seen, memory_s]
    live = accepted > 0
    rows, _ = merge_rows([c[live] for c in columns], accepted[live])
    weight, (residual, tpot, exp_mass, exp_rate, uniform_mass, low, high, decode_seen, memory_s) = rows[-1], rows[:-1]
    slice_weight, prompt_points, output_points = offered.quantile_points()
    prefill = _prefill_s(k, decode_seen[:, None], memory_s[:, None], prompt_points[None, :])
    wait = (exp_mass, exp_rate, uniform_mass, low, high)
    ttft = _expand(weight, slice_weight, residual[:, None] + prefill, wait)
    mean_prefill = _prefill_s(k, decode_seen, memory_s, float(slice_weight @ prompt_points))
    e2e = _expand(weight, slice_weight, (residual + mean_prefill)[:, None] + (output_points[None, :] - 1.0)
                  * tpot[:, None], wait)
    met = _within_slo(ttft, np.repeat(tpot, len(slice_weight)), slo)
    zeros = np.zeros(len(weight))
    return {"ttft": ttft, "e2e": e2e, "tpot": {"weight": weight, "shift": tpot, "exp_mass": zeros,
                                                  "exp_rate": zeros, "uniform_mass": zeros, "uniform_low": zeros,
                                                  "uniform_high": zeros},
            "met": met, "batch": busy_batch}


def _prefill_s(k, decode_tokens, memory_s, prompt_tokens):
    """Time [s] from admission to the first token of a prompt, in iterations shared with ``decode_tokens``
    decode tokens: chunks of the token budget left by them (one chunk without chunked prefill)."""
    room = np.maximum(k["token_budget"] - decode_tokens, 1.0)
    chunks = np.ceil(prompt_tokens / room) if k["chunked_prefill"] else np.ones_like(prompt_tokens * room)
    tokens = decode_tokens + prompt_tokens / chunks
    compute_s = k["flop_per_token"] * tokens / k["flops_per_s"]
    one = k["overhead_s"] + k.get("per_token_s", 0.0) * tokens + np.maximum(compute_s, memory_s)
    return chunks * one


def _expand(weight, slice_weight, shift, wait) -> dict:
    """Components for every (bin row, length slice): weights multiply, the wait repeats per slice."""
    slices = len(slice_weight)
    names = ("exp_mass", "exp_rate", "uniform_mass", "uniform_low", "uniform_high")
    return {"weight": (weight[:, None] * slice_weight[None, :]).ravel(), "shift": shift.ravel(),
            **{name: np.repeat(values, slices) for name, values in zip(names, wait)}}


def _within_slo(ttft: dict, tpot: np.ndarray, slo) -> float:
    """Expected accepted requests with TTFT and TPOT within target (bin-mean TPOT against its target)."""
    if slo is None:
        return 0.0
    args = [ttft[n] for n in ("shift", "exp_mass", "exp_rate", "uniform_mass", "uniform_low", "uniform_high")]
    fast = kernel.component_cdf(slo.ttft_p99_ms / 1e3, *args)
    return float(ttft["weight"] @ (fast * (tpot <= slo.tpot_p99_ms / 1e3)))


def merge_rows(columns: list[np.ndarray], weight: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Merge rows whose columns agree on a relative grid of ``MERGE_STEP`` (zeros kept apart): returns the
    weighted means of each merged row's columns plus the summed weight as the last array, and for
    every input row the index of its merged row."""
    if len(weight) == 0:
        return [np.zeros(0) for _ in columns] + [np.zeros(0)], np.zeros(0, dtype=np.int64)
    keys = np.ascontiguousarray(np.stack([_grid(c) for c in columns], axis=1))
    view = keys.view(np.dtype((np.void, keys.dtype.itemsize * keys.shape[1]))).reshape(-1)
    _, first, inverse = np.unique(view, return_index=True, return_inverse=True)  # rows as bytes: fast
    inverse = inverse.reshape(-1)
    total = np.bincount(inverse, weights=weight, minlength=len(first))
    safe = np.where(total > 0, total, 1.0)
    merged = [np.where(total > 0, np.bincount(inverse, weights=weight * c, minlength=len(first)) / safe, c[first])
              for c in columns]
    return merged + [total], inverse


def _grid(values: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        code = np.round(np.log(np.abs(values)) / MERGE_STEP)
    code = np.where(np.isfinite(code), code, -(1 << 40))  # zero (and inf) on their own codes
    return (np.sign(values) * (code + (1 << 41))).astype(np.int64)


def _rebin(per_bin: np.ndarray, edges: np.ndarray, series_edges: np.ndarray) -> np.ndarray:
    """Amounts per fluid bin onto the time-series bins, spread evenly inside each fluid bin."""
    cumulative = np.concatenate(([0.0], np.cumsum(per_bin)))
    return np.diff(np.interp(series_edges, edges, cumulative))
