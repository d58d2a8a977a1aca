"""Reference twin of the request-level LLM serving kernel: readable Python, arrays in, arrays out.

The replicas of one *service* — R replicas of one model, possibly on different chip types (a row of
parameters each) — serve a request stream with continuous batching, iteration by iteration
(vLLM-style). ``serving_compiled.serve_llm`` is the Numba version with the same signature; tests
require identical per-request results.

Model, per replica:
* **Routing** on arrival, among the *active* replicas that can ever hold the request's KV
  reservation (see switches below): ``ROUTER_ROUND_ROBIN`` (cyclic over replica indices, skipping
  the others), ``ROUTER_JSQ`` (fewest requests in the replica), ``ROUTER_LEAST_WORK`` (least
  outstanding work: prompt tokens not yet prefilled + tokens not yet generated, divided by the
  replica's nominal token rate ``F_TOKENS_PER_S``, so faster chips count for more) or
  ``ROUTER_SLO_AWARE`` (predicted latency and cost, below). Ties go to the lowest replica index.
  ``ROUTER_CENTRAL`` keeps one shared queue that replicas pull from when they start an iteration
  (lowest index first) — with ``max_seqs = 1`` it is the M/M/c discipline the tests compare with
  Erlang C.
* **SLO-aware routing** predicts, for each candidate replica, the request's TTFT as ``n`` iterations
  of the replica's own iteration time, where ``n = ceil(pending / token_budget)`` and
  ``pending`` = prompt tokens queued or prefilling there + this prompt, each iteration carrying the
  current decoders plus ``pending / n`` prefill tokens over the current decode context; and its TPOT
  as one iteration with the current decoders + 1 over the current context + this prompt or, when the
  replica is iterating, its recent iteration length if longer (an exponential moving average with
  weight ``RECENT_WEIGHT`` per iteration: it shows how much prefill work the replica interleaves with
  decoding). Among
  replicas predicted to meet both SLO targets it picks the lowest ``F_USD_PER_TOKEN`` (ties: lower
  predicted TTFT, then lower index); when none is predicted to meet them, the lowest predicted TTFT.
  The prediction ignores waits for KV space and prompts still queued behind a full batch.
* **Switches** (autoscaling, replica group windows): at ``switch_s[k]`` replica ``switch_replica[k]``
  becomes active (``switch_on[k]`` = ``SWITCH_ON``, or ``True``), inactive (``SWITCH_OFF``, ``False``) or
  gone (``SWITCH_GONE``: outside its group's window, ``sim.fleet.windows``). All replicas start active. An
  inactive or gone replica receives no new request (and, with the central queue, pulls none) but finishes
  what it holds (a gone one drains). When no active replica can hold a request, any inactive (not gone)
  replica that can is a candidate; when none is, the request is rejected on arrival (with the central
  queue: when no replica that is not gone can hold it).
* **Failures** (``SWITCH_FAIL``, ``sim.serving.failures``): the replica fails at once. The iteration in flight
  is lost (its busy time stays counted) and every request it holds, queued or running, loses its progress and
  is routed again at that instant as if it arrived then (among the candidates above; it keeps its arrival
  time and, in a queue, its place in arrival order); when no replica can take it, it is rejected (the
  ``hit`` output tells it from one rejected on arrival). A failed replica is neither active nor a fallback
  until a ``SWITCH_ON`` (its repair) brings it back.
* **Admission**, first come first served from the replica's queue, at the start of each iteration,
  while fewer than ``max_seqs`` requests run and the KV cache can hold the request whole: a request
  reserves ``prompt + output`` tokens of KV capacity when admitted and frees them when it finishes (a
  conservative simplification of paged allocation; no preemption). A request no replica could ever
  hold (``prompt + output`` above every replica's ``kv_capacity_tokens``) is rejected on arrival.
* **Batch** of one iteration: one decode token for every running request whose prefill is done, then
  prefill tokens of running requests in admission order within what is left of ``token_budget``.
  With ``chunked_prefill`` a prompt may be split over iterations; without it a prompt is prefilled in
  one iteration, and one larger than the budget runs alone.
* **Iteration time** (roofline, ``iteration_time_s``): ``overhead_s + per_token_s · tokens +
  per_seq_s · decoders + max(compute, memory)`` with ``compute = (flop_per_token · tokens +
  attn_flop_per_token_ctx · attended) / flops_per_s`` and ``memory = (weight_bytes +
  kv_bytes_per_token · Σ context of decoding requests) / bytes_per_s``. ``attended`` counts, over
  the iteration's tokens, the context tokens each attends to: a decoding request its whole context;
  a prefill chunk of ``c`` tokens after ``p`` already prefilled ``c·p + c(c+1)/2`` (causal). The
  prefill's reads of its own earlier chunks' KV are not counted in ``memory``.
  The first output token is produced by the iteration that completes the prefill; each later
  iteration produces one token per decoding request.
* **Events**: at one instant, iteration ends first (lowest replica index first), then switches (in
  array order), then arrivals. Requests arriving at the same instant are all routed before an idle
  replica starts, so they can share its first iteration. Nothing starts after ``horizon_s``;
  requests not finished by then are unfinished.

* **Power activity** (``sim.serving.activity``): an iteration draws idle + ``activity`` × the full-load increment,
  ``activity = c + (1 − c) · memory_activity`` with ``c`` = its compute term ÷ its length (at most 1)
  (``iteration_activity``; ``F_MEMORY_ACTIVITY`` = 1 draws the full increment whatever the work).

Inputs: per-request arrays; ``replica_int`` (R × 4, columns ``I_*``) and ``replica_float`` (R × 12,
columns ``F_*``) hold each replica's parameters (``replica_tables`` builds them); ``router`` and the
SLO targets ``slo_ttft_s`` / ``slo_tpot_s`` [s] (used by ``ROUTER_SLO_AWARE`` only); the switch
arrays (may be empty); ``horizon_s`` and ``bin_width_s`` [s].

Outputs, in order (length N unless noted): ``status`` (``DONE``, ``UNFINISHED``, ``REJECTED``, or
``NOT_OFFERED`` for requests arriving after the horizon; the first three add up to those offered),
``replica`` (-1 when never placed), ``first_token_s`` and ``finish_s`` (NaN when not reached),
``kv_peak_tokens`` (length R: the largest KV reservation ever held), ``busy_s`` (R × bins of
``bin_width_s``: seconds each replica spent iterating in each bin, up to the horizon — for power that
follows load), ``batch_seq_s`` and ``kv_token_s`` (length R: the running requests and the KV tokens
reserved, each times the length of the iteration they ran in, summed over the replica's iterations up to
the horizon — divided by its busy seconds, its time-weighted mean batch; divided by its active seconds,
its mean KV reservation, as a replica holds no KV while idle), ``hit`` (length N: how many replica failures
struck the request; a rejected request with ``hit > 0`` was lost to a failure, a served one was rerouted),
``energy_s`` (R × bins, as ``busy_s``: each busy second × its iteration's activity, the energy-weighted busy
seconds that power and energy integrate).
"""

