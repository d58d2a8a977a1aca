"""Reference twin of the request-level ranking kernel: readable Python, arrays in, arrays out.

One call serves every replica of one ranking service; replicas may sit on different chip types, so
each has its own parameters (arrays of length R). ``ranking_compiled.serve_ranking`` is the Numba
version with the same signature; tests require identical results.

Model, per replica ``r``:
* **Batch time** of S items: ``overhead_s[r] + max(compute_s_per_item[r]·S, weights_s[r] +
  embedding_s_per_item[r]·S)`` (``batch_time_s``; the constants come from ``sim.serving.ranking.model``).
* **Dynamic batching**: requests wait in a FIFO queue. An idle replica starts a batch when its queue
  holds ``max_batch[r]`` requests or more than ``max_items[r]`` items (full), or when the oldest waiting
  request has waited ``max_delay_s[r]``. A batch takes requests from the head while it has fewer than
  ``max_batch[r]`` requests and the next one's items still fit in ``max_items[r]``. A busy replica
  finishes its batch, then checks the same rule at once. With ``max_delay_s = 0`` and ``max_batch = 1``
  every replica is a FIFO single server.
* **Eligibility**: a request with more items than ``max_items[r]`` (activation memory) can never run on
  ``r``; routers pick only among replicas that can run it, and a request no replica can run is rejected
  on arrival.
* **Windows** (``sim.fleet.windows``): replica ``r`` takes new requests only while ``active_from_s[r] <= t <
  active_until_s[r]``; outside its window it finishes its own queue (drain) but is routed nothing. A request
  arriving when no replica that can run it is in its window is rejected on arrival. The central queue
  ignores windows (validation refuses ``central`` with windowed groups).
* **Failures** (``sim.serving.failures``): replica ``fail_replica[f]`` fails at ``fail_s[f]`` (in time order) and
  is back at ``back_s[f]``. At its failure its batch is abandoned (its busy time after the failure is taken
  back) and every request in that batch or in its queue, batch first then queue order, is routed again at once
  as if it arrived then (keeping its arrival time, so its latency counts the lost time and it is at once due
  for a batch); ``hit`` counts the failures that struck each request. A request no replica that is up, in its
  window and large enough can take is rejected (lost). With the central queue the batch goes back to the
  head of the shared queue (lost only if no replica up could run it). A failed replica takes nothing and
  starts nothing until it is back. Events at one instant: batch end, failure, return, deadline, arrival.
* **Routing** on arrival: ``ROUTER_ROUND_ROBIN`` (next eligible replica in turn), ``ROUTER_JSQ`` (fewest
  requests queued or in service), ``ROUTER_LEAST_WORK`` (least outstanding work ``work_s``),
  ``ROUTER_CENTRAL`` (one shared queue; an idle replica applies its own batching rule to it, lowest index
  first, and takes from the head only requests it can run), and ``ROUTER_SLO_AWARE``: the predicted
  latency on r is ``work_s(r) + batch_time_s(r, items)``; among replicas whose prediction is within
  ``slo_s`` the one with the lowest cost ``cost_per_s[r] · batch_time_s(r, items)`` wins (ties: lower
  prediction, then lower index); if none meets the SLO, the lowest prediction (then lower index).
  Ties always go to the lowest index.
* **Outstanding work** ``work_s(r)`` [s]: what is left of the batch in service plus, for the queue,
  ``ceil(requests / max_batch)·(overhead + weights) + items·max(compute, embedding per item)`` — an upper
  bound of the queued batches' time. It ignores the batching delay a lone request may wait.
* **Events**: a batch end is handled before a batching deadline, and a deadline before an arrival at
  the same instant; among replicas the lowest index first. All arrivals of one instant are routed
  before idle replicas check their rule. Nothing starts after ``horizon_s``. A batching deadline already past
  (a central queue's new head that waited behind a request only a busy replica could take) is due at the
  current instant: time never goes back.

Outputs: ``status`` (``DONE``, ``UNFINISHED``, ``REJECTED``, ``NOT_OFFERED`` — the constants of
``serving_reference``), ``replica`` (-1 when never placed), ``finish_s`` (NaN unless done), ``busy_s``
(R × bins of ``bin_width_s``: seconds each replica spent serving batches in each bin, up to the
horizon) and ``batches`` (R: batches started), ``hit`` (failures that struck each request), ``compute_s`` (R ×
bins, as ``busy_s``: each busy second × its batch's compute share ``min(1, compute_s_per_item·S ÷ batch time)``,
so ``m · busy_s + (1 − m) · compute_s`` are the energy-weighted busy seconds of ``sim.serving.activity``; an
abandoned batch's share after a failure is taken back with its busy time).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from sim.kernels.serving_reference import (
    DONE,
    NOT_OFFERED,
    REJECTED,
    ROUTER_CENTRAL,
    ROUTER_JSQ,
    ROUTER_LEAST_WORK,
    ROUTER_ROUND_ROBIN,
    ROUTER_SLO_AWARE,
    UNFINISHED,
    add_busy,
)

__all__ = ["serve_ranking", "batch_time_s", "ROUTER_SLO_AWARE", "ROUTER_ROUND_ROBIN", "ROUTER_JSQ",
           "ROUTER_LEAST_WORK", "ROUTER_CENTRAL", "DONE", "UNFINISHED", "REJECTED", "NOT_OFFERED"]


def batch_time_s(items, overhead_s, compute_s_per_item, weights_s, embedding_s_per_item):
    """Service time of one batch of ``items`` items on one replica [s] (see the module docstring)."""
    return overhead_s + max(compute_s_per_item * items, weights_s + embedding_s_per_item * items)


def serve_ranking(arrival_s, items, router, slo_s, overhead_s, compute_s_per_item, weights_s,
                  embedding_s_per_item, max_batch, max_delay_s, max_items, cost_per_s, active_from_s, active_until_s,
                  fail_s, back_s, fail_replica, horizon_s, bin_width_s):
    n, n_rep = len(arrival_s), len(overhead_s)
    up = [True] * n_rep
    back_at = [math.inf] * n_rep
    hit = np.zeros(n, dtype=np.int64)
    n_fail, f = len(fail_s), 0
    p = (overhead_s, compute_s_per_item, weights_s, embedding_s_per_item)
    busy = np.zeros((n_rep, int(math.ceil(horizon_s / bin_width_s)) + 1))
    compute = np.zeros(busy.shape)  # busy seconds × the batch's compute share
    share = [1.0] * n_rep  # compute share of the batch in flight
    batches = np.zeros(n_rep, dtype=np.int64)
    status = np.full(n, UNFINISHED, dtype=np.int8)
    replica_of = np.full(n, -1, dtype=np.int64)
    finish = np.full(n, np.nan)
    central = router == ROUTER_CENTRAL
    queues = [deque() for _ in range(n_rep + 1)]    # the last one is the central queue
    queued_items = [0] * (n_rep + 1)
    in_system = [0] * n_rep
    batch_end = [math.inf] * n_rep
    running = [[] for _ in range(n_rep)]
    largest = max(max_items) if n_rep else 0
    rr = [0]  # next replica in turn (round-robin)
    i = 0

    def route(q, t):
        """Replica the router sends request ``q`` to at ``t`` (-1: none that is up, active and large enough)."""
        k = int(items[q])
        eligible = [r for r in range(n_rep)
                    if max_items[r] >= k and active_from_s[r] <= t < active_until_s[r] and up[r]]
        if not eligible:
            return -1
        if router == ROUTER_ROUND_ROBIN:
            r = min(eligible, key=lambda m: ((m - rr[0]) % n_rep, m))
            rr[0] = (r + 1) % n_rep
        elif router == ROUTER_JSQ:
            r = min(eligible, key=lambda m: (in_system[m], m))
        else:
            work = [_work_s(m, t, batch_end, queues, queued_items, p, max_batch) for m in range(n_rep)]
            if router == ROUTER_LEAST_WORK:
                r = min(eligible, key=lambda m: (work[m], m))
            else:
                r = _slo_aware(eligible, k, work, p, cost_per_s, slo_s)
        return r

    t_last = 0.0  # the last event's time (``due``)
    while True:
        t_arrival = arrival_s[i] if i < n else math.inf
        r_end = min(range(n_rep), key=lambda r: (batch_end[r], r))
        deadlines = [_deadline(r, queues, arrival_s, items, max_delay_s, max_items, batch_end, central)
                     if up[r] else math.inf for r in range(n_rep)]
        r_due = min(range(n_rep), key=lambda r: (deadlines[r], r))
        due = max(deadlines[r_due], t_last)  # a batching deadline already past is due now, not back then
        r_back = min(range(n_rep), key=lambda r: (back_at[r], r))
        t_fail = fail_s[f] if f < n_fail else math.inf
        t = min(t_arrival, batch_end[r_end], due, t_fail, back_at[r_back])
        if t > horizon_s:
            break
        t_last = t
        if batch_end[r_end] == t:
            for q in running[r_end]:
                status[q] = DONE
                finish[q] = t
            in_system[r_end] -= len(running[r_end])
            running[r_end] = []
            batch_end[r_end] = math.inf
            _try_start(r_end, t, queues, queued_items, running, batch_end, batches, busy, compute, share, replica_of,
                       in_system, arrival_s, items, p, max_batch, max_delay_s, max_items, central, horizon_s,
                       bin_width_s)
            continue
        if t_fail == t:
            r = int(fail_replica[f])
            up[r], back_at[r] = False, back_s[f]
            f += 1
            displaced = running[r]
            if batch_end[r] != math.inf:
                _take_busy(busy, r, t, batch_end[r], horizon_s, bin_width_s, compute, share[r])
            running[r], batch_end[r] = [], math.inf
            in_system[r] -= len(displaced)
            if central:
                for q in reversed(displaced):
                    queues[n_rep].appendleft(q)
                    queued_items[n_rep] += int(items[q])
            else:
                displaced = displaced + list(queues[r])
                in_system[r] -= len(queues[r])
                queues[r].clear()
                queued_items[r] = 0
            woken = set()
            for q in displaced:
                hit[q] += 1
                replica_of[q] = -1
                if central:
                    if not any(up[m] and max_items[m] >= items[q] for m in range(n_rep)):
                        queues[n_rep].remove(q)
                        queued_items[n_rep] -= int(items[q])
                        status[q] = REJECTED
                    continue
                m = route(q, t)
                if m < 0:
                    status[q] = REJECTED
                    continue
                replica_of[q] = m
                queues[m].append(q)
                queued_items[m] += int(items[q])
                in_system[m] += 1
                if batch_end[m] == math.inf:
                    woken.add(m)
            if central:
                woken = {m for m in range(n_rep) if up[m] and batch_end[m] == math.inf}
            for m in sorted(woken):
                _try_start(m, t, queues, queued_items, running, batch_end, batches, busy, compute, share, replica_of,
                           in_system, arrival_s, items, p, max_batch, max_delay_s, max_items, central, horizon_s,
                           bin_width_s)
            continue
        if back_at[r_back] == t:
            up[r_back], back_at[r_back] = True, math.inf
            _try_start(r_back, t, queues, queued_items, running, batch_end, batches, busy, compute, share, replica_of,
                       in_system, arrival_s, items, p, max_batch, max_delay_s, max_items, central, horizon_s,
                       bin_width_s)
            continue
        if due == t:
            _try_start(r_due, t, queues, queued_items, running, batch_end, batches, busy, compute, share, replica_of,
                       in_system, arrival_s, items, p, max_batch, max_delay_s, max_items, central, horizon_s,
                       bin_width_s)
            continue
        woken = set()
        while i < n and arrival_s[i] == t:
            k = int(items[i])
            if k > largest:
                status[i] = REJECTED
            elif central:
                queues[n_rep].append(i)
                queued_items[n_rep] += k
                woken.update(r for r in range(n_rep) if batch_end[r] == math.inf and up[r])
            else:
                r = route(i, t)
                if r < 0:  # no replica that can run it is up and in its window
                    status[i] = REJECTED
                    i += 1
                    continue
                replica_of[i] = r
                queues[r].append(i)
                queued_items[r] += k
                in_system[r] += 1
                if batch_end[r] == math.inf:
                    woken.add(r)
            i += 1
        for r in sorted(woken):
            _try_start(r, t, queues, queued_items, running, batch_end, batches, busy, compute, share, replica_of,
                       in_system, arrival_s, items, p, max_batch, max_delay_s, max_items, central, horizon_s,
                       bin_width_s)
    status[i:] = NOT_OFFERED
    return status, replica_of, finish, busy, batches, hit, compute


def _take_busy(busy, r, start_s, end_s, horizon_s, bin_width_s, compute, share):
    """Take replica ``r``'s abandoned busy interval [start, end), clipped at the horizon, out of its bins [s] (and
    its seconds × the batch's compute ``share`` out of ``compute``)."""
    a, b = start_s, min(end_s, horizon_s)
    k = int(a // bin_width_s)
    while a < b:
        edge = min((k + 1) * bin_width_s, b)
        if edge > a:
            busy[r, k] -= edge - a
            compute[r, k] -= (edge - a) * share
            a = edge
        k += 1


def _deadline(r, queues, arrival_s, items, max_delay_s, max_items, batch_end, central):
    """When idle replica ``r`` must close a batch for the oldest waiting request (inf: nothing to do, or
    the head of the central queue needs more memory than ``r`` has)."""
    queue = queues[len(queues) - 1] if central else queues[r]
    if batch_end[r] != math.inf or not queue or items[queue[0]] > max_items[r]:
        return math.inf
    return arrival_s[queue[0]] + max_delay_s[r]


def _work_s(r, t, batch_end, queues, queued_items, p, max_batch):
    """Outstanding work on replica ``r`` at ``t`` [s]: rest of the batch in service + queued batches."""
    overhead_s, compute_s_per_item, weights_s, embedding_s_per_item = p
    rest = batch_end[r] - t if batch_end[r] != math.inf else 0.0
    n_batches = (len(queues[r]) + max_batch[r] - 1) // max_batch[r]
    return rest + (n_batches * (overhead_s[r] + weights_s[r])
                   + queued_items[r] * max(compute_s_per_item[r], embedding_s_per_item[r]))


def _slo_aware(eligible, k, work, p, cost_per_s, slo_s):
    """The cheapest replica predicted to meet the SLO; else the one with the lowest prediction."""
    best, best_key = -1, None
    fallback, fallback_key = -1, None
    for r in eligible:
        service = batch_time_s(k, p[0][r], p[1][r], p[2][r], p[3][r])
        predicted = work[r] + service
        if predicted <= slo_s:
            key = (cost_per_s[r] * service, predicted, r)
            if best_key is None or key < best_key:
                best, best_key = r, key
        if fallback_key is None or (predicted, r) < fallback_key:
            fallback, fallback_key = r, (predicted, r)
    return best if best >= 0 else fallback


def _try_start(r, t, queues, queued_items, running, batch_end, batches, busy, compute, share, replica_of, in_system,
               arrival_s, items, p, max_batch, max_delay_s, max_items, central, horizon_s, bin_width_s):
    """Start a batch on idle replica ``r`` at ``t`` if its batching rule says so."""
    source = len(queues) - 1 if central else r
    queue = queues[source]
    if not queue:
        return
    full = len(queue) >= max_batch[r] or queued_items[source] > max_items[r]
    if not full and arrival_s[queue[0]] + max_delay_s[r] > t:
        return
    total = 0
    while queue and len(running[r]) < max_batch[r] and total + int(items[queue[0]]) <= max_items[r]:
        q = queue.popleft()
        total += int(items[q])
        queued_items[source] -= int(items[q])
        running[r].append(q)
        if central:  # the request meets its replica only now
            replica_of[q] = r
            in_system[r] += 1
    if not running[r]:
        return  # central queue: the head needs a replica with more memory
    length = batch_time_s(total, p[0][r], p[1][r], p[2][r], p[3][r])
    batch_end[r] = t + length
    share[r] = min(1.0, p[1][r] * total / length) if length > 0 else 1.0
    batches[r] += 1
    add_busy(busy, r, t, batch_end[r], horizon_s, bin_width_s, compute, share[r])
