"""Numba version of ``serving_reference.serve_llm`` (same signature, same per-request results).

Queues are linked lists over request indices, running sets are fixed-width rows per replica (admission
order kept by shifting on removal), and the batch of an iteration is remembered per request
(``chunk`` prefill tokens, ``decoding`` flag) — arrays only, no Python objects.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.kernels.serving_reference import (
    DONE,
    NOT_OFFERED,
    REJECTED,
    ROUTER_JSQ,
    ROUTER_ROUND_ROBIN,
    UNFINISHED,
)


@njit(cache=True)
def serve_llm(arrival_s, prompt_tokens, output_tokens, n_replicas, router, token_budget, max_seqs,
              kv_capacity_tokens, chunked_prefill, flop_per_token, flops_per_s, weight_bytes,
              kv_bytes_per_token, bytes_per_s, overhead_s, horizon_s):
    n = arrival_s.shape[0]
    status = np.full(n, UNFINISHED, dtype=np.int8)
    replica_of = np.full(n, -1, dtype=np.int64)
    first_token = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    kv_peak = np.zeros(n_replicas, dtype=np.int64)
    prefilled = np.zeros(n, dtype=np.int64)
    generated = np.zeros(n, dtype=np.int64)
    chunk = np.zeros(n, dtype=np.int64)
    decoding = np.zeros(n, dtype=np.bool_)
    queue_next = np.full(n, -1, dtype=np.int64)
    queue_head = np.full(n_replicas, -1, dtype=np.int64)
    queue_tail = np.full(n_replicas, -1, dtype=np.int64)
    running = np.zeros((n_replicas, max_seqs), dtype=np.int64)
    n_running = np.zeros(n_replicas, dtype=np.int64)
    kv_used = np.zeros(n_replicas, dtype=np.int64)
    in_system = np.zeros(n_replicas, dtype=np.int64)
    work = np.zeros(n_replicas, dtype=np.int64)
    iteration_end = np.full(n_replicas, np.inf)
    busy = np.zeros(n_replicas, dtype=np.bool_)
    woken = np.zeros(n_replicas, dtype=np.bool_)
    next_rr = 0
    i = 0
    while True:
        t_arrival = arrival_s[i] if i < n else np.inf
        r_end = 0
        for r in range(1, n_replicas):
            if iteration_end[r] < iteration_end[r_end]:
                r_end = r
        t_end = iteration_end[r_end]
        if min(t_arrival, t_end) > horizon_s:
            break
        if t_end <= t_arrival:
            r = r_end
            # finish the iteration: decode tokens first, then prefill chunks, in admission order
            for k in range(n_running[r]):
                q = running[r, k]
                if decoding[q]:
                    generated[q] += 1
                    work[r] -= 1
                    if generated[q] == output_tokens[q]:
                        status[q] = DONE
            for k in range(n_running[r]):
                q = running[r, k]
                if chunk[q] > 0:
                    prefilled[q] += chunk[q]
                    work[r] -= chunk[q]
                    if prefilled[q] == prompt_tokens[q]:
                        generated[q] = 1
                        work[r] -= 1
                        first_token[q] = t_end
                        if output_tokens[q] == 1:
                            status[q] = DONE
            kept = 0
            for k in range(n_running[r]):
                q = running[r, k]
                chunk[q] = 0
                decoding[q] = False
                if status[q] == DONE:
                    finish[q] = t_end
                    kv_used[r] -= prompt_tokens[q] + output_tokens[q]
                    in_system[r] -= 1
                else:
                    running[r, kept] = q
                    kept += 1
            n_running[r] = kept
            iteration_end[r] = np.inf
            busy[r] = False
            _start(r, t_end, queue_head, queue_tail, queue_next, running, n_running, prefilled, generated,
                   prompt_tokens, output_tokens, chunk, decoding, kv_used, kv_peak, iteration_end, busy,
                   token_budget, max_seqs, kv_capacity_tokens, chunked_prefill, flop_per_token, flops_per_s,
                   weight_bytes, kv_bytes_per_token, bytes_per_s, overhead_s)
            continue
        any_woken = False
        while i < n and arrival_s[i] == t_arrival:
            need = prompt_tokens[i] + output_tokens[i]
            if need > kv_capacity_tokens:
                status[i] = REJECTED
            else:
                if router == ROUTER_ROUND_ROBIN:
                    r = next_rr
                    next_rr = (next_rr + 1) % n_replicas
                elif router == ROUTER_JSQ:
                    r = 0
                    for k in range(1, n_replicas):
                        if in_system[k] < in_system[r]:
                            r = k
                else:
                    r = 0
                    for k in range(1, n_replicas):
                        if work[k] < work[r]:
                            r = k
                replica_of[i] = r
                if queue_tail[r] < 0:
                    queue_head[r] = i
                else:
                    queue_next[queue_tail[r]] = i
                queue_tail[r] = i
                in_system[r] += 1
                work[r] += need
                if not busy[r]:
                    woken[r] = True
                    any_woken = True
            i += 1
        if any_woken:
            for r in range(n_replicas):
                if woken[r]:
                    woken[r] = False
                    _start(r, t_arrival, queue_head, queue_tail, queue_next, running, n_running, prefilled,
                           generated, prompt_tokens, output_tokens, chunk, decoding, kv_used, kv_peak,
                           iteration_end, busy, token_budget, max_seqs, kv_capacity_tokens, chunked_prefill,
                           flop_per_token, flops_per_s, weight_bytes, kv_bytes_per_token, bytes_per_s, overhead_s)
    for j in range(i, n):
        status[j] = NOT_OFFERED
    return status, replica_of, first_token, finish, kv_peak


@njit(cache=True)
def _start(r, t, queue_head, queue_tail, queue_next, running, n_running, prefilled, generated, prompt_tokens,
           output_tokens, chunk, decoding, kv_used, kv_peak, iteration_end, busy, token_budget, max_seqs,
           kv_capacity_tokens, chunked_prefill, flop_per_token, flops_per_s, weight_bytes, kv_bytes_per_token,
           bytes_per_s, overhead_s):
    while queue_head[r] >= 0 and n_running[r] < max_seqs:
        head = queue_head[r]
        need = prompt_tokens[head] + output_tokens[head]
        if kv_used[r] + need > kv_capacity_tokens:
            break
        queue_head[r] = queue_next[head]
        if queue_head[r] < 0:
            queue_tail[r] = -1
        running[r, n_running[r]] = head
        n_running[r] += 1
        kv_used[r] += need
        if kv_used[r] > kv_peak[r]:
            kv_peak[r] = kv_used[r]
    n_decoding = 0
    context = 0
    for k in range(n_running[r]):
        q = running[r, k]
        if prefilled[q] == prompt_tokens[q]:
            decoding[q] = True
            n_decoding += 1
            context += prompt_tokens[q] + generated[q]
    budget = token_budget - n_decoding
    prefill_tokens = 0
    n_chunks = 0
    for k in range(n_running[r]):
        q = running[r, k]
        left = prompt_tokens[q] - prefilled[q]
        if left == 0 or budget <= 0:
            continue
        if chunked_prefill:
            take = min(left, budget)
        elif left <= budget or (n_decoding == 0 and n_chunks == 0):
            take = left
        else:
            continue
        chunk[q] = take
        n_chunks += 1
        prefill_tokens += take
        budget -= take
    if n_decoding == 0 and n_chunks == 0:
        return
    tokens = n_decoding + prefill_tokens
    compute_s = flop_per_token * tokens / flops_per_s
    memory_s = (weight_bytes + kv_bytes_per_token * context) / bytes_per_s
    iteration_end[r] = t + overhead_s + max(compute_s, memory_s)
    busy[r] = True
