"""Reference twin of the request-level LLM serving kernel: readable Python, arrays in, arrays out.

One *replica group* — R identical replicas of one model on one chip type — serves a request stream
with continuous batching, iteration by iteration (vLLM-style). ``serving_compiled.serve_llm`` is the
Numba version with the same signature; tests require identical per-request results.

Model, per replica:
* **Routing** on arrival: ``ROUTER_ROUND_ROBIN``, ``ROUTER_JSQ`` (fewest requests in the replica) or
  ``ROUTER_LEAST_WORK`` (fewest outstanding tokens: prompt not yet prefilled + tokens not yet
  generated); ties go to the lowest replica index. ``ROUTER_CENTRAL`` keeps one shared queue that
  replicas pull from when they start an iteration (lowest index first) — with ``max_seqs = 1`` it is
  the M/M/c discipline the tests compare with Erlang C.
* **Admission**, first come first served from the replica's queue, at the start of each iteration,
  while fewer than ``max_seqs`` requests run and the KV cache can hold the request whole: a request
  reserves ``prompt + output`` tokens of KV capacity when admitted and frees them when it finishes (a
  conservative simplification of paged allocation; no preemption). A request that could never fit
  (``prompt + output > kv_capacity_tokens``) is rejected on arrival.
* **Batch** of one iteration: one decode token for every running request whose prefill is done, then
  prefill tokens of running requests in admission order within what is left of ``token_budget``.
  With ``chunked_prefill`` a prompt may be split over iterations; without it a prompt is prefilled in
  one iteration, and one larger than the budget runs alone.
* **Iteration time** (roofline): ``overhead_s + max(compute, memory)`` with
  ``compute = flop_per_token · tokens / flops_per_s`` and
  ``memory = (weight_bytes + kv_bytes_per_token · Σ context of decoding requests) / bytes_per_s``.
  The first output token is produced by the iteration that completes the prefill; each later
  iteration produces one token per decoding request.
* **Events**: an iteration end is handled before an arrival at the same instant; among replicas, the
  lowest index first. Requests arriving at the same instant are all routed before an idle replica
  starts, so they can share its first iteration. Nothing starts after ``horizon_s``; requests not
  finished by then are unfinished.

Outputs, in order (length N unless noted): ``status`` (``DONE``, ``UNFINISHED``, ``REJECTED``, or
``NOT_OFFERED`` for requests arriving after the horizon; the first three add up to those offered),
``replica`` (-1 when never placed), ``first_token_s`` and ``finish_s`` (NaN when not reached),
``kv_peak_tokens`` (length R: the largest KV reservation ever held) and ``busy_s`` (R × bins of
``bin_width_s``: seconds each replica spent iterating in each bin, up to the horizon — for power that
follows load).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

ROUTER_ROUND_ROBIN, ROUTER_JSQ, ROUTER_LEAST_WORK, ROUTER_CENTRAL = 0, 1, 2, 3
DONE, UNFINISHED, REJECTED, NOT_OFFERED = 0, 1, 2, 3


def iteration_time_s(tokens, context_tokens, flop_per_token, flops_per_s, weight_bytes, kv_bytes_per_token,
                     bytes_per_s, overhead_s):
    """Wall time of one batched iteration [s]: ``overhead + max(compute, memory)`` (see module docstring).

    ``tokens`` are all tokens processed (prefill tokens + one per decoding request); ``context_tokens``
    the KV-cache tokens read by the decoding requests."""
    compute_s = flop_per_token * tokens / flops_per_s
    memory_s = (weight_bytes + kv_bytes_per_token * context_tokens) / bytes_per_s
    return overhead_s + max(compute_s, memory_s)


def serve_llm(arrival_s, prompt_tokens, output_tokens, n_replicas, router, token_budget, max_seqs,
              kv_capacity_tokens, chunked_prefill, flop_per_token, flops_per_s, weight_bytes,
              kv_bytes_per_token, bytes_per_s, overhead_s, horizon_s, bin_width_s):
    n = len(arrival_s)
    busy = np.zeros((n_replicas, int(math.ceil(horizon_s / bin_width_s)) + 1))
    status = np.full(n, UNFINISHED, dtype=np.int8)
    replica_of = np.full(n, -1, dtype=np.int64)
    first_token = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    kv_peak = np.zeros(n_replicas, dtype=np.int64)
    prefilled = [0] * n   # prompt tokens processed so far
    generated = [0] * n   # output tokens produced so far
    central = router == ROUTER_CENTRAL
    queues = [deque() for _ in range(n_replicas + 1)]  # the last one is the central queue
    running = [[] for _ in range(n_replicas)]       # admission order
    kv_used = [0] * n_replicas
    in_system = [0] * n_replicas
    work = [0] * n_replicas                         # outstanding tokens
    iteration_end = [math.inf] * n_replicas
    batch = [None] * n_replicas                     # (requests decoding, {request: prefill tokens})
    next_rr = 0
    i = 0
    while True:
        t_arrival = arrival_s[i] if i < n else math.inf
        r_end = min(range(n_replicas), key=lambda r: (iteration_end[r], r))
        t_end = iteration_end[r_end]
        if min(t_arrival, t_end) > horizon_s:
            break
        if t_end <= t_arrival:
            _finish_iteration(r_end, t_end, batch, running, prefilled, generated, prompt_tokens,
                              output_tokens, first_token, finish, status, kv_used, in_system, work)
            iteration_end[r_end] = math.inf
            _start_iteration(r_end, t_end, queues, running, batch, iteration_end, prefilled, generated,
                             prompt_tokens, output_tokens, kv_used, kv_peak, token_budget, max_seqs,
                             kv_capacity_tokens, chunked_prefill, flop_per_token, flops_per_s, weight_bytes,
                             kv_bytes_per_token, bytes_per_s, overhead_s, central, replica_of, in_system, work)
            if iteration_end[r_end] != math.inf:
                add_busy(busy, r_end, t_end, iteration_end[r_end], horizon_s, bin_width_s)
            continue
        woken = set()  # idle replicas that got work: they start once every arrival of this instant is in
        while i < n and arrival_s[i] == t_arrival:
            need = int(prompt_tokens[i]) + int(output_tokens[i])
            if need > kv_capacity_tokens:
                status[i] = REJECTED
            elif central:
                queues[n_replicas].append(i)
                woken.update(r for r in range(n_replicas) if iteration_end[r] == math.inf)
            else:
                if router == ROUTER_ROUND_ROBIN:
                    r = next_rr
                    next_rr = (next_rr + 1) % n_replicas
                elif router == ROUTER_JSQ:
                    r = min(range(n_replicas), key=lambda k: (in_system[k], k))
                else:
                    r = min(range(n_replicas), key=lambda k: (work[k], k))
                replica_of[i] = r
                queues[r].append(i)
                in_system[r] += 1
                work[r] += need
                if iteration_end[r] == math.inf:
                    woken.add(r)
            i += 1
        for r in sorted(woken):
            _start_iteration(r, t_arrival, queues, running, batch, iteration_end, prefilled, generated,
                             prompt_tokens, output_tokens, kv_used, kv_peak, token_budget, max_seqs,
                             kv_capacity_tokens, chunked_prefill, flop_per_token, flops_per_s, weight_bytes,
                             kv_bytes_per_token, bytes_per_s, overhead_s, central, replica_of, in_system, work)
            if iteration_end[r] != math.inf:
                add_busy(busy, r, t_arrival, iteration_end[r], horizon_s, bin_width_s)
    status[i:] = NOT_OFFERED
    return status, replica_of, first_token, finish, kv_peak, busy


def _start_iteration(r, t, queues, running, batch, iteration_end, prefilled, generated, prompt_tokens,
                     output_tokens, kv_used, kv_peak, token_budget, max_seqs, kv_capacity_tokens,
                     chunked_prefill, flop_per_token, flops_per_s, weight_bytes, kv_bytes_per_token,
                     bytes_per_s, overhead_s, central, replica_of, in_system, work):
    queue = queues[len(queues) - 1] if central else queues[r]
    while queue and len(running[r]) < max_seqs:
        head = queue[0]
        need = int(prompt_tokens[head]) + int(output_tokens[head])
        if kv_used[r] + need > kv_capacity_tokens:
            break
        queue.popleft()
        if central:  # the request meets its replica only now
            replica_of[head] = r
            in_system[r] += 1
            work[r] += need
        running[r].append(head)
        kv_used[r] += need
        kv_peak[r] = max(kv_peak[r], kv_used[r])
    decoding = [q for q in running[r] if prefilled[q] == prompt_tokens[q]]
    budget = token_budget - len(decoding)
    chunks = {}
    for q in running[r]:
        left = int(prompt_tokens[q]) - prefilled[q]
        if left == 0 or budget <= 0:
            continue
        if chunked_prefill:
            chunks[q] = min(left, budget)
        elif left <= budget or (not decoding and not chunks):
            chunks[q] = left
        else:
            continue
        budget -= chunks[q]
    if not decoding and not chunks:
        batch[r] = None
        return
    tokens = len(decoding) + sum(chunks.values())
    context = sum(int(prompt_tokens[q]) + generated[q] for q in decoding)
    iteration_end[r] = t + iteration_time_s(tokens, context, flop_per_token, flops_per_s, weight_bytes,
                                            kv_bytes_per_token, bytes_per_s, overhead_s)
    batch[r] = (decoding, chunks)


def _finish_iteration(r, t, batch, running, prefilled, generated, prompt_tokens, output_tokens, first_token,
                      finish, status, kv_used, in_system, work):
    decoding, chunks = batch[r]
    done = []
    for q in decoding:
        generated[q] += 1
        work[r] -= 1
        if generated[q] == output_tokens[q]:
            done.append(q)
    for q, tokens in chunks.items():
        prefilled[q] += tokens
        work[r] -= tokens
        if prefilled[q] == prompt_tokens[q]:
            generated[q] = 1  # the prefill iteration emits the first token
            work[r] -= 1
            first_token[q] = t
            if output_tokens[q] == 1:
                done.append(q)
    for q in done:
        finish[q] = t
        status[q] = DONE
        running[r].remove(q)
        kv_used[r] -= int(prompt_tokens[q]) + int(output_tokens[q])
        in_system[r] -= 1
    batch[r] = None


def add_busy(busy, r, start_s, end_s, horizon_s, bin_width_s):
    """Add replica ``r``'s busy interval [start, end), clipped at the horizon, to its time bins [s]."""
    a, b = start_s, min(end_s, horizon_s)
    k = int(a // bin_width_s)
    while a < b:  # k advances every pass, so rounding at bin edges cannot stall the loop
        edge = min((k + 1) * bin_width_s, b)
        if edge > a:
            busy[r, k] += edge - a
            a = edge
        k += 1


def kv_capacity_tokens(chips: int, memory_bytes_per_chip: float, weight_bytes: float, kv_bytes_per_token: float,
                       usable_frac: float = 0.9) -> int:
    """Tokens of KV cache a replica holds: memory left after the weights, over bytes per token.

    ``usable_frac`` of device memory is usable (the rest: activations, runtime, fragmentation — an
    estimate, as vLLM's default ``gpu_memory_utilization`` of 0.9). Zero or less: the model does not fit.
    """
    if kv_bytes_per_token <= 0:
        return 0
    return int((chips * memory_bytes_per_chip * usable_frac - weight_bytes) // kv_bytes_per_token)