from __future__ import annotations

import bisect
import math
from collections import deque

import numpy as np

ROUTER_ROUND_ROBIN, ROUTER_JSQ, ROUTER_LEAST_WORK, ROUTER_CENTRAL, ROUTER_SLO_AWARE = 0, 1, 2, 3, 4
DONE, UNFINISHED, REJECTED, NOT_OFFERED = 0, 1, 2, 3
SWITCH_OFF, SWITCH_ON, SWITCH_GONE, SWITCH_FAIL = 0, 1, 2, 3  # values of switch_on (bool arrays: the first two)
RECENT_WEIGHT = 1.0 / 16.0  # weight of the newest iteration in the moving average slo-aware reads

# columns of replica_int
I_TOKEN_BUDGET, I_MAX_SEQS, I_KV_CAPACITY, I_CHUNKED = 0, 1, 2, 3
# columns of replica_float
(F_FLOP_PER_TOKEN, F_FLOPS_PER_S, F_WEIGHT_BYTES, F_KV_BYTES_PER_TOKEN, F_BYTES_PER_S, F_OVERHEAD_S,
 F_PER_TOKEN_S, F_PER_SEQ_S, F_ATTN_FLOP_PER_TOKEN_CTX, F_TOKENS_PER_S, F_USD_PER_TOKEN, F_MEMORY_ACTIVITY) = range(12)
