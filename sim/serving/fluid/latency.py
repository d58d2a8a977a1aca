"""Latency of a fluid-fidelity replica group as mixture components (see ``sim.serving.fluid.serve``).

A component stands for the requests of some bins that complete, with one law of latency: a shift
plus a wait that is 0, exponential (Erlang C's tail) or uniform (a backlog met on arrival). Bins without
backlog take their component from their steady-state row, so a year of bins at a few hundred load
levels gives a few hundred components; the part of a bin's arrivals that meets a backlog gets a
component of its own, at a full batch, merged with others of the same row and nearly equal delays.

* TTFT = residual of the iteration running at arrival (half its mean length, when the replica the
  request joins is busy) + wait + prefill of the prompt next to the decode tokens of the batch met.
* TPOT = time in the batch from Little's law (``running / λ``), less the request's own prefill, over
  its decode iterations (E[O] − 1); at a full batch, the full batch's mean iteration time.
* End to end = TTFT (mean prompt) + (O − 1) · TPOT.
Prompt lengths (TTFT) and output lengths (end to end) enter through slices of their distributions
(``sim.serving.fluid.traffic.QUANTILE_EDGES``), each spread uniformly over its range of lengths.
"""

from __future__ import annotations

import numpy as np

from sim.kernels import fluid as kernel

WAIT = ("exp_mass", "exp_rate", "uniform_mass", "uniform_low", "uniform_high")


def iteration_s(k: dict, batch, means: dict):
    """Mean iteration time [s] with ``batch`` requests running (``sim.kernels.fluid.mean_iteration_time_s``)
    for a plan's kernel parameters ``k`` and per-request means (``decode``, ``prompt``, ``chunks``,
    ``context``, ``iterations``)."""
    return kernel.mean_iteration_time_s(
        batch, means["decode"], means["prompt"], means["chunks"], means["context"], means["iterations"],
        k["flop_per_token"], k["flops_per_s"], k["weight_bytes"], k["kv_bytes_per_token"], k["bytes_per_s"],
        k["overhead_s"], k.get("per_token_s", 0.0), k.get("per_seq_s", 0.0), k.get("attn_flop_per_token_ctx", 0.0))


def components(k, replicas, rows, row, meets, before, backlog, group_rate, finishing, offered, slo) -> dict:
    """TTFT, end-to-end and TPOT components of a group, weighted by the completing requests ``finishing``
    of each bin; the expected number of them within both SLO targets (``met``) and the same per arrival bin
    (``met_per_bin``: each bin's completing requests take the met share of the component they were merged
    into, so the bins sum to ``met``); the largest bin-mean KV reservation of a replica (``kv_peak_tokens``)."""
    steady = _steady_parts(k, replicas, rows, np.bincount(row, weights=finishing * (1.0 - meets),
                                                          minlength=len(rows["lam"])))
    queued, queued_of_hit = _backlog_parts(k, rows, row, meets, before, backlog, group_rate, finishing)
    parts = {name: np.concatenate((steady[name], queued[name])) for name in steady}
    keep = parts["weight"] > 0
    parts = {name: values[keep] for name, values in parts.items()}
    peak_batch = float(parts["kv"].max(initial=0.0))
    names = [name for name in parts if name not in ("weight", "kv")]
    merged, weight, merged_of = kernel.merge_rows([parts[n] for n in names], [parts[n] for n in names], parts["weight"],
                                          step=kernel.LATENCY_STEP)
    parts = {"weight": weight, **dict(zip(names, merged))}
    slice_weight, prompt, output = offered.slices()
    wait = tuple(parts[name] for name in WAIT)
    prefill = [_prefill_s(k, parts["decode_seen"][:, None], parts["memory_s"][:, None], prompt[None, :, side])
               for side in (0, 1)]
    ttft = _expand(parts["weight"], slice_weight, parts["residual"][:, None] + prefill[0], prefill[1] - prefill[0],
                   wait)
    mean_prompt = float(np.sum(slice_weight * prompt.mean(axis=1)))
    mean_prefill = _prefill_s(k, parts["decode_seen"], parts["memory_s"], mean_prompt)
    tpot = parts["tpot"][:, None]
    e2e = _expand(parts["weight"], slice_weight, (parts["residual"] + mean_prefill)[:, None]
                  + (output[None, :, 0] - 1.0) * tpot, (output[None, :, 1] - output[None, :, 0]) * tpot, wait)
    zeros = np.zeros(len(parts["weight"]))
    tpot_each = np.repeat(parts["tpot"], len(slice_weight))
    # met share of each merged component, back to the parts it merged, then to the bins they came from
    met_each = _met_each(ttft, tpot_each, slo).reshape(len(weight), -1).sum(axis=1)
    share = np.zeros(len(keep))
    share[keep] = (met_each / np.where(weight > 0, weight, 1.0))[merged_of]
    rows_n, hit = len(rows["lam"]), np.flatnonzero(meets > 0)
    met_per_bin = finishing * (1.0 - meets) * share[:rows_n][row]
    met_per_bin[hit] += finishing[hit] * meets[hit] * share[rows_n:][queued_of_hit]
    return {"ttft": ttft, "e2e": e2e, "tpot": {"weight": parts["weight"], "shift": parts["tpot"], "spread": zeros,
                                                  **{name: zeros for name in WAIT}},
            "met": _within_slo(ttft, tpot_each, slo), "met_per_bin": met_per_bin,
            "kv_peak_tokens": int(min(peak_batch, k["kv_capacity_tokens"]))}


