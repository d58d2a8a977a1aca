"""Numba version of ``ranking_reference.serve_ranking`` (same signature, same results, failures included).

Queues are linked lists over request indices (one per replica plus the central one) with their request
and item counts kept alongside, and the batch in service is a row of a (replicas × largest max_batch)
array, so the event loop touches arrays only. Each replica's batching deadline is kept in an array and
refreshed only where it can change (its own queue or state; every replica when the central queue's head
changes), so an event costs one O(R) scan of two arrays for the next batch end and deadline. Callers test a
replica's batching rule (``_ready``) before calling ``_try_start``: most calls would start nothing, and its long
argument list costs more than the test. A batch's compute share is not kept: a failure recomputes it from the
batch in flight (same numbers).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.kernels.serving_compiled import _add_busy
from sim.kernels.serving_reference import (
    DONE,
    NOT_OFFERED,
    REJECTED,
    ROUTER_CENTRAL,
    ROUTER_JSQ,
    ROUTER_LEAST_WORK,
    ROUTER_ROUND_ROBIN,
    UNFINISHED,
)


@njit(cache=True)
def serve_ranking(arrival_s, items, router, slo_s, overhead_s, compute_s_per_item, weights_s,
                  embedding_s_per_item, max_batch, max_delay_s, max_items, cost_per_s, active_from_s, active_until_s,
                  fail_s, back_s, fail_replica, horizon_s, bin_width_s):
    n = arrival_s.shape[0]
    n_rep = overhead_s.shape[0]
    n_fail = fail_s.shape[0]
    f = 0
    up = np.ones(n_rep, dtype=np.bool_)
    back_at = np.full(n_rep, np.inf)
    hit = np.zeros(n, dtype=np.int64)
    displaced = np.zeros(n if n_fail > 0 else 0, dtype=np.int64)
    busy = np.zeros((n_rep, int(np.ceil(horizon_s / bin_width_s)) + 1))
    compute = np.zeros(busy.shape)  # busy seconds × the batch's compute share (ranking_reference)
    batches = np.zeros(n_rep, dtype=np.int64)
    status = np.full(n, UNFINISHED, dtype=np.int8)
    replica_of = np.full(n, -1, dtype=np.int64)
    finish = np.full(n, np.nan)
    central = router == ROUTER_CENTRAL
    queue_head = np.full(n_rep + 1, -1, dtype=np.int64)
    queue_tail = np.full(n_rep + 1, -1, dtype=np.int64)
    queue_next = np.full(n, -1, dtype=np.int64)
    queued = np.zeros(n_rep + 1, dtype=np.int64)
    queued_items = np.zeros(n_rep + 1, dtype=np.int64)
    in_system = np.zeros(n_rep, dtype=np.int64)
    batch_end = np.full(n_rep, np.inf)
    running = np.zeros((n_rep, max_batch.max()), dtype=np.int64)
    n_running = np.zeros(n_rep, dtype=np.int64)
    woken = np.zeros(n_rep, dtype=np.bool_)
    work = np.zeros(n_rep)
    deadline = np.full(n_rep, np.inf)
    largest = max_items.max()
    next_rr = 0
    rr = np.zeros(1, dtype=np.int64)  # next_rr for _route
    i = 0
    t_last = 0.0  # the last event's time: a batching deadline already past is due now, not back then
    while True:
        t_arrival = arrival_s[i] if i < n else np.inf
        r_end = 0
        r_due = 0
        due = np.inf
        for r in range(n_rep):
            if batch_end[r] < batch_end[r_end]:
                r_end = r
            if deadline[r] < due:
                due = deadline[r]
                r_due = r
        if due < t_last:
            due = t_last
        t = min(t_arrival, batch_end[r_end], due)
        t_fail = np.inf
        r_back = 0
        if n_fail > 0:
            t_fail = fail_s[f] if f < n_fail else np.inf
            for r in range(n_rep):
                if back_at[r] < back_at[r_back]:
                    r_back = r
            t = min(t, t_fail, back_at[r_back])
        if t > horizon_s:
            break
        t_last = t
        if batch_end[r_end] == t:
            r = r_end
            for j in range(n_running[r]):
                status[running[r, j]] = DONE
                finish[running[r, j]] = t
            in_system[r] -= n_running[r]
            n_running[r] = 0
            batch_end[r] = np.inf
            if _ready(r, t, n_rep if central else r, queue_head, queued, queued_items, arrival_s, max_batch,
                      max_delay_s, max_items):
                _try_start(r, t, queue_head, queue_tail, queue_next, queued, queued_items, running, n_running,
                           batch_end, batches, busy, compute, replica_of, in_system, arrival_s, items, overhead_s,
                           compute_s_per_item, weights_s, embedding_s_per_item, max_batch, max_items, central,
                           horizon_s, bin_width_s)
            _refresh(r, deadline, queue_head, arrival_s, items, max_delay_s, max_items, batch_end, central, up)
            continue
        if t_fail == t:
            r = fail_replica[f]
            up[r] = False
            back_at[r] = back_s[f]
            f += 1
            n_displaced = 0
            total = 0
            for j in range(n_running[r]):
                displaced[n_displaced] = running[r, j]
                n_displaced += 1
                total += items[running[r, j]]
            if batch_end[r] != np.inf:  # (the share _try_start gave the batch, from the same numbers)
                length = _batch_time(total, overhead_s[r], compute_s_per_item[r], weights_s[r],
                                     embedding_s_per_item[r])
                _take_busy(busy, compute, _share(total, length, compute_s_per_item[r]), r, t, batch_end[r],
                           horizon_s, bin_width_s)
            in_system[r] -= n_running[r]
            n_running[r] = 0
            batch_end[r] = np.inf
            if central:
                for j in range(n_displaced - 1, -1, -1):
                    q = displaced[j]
                    queue_next[q] = queue_head[n_rep]
                    queue_head[n_rep] = q
                    if queue_tail[n_rep] < 0:
                        queue_tail[n_rep] = q
                    queued[n_rep] += 1
                    queued_items[n_rep] += items[q]
            else:
                q = queue_head[r]
                while q >= 0:
                    displaced[n_displaced] = q
                    n_displaced += 1
                    q = queue_next[q]
                in_system[r] -= queued[r]
                queue_head[r] = -1
                queue_tail[r] = -1
                queued[r] = 0
                queued_items[r] = 0
            deadline[r] = np.inf
            lost_any = False
            for j in range(n_displaced):
                q = displaced[j]
                hit[q] += 1
                replica_of[q] = -1
                if central:
                    can = False
                    for m in range(n_rep):
                        if up[m] and max_items[m] >= items[q]:
                            can = True
                    if not can:
                        status[q] = REJECTED
                        lost_any = True
                    continue
                rr[0] = next_rr
                m = _route(q, t, router, n_rep, rr, items, max_items, active_from_s, active_until_s, up, in_system,
                           work, batch_end, queued, queued_items, overhead_s, compute_s_per_item, weights_s,
                           embedding_s_per_item, max_batch, cost_per_s, slo_s)
                next_rr = rr[0]
                if m < 0:
                    status[q] = REJECTED
                    continue
                replica_of[q] = m
                _push(m, q, items[q], queue_head, queue_tail, queue_next, queued, queued_items)
                in_system[m] += 1
                if batch_end[m] == np.inf:
                    woken[m] = True
            if lost_any:  # take the lost requests out of the central queue, keeping the order of the rest
                _drop_rejected(n_rep, status, items, queue_head, queue_tail, queue_next, queued, queued_items)
            for m in range(n_rep):
                if (central and up[m] and batch_end[m] == np.inf) or woken[m]:
                    woken[m] = False
                    if _ready(m, t, n_rep if central else m, queue_head, queued, queued_items, arrival_s, max_batch,
                              max_delay_s, max_items):
                        _try_start(m, t, queue_head, queue_tail, queue_next, queued, queued_items, running,
                                   n_running, batch_end, batches, busy, compute, replica_of, in_system, arrival_s,
                                   items, overhead_s, compute_s_per_item, weights_s, embedding_s_per_item, max_batch,
                                   max_items, central, horizon_s, bin_width_s)
            for m in range(n_rep):
                deadline[m] = _deadline(m, queue_head, arrival_s, items, max_delay_s, max_items, batch_end, central) \
                    if up[m] else np.inf
            continue
        if n_fail > 0 and back_at[r_back] == t:
            r = r_back
            up[r] = True
            back_at[r] = np.inf
            if _ready(r, t, n_rep if central else r, queue_head, queued, queued_items, arrival_s, max_batch,
                      max_delay_s, max_items):
                _try_start(r, t, queue_head, queue_tail, queue_next, queued, queued_items, running, n_running,
                           batch_end, batches, busy, compute, replica_of, in_system, arrival_s, items, overhead_s,
                           compute_s_per_item, weights_s, embedding_s_per_item, max_batch, max_items, central,
                           horizon_s, bin_width_s)
            _refresh(r, deadline, queue_head, arrival_s, items, max_delay_s, max_items, batch_end, central, up)
            continue
        if due == t:
            if _ready(r_due, t, n_rep if central else r_due, queue_head, queued, queued_items, arrival_s, max_batch,
                      max_delay_s, max_items):
                _try_start(r_due, t, queue_head, queue_tail, queue_next, queued, queued_items, running, n_running,
                           batch_end, batches, busy, compute, replica_of, in_system, arrival_s, items, overhead_s,
                           compute_s_per_item, weights_s, embedding_s_per_item, max_batch, max_items, central,
                           horizon_s, bin_width_s)
            _refresh(r_due, deadline, queue_head, arrival_s, items, max_delay_s, max_items, batch_end, central, up)
            continue
        any_woken = False
        while i < n and arrival_s[i] == t:
            k = items[i]
            if k > largest:
                status[i] = REJECTED
            elif central:
                _push(n_rep, i, k, queue_head, queue_tail, queue_next, queued, queued_items)
                for m in range(n_rep):
                    if batch_end[m] == np.inf and up[m]:
                        woken[m] = True
                        any_woken = True
            else:
                r = -1  # (the routing of _route, inline: this is the hot loop)
                if router == ROUTER_ROUND_ROBIN:
                    for j in range(n_rep):
                        m = (next_rr + j) % n_rep
                        if max_items[m] >= k and active_from_s[m] <= t < active_until_s[m] and up[m]:
                            r = m
                            break
                    if r >= 0:
                        next_rr = (r + 1) % n_rep
                elif router == ROUTER_JSQ:
                    for m in range(n_rep):
                        if max_items[m] >= k and active_from_s[m] <= t < active_until_s[m] and up[m] and (
                                r < 0 or in_system[m] < in_system[r]):
                            r = m
                else:
                    for m in range(n_rep):
                        work[m] = _work_s(m, t, batch_end, queued, queued_items, overhead_s, compute_s_per_item,
                                          weights_s, embedding_s_per_item, max_batch)
                    if router == ROUTER_LEAST_WORK:
                        for m in range(n_rep):
                            if max_items[m] >= k and active_from_s[m] <= t < active_until_s[m] and up[m] and (
                                    r < 0 or work[m] < work[r]):
                                r = m
                    else:
                        r = _slo_aware(k, t, work, max_items, overhead_s, compute_s_per_item, weights_s,
                                       embedding_s_per_item, cost_per_s, slo_s, active_from_s, active_until_s, up)
                if r < 0:  # no replica that can run it is up and in its window
                    status[i] = REJECTED
                    i += 1
                    continue
                replica_of[i] = r
                _push(r, i, k, queue_head, queue_tail, queue_next, queued, queued_items)
                in_system[r] += 1
                if batch_end[r] == np.inf:
                    woken[r] = True
                    any_woken = True
            i += 1
        if any_woken:
            for r in range(n_rep):
                if woken[r]:
                    woken[r] = False
                    if _ready(r, t, n_rep if central else r, queue_head, queued, queued_items, arrival_s, max_batch,
                              max_delay_s, max_items):
                        _try_start(r, t, queue_head, queue_tail, queue_next, queued, queued_items, running,
                                   n_running, batch_end, batches, busy, compute, replica_of, in_system, arrival_s,
                                   items, overhead_s, compute_s_per_item, weights_s, embedding_s_per_item, max_batch,
                                   max_items, central, horizon_s, bin_width_s)
                    if not central:
                        deadline[r] = _deadline(r, queue_head, arrival_s, items, max_delay_s, max_items, batch_end,
                                                central)
            if central:
                for r in range(n_rep):
                    deadline[r] = _deadline(r, queue_head, arrival_s, items, max_delay_s, max_items, batch_end,
                                            central) if up[r] else np.inf
    for j in range(i, n):
        status[j] = NOT_OFFERED
    return status, replica_of, finish, busy, batches, hit, compute


@njit(cache=True)
def _route(q, t, router, n_rep, rr, items, max_items, active_from_s, active_until_s, up, in_system, work, batch_end,
           queued, queued_items, overhead_s, compute_s_per_item, weights_s, embedding_s_per_item, max_batch,
           cost_per_s, slo_s):
    """The replica the router sends request ``q`` to at ``t`` (-1: none up, in its window and large enough)."""
    k = items[q]
    r = -1
    if router == ROUTER_ROUND_ROBIN:
        for j in range(n_rep):
            m = (rr[0] + j) % n_rep
            if max_items[m] >= k and active_from_s[m] <= t < active_until_s[m] and up[m]:
                r = m
                break
        if r >= 0:
            rr[0] = (r + 1) % n_rep
    elif router == ROUTER_JSQ:
        for m in range(n_rep):
            if max_items[m] >= k and active_from_s[m] <= t < active_until_s[m] and up[m] and (
                    r < 0 or in_system[m] < in_system[r]):
                r = m
    else:
        for m in range(n_rep):
            work[m] = _work_s(m, t, batch_end, queued, queued_items, overhead_s, compute_s_per_item,
                              weights_s, embedding_s_per_item, max_batch)
        if router == ROUTER_LEAST_WORK:
            for m in range(n_rep):
                if max_items[m] >= k and active_from_s[m] <= t < active_until_s[m] and up[m] and (
                        r < 0 or work[m] < work[r]):
                    r = m
        else:
            r = _slo_aware(k, t, work, max_items, overhead_s, compute_s_per_item, weights_s,
                           embedding_s_per_item, cost_per_s, slo_s, active_from_s, active_until_s, up)
    return r


@njit(cache=True)
def _drop_rejected(source, status, items, queue_head, queue_tail, queue_next, queued, queued_items):
    """Unlink the rejected requests from queue ``source``."""
    prev = -1
    q = queue_head[source]
    while q >= 0:
        nxt = queue_next[q]
        if status[q] == REJECTED:
            if prev < 0:
                queue_head[source] = nxt
            else:
                queue_next[prev] = nxt
            if nxt < 0:
                queue_tail[source] = prev
            queued[source] -= 1
            queued_items[source] -= items[q]
        else:
            prev = q
        q = nxt


@njit(cache=True)
def _take_busy(busy, compute, share, r, start_s, end_s, horizon_s, bin_width_s):
    a, b = start_s, min(end_s, horizon_s)
    k = int(a // bin_width_s)
    while a < b:
        edge = min((k + 1) * bin_width_s, b)
        if edge > a:
            busy[r, k] -= edge - a
            compute[r, k] -= (edge - a) * share
            a = edge
        k += 1


@njit(cache=True)
def _push(source, q, k, queue_head, queue_tail, queue_next, queued, queued_items):
    queue_next[q] = -1  # (a request routed again after a failure may still link to its old queue)
    if queue_tail[source] < 0:
        queue_head[source] = q
    else:
        queue_next[queue_tail[source]] = q
    queue_tail[source] = q
    queued[source] += 1
    queued_items[source] += k


@njit(cache=True)
def _refresh(r, deadline, queue_head, arrival_s, items, max_delay_s, max_items, batch_end, central, up):
    """Recompute the deadline of ``r`` after its state changed; with a central queue, of every replica
    (the shared head may have moved); a failed replica has none."""
    if central:
        for m in range(deadline.shape[0]):
            deadline[m] = _deadline(m, queue_head, arrival_s, items, max_delay_s, max_items, batch_end, central) \
                if up[m] else np.inf
    else:
        deadline[r] = _deadline(r, queue_head, arrival_s, items, max_delay_s, max_items, batch_end, central)


@njit(cache=True)
def _deadline(r, queue_head, arrival_s, items, max_delay_s, max_items, batch_end, central):
    source = queue_head.shape[0] - 1 if central else r
    head = queue_head[source]
    if batch_end[r] != np.inf or head < 0 or items[head] > max_items[r]:
        return np.inf
    return arrival_s[head] + max_delay_s[r]


@njit(cache=True)
def _batch_time(items, overhead_s, compute_s_per_item, weights_s, embedding_s_per_item):
    return overhead_s + max(compute_s_per_item * items, weights_s + embedding_s_per_item * items)


@njit(cache=True)
def _work_s(r, t, batch_end, queued, queued_items, overhead_s, compute_s_per_item, weights_s,
            embedding_s_per_item, max_batch):
    rest = batch_end[r] - t if batch_end[r] != np.inf else 0.0
    n_batches = (queued[r] + max_batch[r] - 1) // max_batch[r]
    return rest + (n_batches * (overhead_s[r] + weights_s[r])
                   + queued_items[r] * max(compute_s_per_item[r], embedding_s_per_item[r]))


@njit(cache=True)
def _slo_aware(k, t, work, max_items, overhead_s, compute_s_per_item, weights_s, embedding_s_per_item, cost_per_s,
               slo_s, active_from_s, active_until_s, up):
    best = -1
    best_cost = np.inf
    best_predicted = np.inf
    fallback = -1
    fallback_predicted = np.inf
    for r in range(work.shape[0]):
        if max_items[r] < k or not active_from_s[r] <= t < active_until_s[r] or not up[r]:
            continue
        service = _batch_time(k, overhead_s[r], compute_s_per_item[r], weights_s[r], embedding_s_per_item[r])
        predicted = work[r] + service
        if predicted <= slo_s:
            cost = cost_per_s[r] * service
            if best < 0 or cost < best_cost or (cost == best_cost and predicted < best_predicted):
                best, best_cost, best_predicted = r, cost, predicted
        if fallback < 0 or predicted < fallback_predicted:
            fallback, fallback_predicted = r, predicted
    return best if best >= 0 else fallback


@njit(cache=True)
def _ready(r, t, source, queue_head, queued, queued_items, arrival_s, max_batch, max_delay_s, max_items):
    """Whether idle replica ``r``'s batching rule starts a batch from queue ``source`` at ``t`` (callers test this
    before calling ``_try_start``, whose long argument list costs more than the test)."""
    head = queue_head[source]
    if head < 0:
        return False
    return queued[source] >= max_batch[r] or queued_items[source] > max_items[r] \
        or arrival_s[head] + max_delay_s[r] <= t


@njit(cache=True)
def _share(total, length, compute_s_per_item):
    """Compute share of a batch of ``total`` items lasting ``length`` [s] (``ranking_reference``)."""
    return min(1.0, compute_s_per_item * total / length) if length > 0 else 1.0


@njit(cache=True)
def _try_start(r, t, queue_head, queue_tail, queue_next, queued, queued_items, running, n_running, batch_end,
               batches, busy, compute, replica_of, in_system, arrival_s, items, overhead_s, compute_s_per_item,
               weights_s, embedding_s_per_item, max_batch, max_items, central, horizon_s, bin_width_s):
    """Start a batch on idle replica ``r`` at ``t``; the caller has checked ``_ready``."""
    source = queue_head.shape[0] - 1 if central else r
    total = 0
    while queue_head[source] >= 0 and n_running[r] < max_batch[r] and total + items[queue_head[source]] <= \
            max_items[r]:
        q = queue_head[source]
        queue_head[source] = queue_next[q]
        if queue_head[source] < 0:
            queue_tail[source] = -1
        queued[source] -= 1
        queued_items[source] -= items[q]
        total += items[q]
        running[r, n_running[r]] = q
        n_running[r] += 1
        if central:
            replica_of[q] = r
            in_system[r] += 1
    if n_running[r] == 0:
        return
    length = _batch_time(total, overhead_s[r], compute_s_per_item[r], weights_s[r], embedding_s_per_item[r])
    batch_end[r] = t + length
    batches[r] += 1
    _add_busy(busy, compute, _share(total, length, compute_s_per_item[r]), r, t, batch_end[r], horizon_s,
              bin_width_s)