N_FLOAT = 12
INT_KEYS = ("token_budget", "max_seqs", "kv_capacity_tokens", "chunked_prefill")
FLOAT_KEYS = ("flop_per_token", "flops_per_s", "weight_bytes", "kv_bytes_per_token", "bytes_per_s", "overhead_s",
              "per_token_s", "per_seq_s", "attn_flop_per_token_ctx", "tokens_per_s", "usd_per_token", "memory_activity")
OPTIONAL_FLOATS = ("per_token_s", "per_seq_s", "attn_flop_per_token_ctx", "usd_per_token")  # default 0


def replica_tables(groups) -> tuple[np.ndarray, np.ndarray]:
    """``(replica_int, replica_float)`` for groups given as ``(replicas, parameters)``: one row per replica,
    the groups' replicas in order; ``parameters`` maps the names in ``INT_KEYS`` and ``FLOAT_KEYS`` to
    values (those in ``OPTIONAL_FLOATS`` default to 0, ``tokens_per_s`` to the compute rate, ``memory_activity``
    to 1: every iteration draws the full increment)."""
    ints, floats = [], []
    for replicas, p in groups:
        p = {**dict.fromkeys(OPTIONAL_FLOATS, 0.0), **p}
        p.setdefault("tokens_per_s", p["flops_per_s"] / p["flop_per_token"])
        p.setdefault("memory_activity", 1.0)
        ints += [[int(p[k]) for k in INT_KEYS]] * replicas
        floats += [[float(p[k]) for k in FLOAT_KEYS]] * replicas
    return np.array(ints, dtype=np.int64).reshape(-1, 4), np.array(floats, dtype=np.float64).reshape(-1, N_FLOAT)