def _steady_parts(k, replicas, rows, weight) -> dict:
    """One component per steady-state row: Erlang C wait, Little's-law TPOT, the batch an arrival meets."""
    lam, decode = rows["lam"], rows["decode"]
    met = _met_batch(k, rows, rows["seen"])
    with np.errstate(divide="ignore", invalid="ignore"):
        # Little: time in the batch = running / λ; less its own prefill, over its decode iterations
        in_batch = np.where(lam > 0, rows["running"] / lam, rows["tau_full"] * rows["iterations"])
        prefill = _prefill_s(k, met["decode_seen"], met["memory_s"], rows["prompt"])
        tpot = np.where(decode > 0, np.maximum(in_batch - prefill, 0.0) / decode, rows["tau_full"])
        batch = np.where(rows["busy"] > 0, rows["running"] / rows["busy"], 1.0)
    residual = rows["busy_seen"] * iteration_s(k, batch, rows) / 2.0
    zeros = np.zeros(len(lam))
    return {"weight": weight, "residual": residual, "tpot": tpot, **met,
            "exp_mass": rows["wait_prob"], "exp_rate": np.maximum(replicas * (rows["full_rate"] - lam), 0.0),
            "uniform_mass": zeros, "uniform_low": zeros, "uniform_high": zeros,
            "kv": batch * (rows["prompt"] + rows["output"])}


def _backlog_parts(k, rows, row, meets, before, backlog, group_rate, finishing) -> tuple[dict, np.ndarray]:
    """Components of the arrivals that meet a backlog: a full batch, and a uniform delay between the
    backlogs over the bin (or from the one it started with down to 0 when it drains) over capacity; and for
    each bin that meets a backlog, its component."""
    hit = np.flatnonzero(meets > 0)
    low = np.where(backlog[hit] > 0, np.minimum(before[hit], backlog[hit]), 0.0) / group_rate[hit]
    high = np.maximum(before[hit], backlog[hit]) / group_rate[hit]
    merged, weight, component_of = kernel.merge_rows([low, high], [low, high, row[hit].astype(np.float64)],
                                                     finishing[hit] * meets[hit], base=row[hit])
    low, high, of = merged[0], merged[1], np.round(merged[2]).astype(np.int64)
    full = rows["max_batch"][of].astype(np.float64)
    sub = {name: rows[name][of] for name in ("decode", "context", "iterations")}
    ones, zeros = np.ones(len(of)), np.zeros(len(of))
    parts = {"weight": weight, "residual": rows["tau_full"][of] / 2.0, "tpot": rows["tau_full"][of],
             **_met_batch(k, sub, full), "exp_mass": zeros, "exp_rate": zeros, "uniform_mass": ones,
             "uniform_low": low, "uniform_high": high, "kv": full * (rows["prompt"][of] + rows["output"][of])}
    return parts, component_of


def _met_batch(k, means, seen) -> dict:
    """Decode tokens and KV-read time [s] of the batch a new request meets (``seen`` requests in it)."""
    share = seen / means["iterations"]
    return {"decode_seen": share * means["decode"],
            "memory_s": (k["weight_bytes"] + k["kv_bytes_per_token"] * share * means["context"]) / k["bytes_per_s"]}


def _prefill_s(k, decode_tokens, memory_s, prompt_tokens):
    """Time [s] from admission to the first token of a prompt, in iterations shared with ``decode_tokens``
    decode tokens: chunks of the token budget left by them (one chunk without chunked prefill)."""
    room = np.maximum(k["token_budget"] - decode_tokens, 1.0)
    chunks = np.ceil(prompt_tokens / room) if k["chunked_prefill"] else np.ones_like(prompt_tokens * room)
    chunk = prompt_tokens / chunks
    tokens = decode_tokens + chunk
    attended = prompt_tokens * (prompt_tokens + 1.0) / (2.0 * chunks)  # the prompt's own; decoders' left out
    compute_s = (k["flop_per_token"] * tokens + k.get("attn_flop_per_token_ctx", 0.0) * attended) / k["flops_per_s"]
    one = (k["overhead_s"] + k.get("per_token_s", 0.0) * tokens + k.get("per_seq_s", 0.0) * decode_tokens
           + np.maximum(compute_s, memory_s))
    return chunks * one


def _expand(weight, slice_weight, shift, spread, wait) -> dict:
    """Components for every (row, length slice): weights multiply, the wait repeats per slice."""
    slices = len(slice_weight)
    return {"weight": (weight[:, None] * slice_weight[None, :]).ravel(), "shift": shift.ravel(),
            "spread": np.broadcast_to(spread, shift.shape).ravel(),
            **{name: np.repeat(values, slices) for name, values in zip(WAIT, wait)}}


def _within_slo(ttft: dict, tpot: np.ndarray, slo) -> float:
    """Expected completing requests with TTFT and TPOT within target (the component's TPOT against its
    target: TPOT is a mean per component, not a distribution)."""
    if slo is None:
        return 0.0
    return float(np.sum(_met_each(ttft, tpot, slo)))


def _met_each(ttft: dict, tpot: np.ndarray, slo) -> np.ndarray:
    """Per (component, length slice): expected completing requests within both targets (zeros without SLO)."""
    if slo is None:
        return np.zeros(len(ttft["weight"]))
    args = [ttft[name] for name in ("shift", "spread", *WAIT)]
    fast = kernel.component_cdf(slo.ttft_p99_ms / 1e3, *args)
    return ttft["weight"] * fast * (tpot <= slo.tpot_p99_ms / 1e3)
