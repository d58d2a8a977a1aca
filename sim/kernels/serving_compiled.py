"""Numba version of ``serving_reference.serve_llm`` (same signature, same per-request results).

The reference re-scans every running request at every iteration; this version does O(1) work per
decoding request per iteration *in aggregate*, which is what makes token-level simulation of millions
of requests fast:

* all decoding requests of a replica advance one token per iteration in lockstep, so the replica keeps
  only their count and the sum of their contexts, and each request's finishing iteration is known
  when it starts decoding (``first decode iteration + output - 2``): a per-replica min-heap of
  finishing iterations replaces the scan;
* requests still prefilling sit in a short per-replica list in admission order;
* queues are linked lists over request indices;
* the next replica to finish an iteration is the root of a tournament tree over the replicas
  (O(log R) per change instead of a scan of all R). Arrays only, no Python objects.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.kernels.serving_reference import (
    DONE,
    F_ATTN_FLOP_PER_TOKEN_CTX,
    F_BYTES_PER_S,
    F_FLOP_PER_TOKEN,
    F_FLOPS_PER_S,
    F_KV_BYTES_PER_TOKEN,
    F_MEMORY_ACTIVITY,
    F_OVERHEAD_S,
    F_PER_SEQ_S,
    F_PER_TOKEN_S,
    F_TOKENS_PER_S,
    F_USD_PER_TOKEN,
    F_WEIGHT_BYTES,
    I_CHUNKED,
    I_KV_CAPACITY,
    I_MAX_SEQS,
    I_TOKEN_BUDGET,
    NOT_OFFERED,
    RECENT_WEIGHT,
    REJECTED,
    ROUTER_CENTRAL,
    ROUTER_JSQ,
    ROUTER_LEAST_WORK,
    ROUTER_ROUND_ROBIN,
    ROUTER_SLO_AWARE,
    SWITCH_FAIL,
    SWITCH_GONE,
    SWITCH_ON,
    UNFINISHED,
)


@njit(cache=True)
def serve_llm(arrival_s, prompt_tokens, output_tokens, replica_int, replica_float, router, slo_ttft_s, slo_tpot_s,
              switch_s, switch_replica, switch_on, horizon_s, bin_width_s):
    n = arrival_s.shape[0]
    n_replicas = replica_int.shape[0]
    n_switches = switch_s.shape[0]
    busy_s = np.zeros((n_replicas, int(np.ceil(horizon_s / bin_width_s)) + 1))
    energy_s = np.zeros(busy_s.shape)
    status = np.full(n, UNFINISHED, dtype=np.int8)
    replica_of = np.full(n, -1, dtype=np.int64)
    first_token = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    kv_peak = np.zeros(n_replicas, dtype=np.int64)
    batch_seq_s = np.zeros(n_replicas)
    kv_token_s = np.zeros(n_replicas)
    prefilled = np.zeros(n, dtype=np.int64)
    chunk = np.zeros(n, dtype=np.int64)
    queue_next = np.full(n, -1, dtype=np.int64)
    central = router == ROUTER_CENTRAL
    max_seqs = 1
    max_capacity = 0
    min_capacity = replica_int[0, I_KV_CAPACITY] if n_replicas else 0
    seconds_per_token = np.empty(n_replicas)  # least-work's weight: 1 / nominal token rate
    for r in range(n_replicas):
        max_seqs = max(max_seqs, replica_int[r, I_MAX_SEQS])
        max_capacity = max(max_capacity, replica_int[r, I_KV_CAPACITY])
        min_capacity = min(min_capacity, replica_int[r, I_KV_CAPACITY])
        seconds_per_token[r] = 1.0 / replica_float[r, F_TOKENS_PER_S]
    n_active = n_replicas
    queue_head = np.full(n_replicas + 1, -1, dtype=np.int64)  # the last one is the central queue
    queue_tail = np.full(n_replicas + 1, -1, dtype=np.int64)
    prefilling = np.zeros((n_replicas, max_seqs), dtype=np.int64)  # admission order
    n_prefilling = np.zeros(n_replicas, dtype=np.int64)
    heap_key = np.zeros((n_replicas, max_seqs), dtype=np.int64)   # finishing iteration of a decoder
    heap_req = np.zeros((n_replicas, max_seqs), dtype=np.int64)
    n_decoding = np.zeros(n_replicas, dtype=np.int64)             # heap size
    context = np.zeros(n_replicas, dtype=np.int64)                # Σ (prompt + generated) of decoders
    iteration = np.zeros(n_replicas, dtype=np.int64)              # index of the iteration in flight
    kv_used = np.zeros(n_replicas, dtype=np.int64)
    in_system = np.zeros(n_replicas, dtype=np.int64)
    work = np.zeros(n_replicas, dtype=np.int64)
    pending_prefill = np.zeros(n_replicas, dtype=np.int64)
    leaves = 1
    while leaves < n_replicas:
        leaves *= 2
    iteration_end = np.full(leaves, np.inf)  # padded to a power of two for the tournament tree
    tree = np.zeros(2 * leaves, dtype=np.int64)  # tree[1] is the replica whose iteration ends first
    for r in range(leaves):
        tree[leaves + r] = r
    for node in range(leaves - 1, 0, -1):
        tree[node] = tree[2 * node]
    iteration_s = np.zeros(n_replicas)  # moving average of iteration lengths (slo-aware's TPOT)
    busy = np.zeros(n_replicas, dtype=np.bool_)
    active = np.ones(n_replicas, dtype=np.bool_)
    present = np.ones(n_replicas, dtype=np.bool_)  # not gone (outside its group's window)
    n_gone = 0
    woken = np.zeros(n_replicas, dtype=np.bool_)
    hit = np.zeros(n, dtype=np.int64)  # replica failures that struck each request
    victims = np.zeros(n, dtype=np.int64)
    next_rr = 0
    i = 0
    k_switch = 0
    while True:
        t_arrival = arrival_s[i] if i < n else np.inf
        t_switch = switch_s[k_switch] if k_switch < n_switches else np.inf
        r_end = tree[1]
        t_end = iteration_end[r_end]
        if min(min(t_arrival, t_end), t_switch) > horizon_s:
            break
        if t_end <= t_arrival and t_end <= t_switch:
            r = r_end
            k = iteration[r]
            # decoders: one token each; those reaching their output length finish now
            work[r] -= n_decoding[r]
            context[r] += n_decoding[r]
            while n_decoding[r] > 0 and heap_key[r, 0] == k:
                q = heap_req[r, 0]
                _heap_pop(heap_key, heap_req, n_decoding, r)
                status[q] = DONE
                finish[q] = t_end
                context[r] -= prompt_tokens[q] + output_tokens[q]
                kv_used[r] -= prompt_tokens[q] + output_tokens[q]
                in_system[r] -= 1
            # prefill chunks, in admission order; a finished prefill emits the first token
            kept = 0
            for j in range(n_prefilling[r]):
                q = prefilling[r, j]
                if chunk[q] > 0:
                    prefilled[q] += chunk[q]
                    work[r] -= chunk[q]
                    pending_prefill[r] -= chunk[q]
                    chunk[q] = 0
                    if prefilled[q] == prompt_tokens[q]:
                        work[r] -= 1
                        first_token[q] = t_end
                        if output_tokens[q] == 1:
                            status[q] = DONE
                            finish[q] = t_end
                            kv_used[r] -= prompt_tokens[q] + output_tokens[q]
                            in_system[r] -= 1
                        else:
                            context[r] += prompt_tokens[q] + 1
                            _heap_push(heap_key, heap_req, n_decoding, r, k + output_tokens[q] - 1, q)
                        continue
                prefilling[r, kept] = q
                kept += 1
            n_prefilling[r] = kept
            iteration_end[r] = np.inf
            busy[r] = False
            activity = _start(r, t_end, queue_head, queue_tail, queue_next, prefilling, n_prefilling, n_decoding,
                              context, iteration, prefilled, prompt_tokens, output_tokens, chunk, kv_used, kv_peak,
                              iteration_end, busy, replica_int, replica_float, central, active, replica_of, in_system,
                              work, pending_prefill, iteration_s)
            if busy[r]:
                _add_busy(busy_s, energy_s, activity, r, t_end, iteration_end[r], horizon_s,
                          bin_width_s)
                _add_occupancy(batch_seq_s, kv_token_s, r, t_end, iteration_end[r], horizon_s,
                               n_prefilling[r] + n_decoding[r], kv_used[r])
            _tree_update(tree, leaves, iteration_end, r)
            continue
        if t_switch <= t_arrival:
            r = switch_replica[k_switch]
            code = int(switch_on[k_switch])
            gone = code == SWITCH_GONE or code == SWITCH_FAIL
            n_active += int(code == SWITCH_ON) - int(active[r])
            n_gone += int(gone) - int(not present[r])
            active[r] = code == SWITCH_ON
            present[r] = not gone
            k_switch += 1
            if code == SWITCH_FAIL:  # empty the replica; its requests are routed again (serving_reference)
                count = 0
                for j in range(n_prefilling[r]):
                    victims[count] = prefilling[r, j]
                    count += 1
                for j in range(n_decoding[r]):
                    victims[count] = heap_req[r, j]
                    count += 1
                q = queue_head[r] if not central else -1
                while q >= 0:
                    victims[count] = q
                    count += 1
                    q = -1 if q == queue_tail[r] else queue_next[q]
                queue_head[r] = -1
                queue_tail[r] = -1
                n_prefilling[r] = 0
                n_decoding[r] = 0
                context[r] = 0
                kv_used[r] = 0
                in_system[r] = 0
                work[r] = 0
                pending_prefill[r] = 0
                iteration_end[r] = np.inf
                busy[r] = False
                _tree_update(tree, leaves, iteration_end, r)
                lost = np.sort(victims[:count])
                for j in range(count):
                    q = lost[j]
                    hit[q] += 1
                    prefilled[q] = 0
                    chunk[q] = 0
                    first_token[q] = np.nan
                    replica_of[q] = -1
                    need = prompt_tokens[q] + output_tokens[q]
                    if need > max_capacity or (n_gone > 0 and not _any_present(need, present, replica_int)):
                        status[q] = REJECTED
                        continue
                    target = n_replicas
                    if not central:
                        target, next_rr = _route(router, need, prompt_tokens[q], next_rr, active, present,
                                                 replica_int, replica_float, in_system, work, seconds_per_token,
                                                 pending_prefill, n_decoding, context, busy, iteration_s, slo_ttft_s,
                                                 slo_tpot_s)
                        replica_of[q] = target
                        in_system[target] += 1
                        work[target] += need
                        pending_prefill[target] += prompt_tokens[q]
                    _insert_sorted(queue_head, queue_tail, queue_next, target, q)
                    for m in range(n_replicas):
                        if not busy[m] and (central or m == target):
                            woken[m] = True
                for m in range(n_replicas):
                    if woken[m]:
                        woken[m] = False
                        activity = _start(m, t_switch, queue_head, queue_tail, queue_next, prefilling, n_prefilling,
                                          n_decoding, context, iteration, prefilled, prompt_tokens, output_tokens,
                                          chunk, kv_used, kv_peak, iteration_end, busy, replica_int, replica_float,
                                          central, active, replica_of, in_system, work, pending_prefill, iteration_s)
                        if busy[m]:
                            _add_busy(busy_s, energy_s, activity, m, t_switch, iteration_end[m], horizon_s,
                                      bin_width_s)
                            _add_occupancy(batch_seq_s, kv_token_s, m, t_switch, iteration_end[m], horizon_s,
                                           n_prefilling[m] + n_decoding[m], kv_used[m])
                            _tree_update(tree, leaves, iteration_end, m)
            if not busy[r]:
                activity = _start(r, t_switch, queue_head, queue_tail, queue_next, prefilling, n_prefilling,
                                  n_decoding, context, iteration, prefilled, prompt_tokens, output_tokens, chunk,
                                  kv_used, kv_peak, iteration_end, busy, replica_int, replica_float, central, active,
                                  replica_of, in_system, work, pending_prefill, iteration_s)
                if busy[r]:
                    _add_busy(busy_s, energy_s, activity, r, t_switch, iteration_end[r], horizon_s,
                              bin_width_s)
                    _add_occupancy(batch_seq_s, kv_token_s, r, t_switch, iteration_end[r], horizon_s,
                                   n_prefilling[r] + n_decoding[r], kv_used[r])
                    _tree_update(tree, leaves, iteration_end, r)
            continue
        any_woken = False
        while i < n and arrival_s[i] == t_arrival:
            need = prompt_tokens[i] + output_tokens[i]
            if need > max_capacity or (n_gone > 0 and not _any_present(need, present, replica_int)):
                status[i] = REJECTED
            elif central:
                if queue_tail[n_replicas] < 0:
                    queue_head[n_replicas] = i
                else:
                    queue_next[queue_tail[n_replicas]] = i
                queue_tail[n_replicas] = i
                for m in range(n_replicas):
                    if not busy[m]:
                        woken[m] = True
                        any_woken = True
            else:
                if router == ROUTER_LEAST_WORK and n_active == n_replicas and need <= min_capacity:
                    # the common case, kept tight: every replica is a candidate
                    r = 0
                    best = work[0] * seconds_per_token[0]
                    for m in range(1, n_replicas):
                        key = work[m] * seconds_per_token[m]
                        if key < best:
                            r = m
                            best = key
                elif router == ROUTER_LEAST_WORK and n_active > 0 and need <= min_capacity:
                    # some replicas inactive or gone (autoscaling, windows): the same scan over the active ones
                    r = -1
                    best = 0.0
                    for m in range(n_replicas):
                        if active[m]:
                            key = work[m] * seconds_per_token[m]
                            if r < 0 or key < best:
                                r = m
                                best = key
                else:
                    r, next_rr = _route(router, need, prompt_tokens[i], next_rr, active, present, replica_int,
                                        replica_float, in_system, work, seconds_per_token, pending_prefill,
                                        n_decoding, context, busy, iteration_s, slo_ttft_s, slo_tpot_s)
                replica_of[i] = r
                if queue_tail[r] < 0:
                    queue_head[r] = i
                else:
                    queue_next[queue_tail[r]] = i
                queue_tail[r] = i
                in_system[r] += 1
                work[r] += need
                pending_prefill[r] += prompt_tokens[i]
                if not busy[r]:
                    woken[r] = True
                    any_woken = True
            i += 1
        if any_woken:
            for r in range(n_replicas):
                if woken[r]:
                    woken[r] = False
                    activity = _start(r, t_arrival, queue_head, queue_tail, queue_next, prefilling, n_prefilling,
                                      n_decoding, context, iteration, prefilled, prompt_tokens, output_tokens, chunk,
                                      kv_used, kv_peak, iteration_end, busy, replica_int, replica_float, central,
                                      active, replica_of, in_system, work, pending_prefill, iteration_s)
                    if busy[r]:
                        _add_busy(busy_s, energy_s, activity, r, t_arrival, iteration_end[r], horizon_s,
                                  bin_width_s)
                        _add_occupancy(batch_seq_s, kv_token_s, r, t_arrival, iteration_end[r], horizon_s,
                                       n_prefilling[r] + n_decoding[r], kv_used[r])
                        _tree_update(tree, leaves, iteration_end, r)
    for j in range(i, n):
        status[j] = NOT_OFFERED
    return status, replica_of, first_token, finish, kv_peak, busy_s, batch_seq_s, kv_token_s, hit, energy_s


@njit(cache=True)
def _insert_sorted(queue_head, queue_tail, queue_next, queue, q):
    """Put request ``q`` into linked-list ``queue`` in index (arrival) order (serving_reference._enqueue)."""
    tail = queue_tail[queue]
    if tail < 0:
        queue_head[queue] = q
        queue_tail[queue] = q
        queue_next[q] = -1
        return
    if tail < q:
        queue_next[tail] = q
        queue_tail[queue] = q
        queue_next[q] = -1
        return
    head = queue_head[queue]
    if q < head:
        queue_next[q] = head
        queue_head[queue] = q
        return
    before = head
    while queue_next[before] >= 0 and queue_next[before] < q:
        before = queue_next[before]
    queue_next[q] = queue_next[before]
    queue_next[before] = q


@njit(cache=True)
def _any_present(need, present, replica_int):
    """Whether a replica that is not gone can hold ``need`` KV tokens (else the request is rejected)."""
    for m in range(replica_int.shape[0]):
        if present[m] and need <= replica_int[m, I_KV_CAPACITY]:
            return True
    return False


@njit(cache=True)
def _route(router, need, prompt, next_rr, active, present, replica_int, replica_float, in_system, work,
           seconds_per_token, pending_prefill, n_decoding, context, busy, iteration_s, slo_ttft_s, slo_tpot_s):
    """The replica a request goes to, among active replicas that can hold it (any not gone that can, if none
    is active), and the next round-robin position (as serving_reference's arrival branch); the caller has
    checked that some replica not gone can hold it."""
    n_replicas = replica_int.shape[0]
    only_active = False  # whether some active replica can hold the request
    for m in range(n_replicas):
        if active[m] and need <= replica_int[m, I_KV_CAPACITY]:
            only_active = True
            break
    if router == ROUTER_SLO_AWARE:
        r = _slo_aware(prompt, need, only_active, active, present, replica_int, replica_float, pending_prefill,
                       n_decoding, context, busy, iteration_s, slo_ttft_s, slo_tpot_s)
        return r, next_rr
    r = -1
    for step in range(n_replicas):
        m = (next_rr + step) % n_replicas if router == ROUTER_ROUND_ROBIN else step
        if need > replica_int[m, I_KV_CAPACITY] or (only_active and not active[m]) or not present[m]:
            continue
        if r < 0:
            r = m
            if router == ROUTER_ROUND_ROBIN:
                break
        elif router == ROUTER_JSQ:
            if in_system[m] < in_system[r]:
                r = m
        elif work[m] * seconds_per_token[m] < work[r] * seconds_per_token[r]:
            r = m
    if router == ROUTER_ROUND_ROBIN:
        next_rr = (r + 1) % n_replicas
    return r, next_rr


@njit(cache=True)
def _iteration_time_s(tokens, decoders, context_tokens, attended_tokens, replica_float, r):
    compute_s = (replica_float[r, F_FLOP_PER_TOKEN] * tokens
                 + replica_float[r, F_ATTN_FLOP_PER_TOKEN_CTX] * attended_tokens) / replica_float[r, F_FLOPS_PER_S]
    memory_s = (replica_float[r, F_WEIGHT_BYTES] + replica_float[r, F_KV_BYTES_PER_TOKEN] * context_tokens) \
        / replica_float[r, F_BYTES_PER_S]
    return (replica_float[r, F_OVERHEAD_S] + replica_float[r, F_PER_TOKEN_S] * tokens
            + replica_float[r, F_PER_SEQ_S] * decoders + max(compute_s, memory_s))


@njit(cache=True)
def _slo_aware(prompt, need, only_active, active, present, replica_int, replica_float, pending_prefill, n_decoding,
               context, busy, iteration_s, slo_ttft_s, slo_tpot_s):
    """As serving_reference._slo_aware: cheapest replica predicted to meet both SLOs, else the fastest TTFT."""
    best = -1
    best_usd = 0.0
    best_ttft = 0.0
    fastest = -1
    fastest_ttft = 0.0
    for r in range(replica_int.shape[0]):
        if need > replica_int[r, I_KV_CAPACITY] or (only_active and not active[r]) or not present[r]:
            continue
        pending = pending_prefill[r] + prompt
        budget = replica_int[r, I_TOKEN_BUDGET]
        n_iter = -(-pending // budget)
        chunk = pending / n_iter
        ttft = n_iter * _iteration_time_s(n_decoding[r] + chunk, n_decoding[r], context[r],
                                          context[r] + chunk * (chunk + 1) / 2, replica_float, r)
        tpot = _iteration_time_s(n_decoding[r] + 1, n_decoding[r] + 1, context[r] + prompt, context[r] + prompt,
                                 replica_float, r)
        if busy[r] and iteration_s[r] > tpot:
            tpot = iteration_s[r]
        if fastest < 0 or ttft < fastest_ttft:
            fastest = r
            fastest_ttft = ttft
        if ttft <= slo_ttft_s and tpot <= slo_tpot_s:
            usd = replica_float[r, F_USD_PER_TOKEN]
            if best < 0 or usd < best_usd or (usd == best_usd and ttft < best_ttft):
                best = r
                best_usd = usd
                best_ttft = ttft
    return best if best >= 0 else fastest


@njit(cache=True)
def _start(r, t, queue_head, queue_tail, queue_next, prefilling, n_prefilling, n_decoding, context, iteration,
           prefilled, prompt_tokens, output_tokens, chunk, kv_used, kv_peak, iteration_end, busy, replica_int,
           replica_float, central, active, replica_of, in_system, work, pending_prefill, iteration_s):
    """Start replica ``r``'s next iteration at ``t`` if it has work (``busy[r]`` tells); returns that iteration's
    power activity (``serving_reference.iteration_activity``; 0 when none starts), returned rather than kept per
    replica since only the caller's ``_add_busy`` reads it."""
    token_budget = replica_int[r, I_TOKEN_BUDGET]
    max_seqs = replica_int[r, I_MAX_SEQS]
    kv_capacity_tokens = replica_int[r, I_KV_CAPACITY]
    chunked_prefill = replica_int[r, I_CHUNKED] != 0
    source = queue_head.shape[0] - 1 if central else r
    pull = active[r] or not central
    while pull and queue_head[source] >= 0 and n_prefilling[r] + n_decoding[r] < max_seqs:
        head = queue_head[source]
        need = prompt_tokens[head] + output_tokens[head]
        if kv_used[r] + need > kv_capacity_tokens:
            break
        queue_head[source] = queue_next[head]
        if queue_head[source] < 0:
            queue_tail[source] = -1
        if central:  # the request meets its replica only now
            replica_of[head] = r
            in_system[r] += 1
            work[r] += need
            pending_prefill[r] += prompt_tokens[head]
        prefilling[r, n_prefilling[r]] = head
        n_prefilling[r] += 1
        kv_used[r] += need
        if kv_used[r] > kv_peak[r]:
            kv_peak[r] = kv_used[r]
    decoders = n_decoding[r]
    budget = token_budget - decoders
    prefill_tokens = 0
    attended = context[r]
    n_chunks = 0
    for j in range(n_prefilling[r]):
        q = prefilling[r, j]
        left = prompt_tokens[q] - prefilled[q]
        if budget <= 0:
            break
        if chunked_prefill:
            take = min(left, budget)
        elif left <= budget or (decoders == 0 and n_chunks == 0):
            take = left
        else:
            continue
        chunk[q] = take
        attended += take * prefilled[q] + take * (take + 1) // 2
        n_chunks += 1
        prefill_tokens += take
        budget -= take
    if decoders == 0 and n_chunks == 0:
        return 0.0
    length = _iteration_time_s(decoders + prefill_tokens, decoders, context[r], attended, replica_float, r)
    compute_s = (replica_float[r, F_FLOP_PER_TOKEN] * (decoders + prefill_tokens)
                 + replica_float[r, F_ATTN_FLOP_PER_TOKEN_CTX] * attended) / replica_float[r, F_FLOPS_PER_S]
    share = min(1.0, compute_s / length) if length > 0 else 1.0
    if iteration_s[r] == 0.0:
        iteration_s[r] = length
    else:
        iteration_s[r] = iteration_s[r] + RECENT_WEIGHT * (length - iteration_s[r])
    iteration_end[r] = t + length
    iteration[r] += 1
    busy[r] = True
    return share + (1.0 - share) * replica_float[r, F_MEMORY_ACTIVITY]


@njit(cache=True)
def _tree_update(tree, leaves, iteration_end, r):
    """Replay the tournament from leaf ``r`` to the root after ``iteration_end[r]`` changed (ties: lower index)."""
    node = (leaves + r) // 2
    while node >= 1:
        a = tree[2 * node]
        b = tree[2 * node + 1]
        tree[node] = a if iteration_end[a] <= iteration_end[b] else b
        node //= 2


@njit(cache=True)
def _heap_push(key, req, size, r, k, q):
    j = size[r]
    size[r] += 1
    while j > 0:
        parent = (j - 1) // 2
        if key[r, parent] <= k:
            break
        key[r, j] = key[r, parent]
        req[r, j] = req[r, parent]
        j = parent
    key[r, j] = k
    req[r, j] = q


@njit(cache=True)
def _heap_pop(key, req, size, r):
    size[r] -= 1
    last = size[r]
    k, q = key[r, last], req[r, last]
    j = 0
    while True:
        child = 2 * j + 1
        if child >= last:
            break
        if child + 1 < last and key[r, child + 1] < key[r, child]:
            child += 1
        if key[r, child] >= k:
            break
        key[r, j] = key[r, child]
        req[r, j] = req[r, child]
        j = child
    key[r, j] = k
    req[r, j] = q


@njit(cache=True)
def _add_busy(busy_s, energy_s, activity, r, start_s, end_s, horizon_s, bin_width_s):
    a = start_s
    b = min(end_s, horizon_s)
    k = int(a // bin_width_s)
    while a < b:
        edge = min((k + 1) * bin_width_s, b)
        if edge > a:
            busy_s[r, k] += edge - a
            energy_s[r, k] += (edge - a) * activity
            a = edge
        k += 1


@njit(cache=True)
def _add_occupancy(batch_seq_s, kv_token_s, r, start_s, end_s, horizon_s, running, kv_used):
    span = min(end_s, horizon_s) - start_s
    if span > 0:
        batch_seq_s[r] += running * span
        kv_token_s[r] += kv_used * span