def no_switches() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empty switch arrays: every replica active for the whole run."""
    return np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.bool_)


def iteration_time_s(tokens, decoders, context_tokens, attended_tokens, row) -> float:
    """Wall time of one batched iteration [s] of the replica whose ``replica_float`` row is ``row``.

    ``tokens`` are all tokens processed (prefill tokens + one per decoding request), ``decoders`` the
    decoding requests, ``context_tokens`` the KV-cache tokens they read, ``attended_tokens`` the
    attention span summed over all tokens. See the module docstring for the formula."""
    compute_s = (row[F_FLOP_PER_TOKEN] * tokens + row[F_ATTN_FLOP_PER_TOKEN_CTX] * attended_tokens) / row[F_FLOPS_PER_S]
    memory_s = (row[F_WEIGHT_BYTES] + row[F_KV_BYTES_PER_TOKEN] * context_tokens) / row[F_BYTES_PER_S]
    return row[F_OVERHEAD_S] + row[F_PER_TOKEN_S] * tokens + row[F_PER_SEQ_S] * decoders + max(compute_s, memory_s)


def iteration_activity(tokens, attended_tokens, length_s, row) -> float:
    """Share of the chips' full-load power increment an iteration of ``length_s`` [s] draws
    (``sim.serving.activity``): its compute term's share ``c`` of the length (at most 1) at full draw, the rest
    at ``F_MEMORY_ACTIVITY``."""
    compute_s = (row[F_FLOP_PER_TOKEN] * tokens + row[F_ATTN_FLOP_PER_TOKEN_CTX] * attended_tokens) / row[F_FLOPS_PER_S]
    share = min(1.0, compute_s / length_s) if length_s > 0 else 1.0
    return share + (1.0 - share) * row[F_MEMORY_ACTIVITY]


def prefill_attended(chunk, prefilled):
    """Context tokens a causal prefill chunk of ``chunk`` tokens after ``prefilled`` ones attends to."""
    return chunk * prefilled + chunk * (chunk + 1) // 2


def predicted_latency_s(prompt, pending_prefill, decoders, context, token_budget, in_flight_s,
                        row) -> tuple[float, float]:
    """SLO-aware routing's (TTFT, TPOT) prediction [s] for a request on a replica (module docstring);
    ``in_flight_s`` is the replica's recent iteration length (0 when idle)."""
    pending = pending_prefill + prompt
    n_iter = -(-pending // token_budget)
    chunk = pending / n_iter
    ttft = n_iter * iteration_time_s(decoders + chunk, decoders, context, context + chunk * (chunk + 1) / 2, row)
    tpot = max(in_flight_s, iteration_time_s(decoders + 1, decoders + 1, context + prompt, context + prompt, row))
    return ttft, tpot


class _State:
    """Per-replica state of a run (lists indexed by replica) and per-request progress."""

    def __init__(self, n, n_replicas, replica_int, prompt_tokens):
        self.ints = replica_int
        self.prompts = prompt_tokens
        self.prefilled = [0] * n   # prompt tokens processed so far
        self.generated = [0] * n   # output tokens produced so far
        self.queues = [deque() for _ in range(n_replicas + 1)]  # the last one is the central queue
        self.running = [[] for _ in range(n_replicas)]          # admission order
        self.kv_used = [0] * n_replicas
        self.in_system = [0] * n_replicas
        self.work = [0] * n_replicas          # outstanding tokens
        self.pending_prefill = [0] * n_replicas  # prompt tokens routed here and not yet prefilled
        self.iteration_end = [math.inf] * n_replicas
        self.recent_s = [0.0] * n_replicas      # moving average of iteration lengths (slo-aware's TPOT)
        self.activity = [1.0] * n_replicas      # power activity of the iteration in flight (iteration_activity)
        self.batch = [None] * n_replicas      # (requests decoding, {request: prefill tokens})
        self.active = [True] * n_replicas
        self.present = [True] * n_replicas  # not gone: a fallback candidate while inactive


def serve_llm(arrival_s, prompt_tokens, output_tokens, replica_int, replica_float, router, slo_ttft_s, slo_tpot_s,
              switch_s, switch_replica, switch_on, horizon_s, bin_width_s):
    n, n_replicas = len(arrival_s), len(replica_int)
    busy = np.zeros((n_replicas, int(math.ceil(horizon_s / bin_width_s)) + 1))
    energy = np.zeros(busy.shape)
    status = np.full(n, UNFINISHED, dtype=np.int8)
    replica_of = np.full(n, -1, dtype=np.int64)
    first_token = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    kv_peak = np.zeros(n_replicas, dtype=np.int64)
    batch_seq_s = np.zeros(n_replicas)
    kv_token_s = np.zeros(n_replicas)
    st = _State(n, n_replicas, replica_int, prompt_tokens)
    central = router == ROUTER_CENTRAL
    seconds_per_token = 1.0 / replica_float[:, F_TOKENS_PER_S]  # least-work's weight per replica
    max_capacity = max(int(c) for c in replica_int[:, I_KV_CAPACITY]) if n_replicas else 0
    requests = (prompt_tokens, output_tokens, first_token, finish, status, replica_of)
    next_rr, i, k = 0, 0, 0

    def start(r, t):
        _start_iteration(r, t, st, requests, replica_float[r], kv_peak, central)
        if st.iteration_end[r] != math.inf:
            add_busy(busy, r, t, st.iteration_end[r], horizon_s, bin_width_s, energy, st.activity[r])
            add_occupancy(batch_seq_s, kv_token_s, r, t, st.iteration_end[r], horizon_s, len(st.running[r]),
                          st.kv_used[r])

    hit = np.zeros(n, dtype=np.int64)

    def route(q, woken) -> None:
        """Send request ``q`` to a replica's queue (or the central one), or reject it."""
        nonlocal next_rr
        need = int(prompt_tokens[q]) + int(output_tokens[q])
        candidates = _candidates(st, need) if need <= max_capacity else []
        if not candidates:
            status[q] = REJECTED
        elif central:
            _enqueue(st.queues[n_replicas], q)
            woken.update(r for r in range(n_replicas) if st.iteration_end[r] == math.inf)
        else:
            if router == ROUTER_ROUND_ROBIN:
                r = min(candidates, key=lambda m: ((m - next_rr) % n_replicas, m))
                next_rr = (r + 1) % n_replicas
            elif router == ROUTER_JSQ:
                r = min(candidates, key=lambda m: (st.in_system[m], m))
            elif router == ROUTER_LEAST_WORK:
                r = min(candidates, key=lambda m: (st.work[m] * seconds_per_token[m], m))
            else:
                r = _slo_aware(candidates, int(prompt_tokens[q]), st, replica_float, slo_ttft_s, slo_tpot_s)
            replica_of[q] = r
            _enqueue(st.queues[r], q)
            st.in_system[r] += 1
            st.work[r] += need
            st.pending_prefill[r] += int(prompt_tokens[q])
            if st.iteration_end[r] == math.inf:
                woken.add(r)

    while True:
        t_arrival = arrival_s[i] if i < n else math.inf
        t_switch = switch_s[k] if k < len(switch_s) else math.inf
        r_end = min(range(n_replicas), key=lambda r: (st.iteration_end[r], r))
        t_end = st.iteration_end[r_end]
        if min(t_arrival, t_end, t_switch) > horizon_s:
            break
        if t_end <= t_arrival and t_end <= t_switch:
            _finish_iteration(r_end, t_end, st, requests)
            st.iteration_end[r_end] = math.inf
            start(r_end, t_end)
            continue
        if t_switch <= t_arrival:
            r = int(switch_replica[k])
            code = int(switch_on[k])
            st.active[r] = code == SWITCH_ON
            st.present[r] = code != SWITCH_GONE and code != SWITCH_FAIL
            k += 1
            if code == SWITCH_FAIL:
                woken = set()
                for q in _fail(r, st, first_token, replica_of):
                    hit[q] += 1
                    route(q, woken)
                for m in sorted(woken):
                    start(m, t_switch)
            if st.iteration_end[r] == math.inf:
                start(r, t_switch)
            continue
        woken = set()  # idle replicas that got work: they start once every arrival of this instant is in
        while i < n and arrival_s[i] == t_arrival:
            route(i, woken)
            i += 1
        for r in sorted(woken):
            start(r, t_arrival)
    status[i:] = NOT_OFFERED
    return status, replica_of, first_token, finish, kv_peak, busy, batch_seq_s, kv_token_s, hit, energy


def _enqueue(queue, q) -> None:
    """Append ``q`` to a queue kept in arrival (index) order: a rerouted request goes before later arrivals."""
    if queue and queue[-1] > q:
        bisect.insort(queue, q)
    else:
        queue.append(q)


def _fail(r, st, first_token, replica_of) -> list[int]:
    """Empty failed replica ``r``: its requests (queued or running, in arrival order) lose their progress."""
    victims = sorted(list(st.queues[r]) + st.running[r])
    st.queues[r].clear()
    st.running[r] = []
    st.kv_used[r] = st.in_system[r] = st.work[r] = st.pending_prefill[r] = 0
    st.iteration_end[r] = math.inf
    st.batch[r] = None
    for q in victims:
        st.prefilled[q] = st.generated[q] = 0
        first_token[q] = np.nan
        replica_of[q] = -1
    return victims


def _candidates(st, need) -> list[int]:
    """Active replicas that can ever hold ``need`` KV tokens; failing that, any not gone that can (none:
    the request is rejected)."""
    fits = [r for r in range(len(st.active)) if need <= st.ints[r, I_KV_CAPACITY] and st.present[r]]
    active = [r for r in fits if st.active[r]]
    return active or fits


def _slo_aware(candidates, prompt, st, replica_float, slo_ttft_s, slo_tpot_s) -> int:
    best, best_key, fastest, fastest_key = -1, None, -1, None
    for r in candidates:
        decoding = _decoders(st, r)
        context = _context(st, r, decoding)
        in_flight_s = st.recent_s[r] if st.iteration_end[r] != math.inf else 0.0
        ttft, tpot = predicted_latency_s(prompt, st.pending_prefill[r], len(decoding), context,
                                         int(st.ints[r, I_TOKEN_BUDGET]), in_flight_s, replica_float[r])
        if fastest_key is None or (ttft, r) < fastest_key:
            fastest, fastest_key = r, (ttft, r)
        if ttft <= slo_ttft_s and tpot <= slo_tpot_s:
            key = (replica_float[r, F_USD_PER_TOKEN], ttft, r)
            if best_key is None or key < best_key:
                best, best_key = r, key
    return best if best >= 0 else fastest


def _decoders(st, r) -> list[int]:
    return [q for q in st.running[r] if st.prefilled[q] == st.prompts[q]]


def _context(st, r, decoding) -> int:
    return sum(int(st.prompts[q]) + st.generated[q] for q in decoding)


def _start_iteration(r, t, st, requests, row, kv_peak, central):
    prompt_tokens, output_tokens, _, _, _, replica_of = requests
    token_budget, max_seqs, kv_capacity, chunked_prefill = (int(v) for v in st.ints[r])
    if central:
        queue = st.queues[-1] if st.active[r] else deque()
    else:
        queue = st.queues[r]
    while queue and len(st.running[r]) < max_seqs:
        head = queue[0]
        need = int(prompt_tokens[head]) + int(output_tokens[head])
        if st.kv_used[r] + need > kv_capacity:
            break
        queue.popleft()
        if central:  # the request meets its replica only now
            replica_of[head] = r
            st.in_system[r] += 1
            st.work[r] += need
            st.pending_prefill[r] += int(prompt_tokens[head])
        st.running[r].append(head)
        st.kv_used[r] += need
        kv_peak[r] = max(kv_peak[r], st.kv_used[r])
    decoding = _decoders(st, r)
    budget = token_budget - len(decoding)
    chunks = {}
    for q in st.running[r]:
        left = int(prompt_tokens[q]) - st.prefilled[q]
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
        st.batch[r] = None
        return
    tokens = len(decoding) + sum(chunks.values())
    context = _context(st, r, decoding)
    attended = context + sum(prefill_attended(c, st.prefilled[q]) for q, c in chunks.items())
    length = iteration_time_s(tokens, len(decoding), context, attended, row)
    st.activity[r] = iteration_activity(tokens, attended, length, row)
    st.recent_s[r] = length if st.recent_s[r] == 0.0 else st.recent_s[r] + RECENT_WEIGHT * (length - st.recent_s[r])
    st.iteration_end[r] = t + length
    st.batch[r] = (decoding, chunks)


def _finish_iteration(r, t, st, requests):
    prompt_tokens, output_tokens, first_token, finish, status, _ = requests
    decoding, chunks = st.batch[r]
    done = []
    for q in decoding:
        st.generated[q] += 1
        st.work[r] -= 1
        if st.generated[q] == output_tokens[q]:
            done.append(q)
    for q, tokens in chunks.items():
        st.prefilled[q] += tokens
        st.work[r] -= tokens
        st.pending_prefill[r] -= tokens
        if st.prefilled[q] == prompt_tokens[q]:
            st.generated[q] = 1  # the prefill iteration emits the first token
            st.work[r] -= 1
            first_token[q] = t
            if output_tokens[q] == 1:
                done.append(q)
    for q in done:
        finish[q] = t
        status[q] = DONE
        st.running[r].remove(q)
        st.kv_used[r] -= int(prompt_tokens[q]) + int(output_tokens[q])
        st.in_system[r] -= 1
    st.batch[r] = None


def add_busy(busy, r, start_s, end_s, horizon_s, bin_width_s, energy=None, activity=1.0):
    """Add replica ``r``'s busy interval [start, end), clipped at the horizon, to its time bins [s]; with
    ``energy``, the same seconds × ``activity`` to it (energy-weighted busy seconds)."""
    a, b = start_s, min(end_s, horizon_s)
    k = int(a // bin_width_s)
    while a < b:  # k advances every pass, so rounding at bin edges cannot stall the loop
        edge = min((k + 1) * bin_width_s, b)
        if edge > a:
            busy[r, k] += edge - a
            if energy is not None:
                energy[r, k] += (edge - a) * activity
            a = edge
        k += 1


def add_occupancy(batch_seq_s, kv_token_s, r, start_s, end_s, horizon_s, running, kv_used):
    """Add an iteration of replica ``r`` over [start, end), clipped at the horizon, with ``running``
    requests in its batch and ``kv_used`` KV tokens reserved, to its request-seconds and KV token-seconds."""
    span = min(end_s, horizon_s) - start_s
    if span > 0:
        batch_seq_s[r] += running * span
        kv_token_s[r] += kv_used * span


def kv_capacity_tokens(chips: int, memory_bytes_per_chip: float, weight_bytes: float, kv_bytes_per_token: float,
                       usable_frac: float = 0.9) -> int:
    """Tokens of KV cache a replica holds: memory left after the weights, over bytes per token.

    ``usable_frac`` of device memory is usable (the rest: activations, runtime, fragmentation — an
    estimate, as vLLM's default ``gpu_memory_utilization`` of 0.9). Zero or less: the model does not fit.
    """
    if kv_bytes_per_token <= 0:
        return 0
    return int((chips * memory_bytes_per_chip * usable_frac - weight_bytes) // kv_bytes_per_token)
