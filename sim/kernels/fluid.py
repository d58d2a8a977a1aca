"""Numeric core of the fluid fidelity of LLM serving: NumPy, vectorised over rows (time bins or load levels).

The engine (``sim.serving.fluid.serve``) turns a service's traffic into per-bin arrival rates and per-request
token means; these functions turn them into batch sizes, busy fractions, capacity, backlog and latency
percentiles. No Python loop runs per bin or per request; the loops here run over chunks of rows or
over bisection steps.

**Iteration time** at a batch of ``j`` running requests (the request-level kernel's roofline, with the
per-token term): ``overhead + per_token · tokens + max(flop_per_token · tokens / flops_per_s,
(weight_bytes + kv_bytes_per_token · context) / bytes_per_s)``. A request spends ``I = (E[O] − 1) +
E[chunks]`` iterations in the batch: its prefill chunks, then one iteration per further output token.
So an average iteration carries ``j·(E[O] − 1)/I`` decode tokens, ``j·E[P]/I`` prompt tokens in
``π = j·E[chunks]/I`` chunks, and reads ``j·E[context]/I`` KV tokens (``context`` = Σ over a request's
decode iterations of its context, ``(O − 1)·P + O·(O − 1)/2``). Prefill iterations are compute bound and
decode iterations memory bound, so the mean iteration time is a mixture, not the roofline of the mean:
a share ``q = min(π, 1)`` of iterations carry the prompt tokens (``j·E[P]/(I·q)`` each) and the rest
only decode tokens (``mean_iteration_time_s``). Prompt lengths enter through their mean there.

**Steady batch** (``stationary_group``). Continuous batching advances every running request by one
iteration per iteration, so a replica is a processor-sharing server whose total speed depends on how
many requests it holds: with ``j`` running, requests leave at rate ``μ_j = j / (I · τ(j))``. Arrivals
are Poisson at ``λ``. The number of requests is then a birth–death chain, ``π_N ∝ Π_{i≤N} λ/μ(i)`` — for
symmetric (processor-sharing) service this stationary law does not depend on the shape of the
output-length distribution, only on its mean. Balanced routing keeps a group's R replicas (the engine
pools a service's alike groups into one) within one request of each other, so the chain runs over the
group's total N with ``μ(N)`` summed over the replicas' batches (R = 1: one replica at its share of the
arrivals, for round-robin). Above
``max_batch`` per replica (``max_seqs``, the KV cache over the mean reservation ``E[P + O]``, and the
token budget) requests queue and leave at ``R·μ_max``; the chain's tail is geometric and exists only when
``λ < R·μ_max``. From ``π``: busy fraction ``E[min(N, R)]/R`` (the share of time a replica iterates,
the request-level kernel's busy seconds per second), mean requests running per replica, and by
Little's law the mean time in the batch ``running / λ``. The chain is where Little's law meets the
roofline.

**Capacity**: ``μ_max`` requests/s per replica (the batch full). **Backlog**: arrivals above capacity
are carried to the next bin, ``B_k = max(0, B_{k−1} + A_k − capacity_k)`` (``fluid_backlog``, vectorised
through Lindley's identity ``B_k = S_k − min_{i≤k} S_i`` over partial sums ``S`` of ``A − capacity``).

**Waiting for admission**: M/M/c whose servers are the batch slots, c = replicas × ``max_batch`` with
μ = ``μ_max / max_batch`` each (``erlang_c``): an arrival waits with probability C, and then
P(W > t) = C·exp(−(cμ − λ)t), where cμ = replicas × ``μ_max`` is the group's capacity.
**Latency mixtures**: every bin contributes a component (a point, an exponential tail and a uniform
part for the backlog, after a shift spread over a slice of the length distribution);
``mixture_quantiles`` inverts the mixture CDF by bisection, vectorised over the components.
``merge_rows`` merges bins whose parameters agree within ``MERGE_STEP`` so the chain and the mixtures run
over load levels, not bins.

Where it is poor: within a bin arrivals are taken as Poisson at the bin's mean rate (traffic bursty on
scales shorter than a bin is smoothed); heavy-tailed prompt or output lengths make the mean-based
iteration time and KV cap optimistic; round-robin routing is taken as a random split; and the Erlang C
wait treats the batch slots as independent servers of equal speed.
"""

from __future__ import annotations

import numpy as np

MAX_CELLS = 1 << 22  # rows × batch sizes evaluated at once (32 MB of float64)
MERGE_STEP = 0.01  # relative spacing of the parameter grid on which bins are merged into load levels
LATENCY_STEP = 0.02  # ... and on which latency components are merged (latency error within 1 %)


def mean_iteration_time_s(batch, decode_tokens, prompt_tokens, prefill_chunks, context_tokens, iterations,
                          flop_per_token, flops_per_s, weight_bytes, kv_bytes_per_token, bytes_per_s, overhead_s,
                          per_token_s=0.0, per_seq_s=0.0, attn_flop_per_token_ctx=0.0):
    """Mean wall time of one iteration [s] of a replica holding ``batch`` requests (see module docstring).

    Per-request means (broadcast against ``batch``): ``decode_tokens`` = E[O] − 1, ``prompt_tokens`` =
    E[P], ``prefill_chunks`` = E[iterations carrying its prompt], ``context_tokens`` = E[Σ context over
    its decode iterations], ``iterations`` = decode_tokens + prefill_chunks. The terms are those of the
    request-level kernel (``serving_reference.iteration_time_s``): decoders pay ``per_seq_s`` each and
    attend their contexts; a prompt attends ``P(P+1)/2`` tokens over its chunks, taken at the mean
    prompt (so it reads low when prompt lengths vary a lot)."""
    share = batch / iterations
    decode = share * decode_tokens
    prompt = share * prompt_tokens
    carrying = np.minimum(share * prefill_chunks, 1.0)
    decode_attended = share * context_tokens
    memory_s = (weight_bytes + kv_bytes_per_token * decode_attended) / bytes_per_s
    per_flop = flop_per_token / flops_per_s
    per_attended = attn_flop_per_token_ctx / flops_per_s
    prompt_attended = share * prompt_tokens * (prompt_tokens + 1.0) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        with_prompt = np.where(carrying > 0, decode + prompt / carrying, decode)
        prompt_attended_here = np.where(carrying > 0, prompt_attended / carrying, 0.0)
    plain_compute = per_flop * decode + per_attended * decode_attended
    return (overhead_s + per_token_s * (decode + prompt) + per_seq_s * decode
            + carrying * np.maximum(per_flop * with_prompt + per_attended * (decode_attended + prompt_attended_here),
                                    memory_s)
            + (1.0 - carrying) * np.maximum(plain_compute, memory_s))


def stationary_group(arrival_per_s, iteration_s, iterations, max_batch, replicas: int, max_states: int = 1 << 16):
    """The birth–death chain of the number of requests N in a group of ``replicas`` balanced replicas, per row.

    ``arrival_per_s`` (rows,) requests/s into the group; ``iteration_s`` (rows, M) the mean iteration time
    with 1..M requests running in a replica; ``iterations`` (rows,) iterations per request; ``max_batch``
    (rows,) ints in 1..M. Balanced routing keeps the replicas' batches within one request of each other,
    so with N = q·R + r in the group, r replicas run q + 1 and R − r run q, and N falls at rate
    ``(R − r)·μ_q + r·μ_{q+1}`` with ``μ_j = j / (I·τ(j))``. Above ``R · max_batch`` requests queue and
    leave at ``R·μ_max`` (a geometric tail, present only when λ < R·μ_max). With ``replicas = 1`` this is
    one replica's chain. When ``R · M`` exceeds ``max_states`` the chain is evaluated every g-th state
    (log-probabilities as g × the step's log-ratio, each state standing for g), which is close when
    g ≪ R.

    Returns per row, per replica: ``busy_frac`` E[min(N, R)]/R (share of time iterating), ``running``
    E[min(N, R·max)]/R (mean batch), ``seen`` E[min(⌊N/R⌋, max)] (requests already in the least-loaded
    replica an arrival joins), ``busy_seen`` P(N ≥ R) (that replica is iterating), ``full_rate_per_s``
    μ_max (requests/s of one replica with a full batch) and ``stable`` (λ < R·μ_max)."""
    lam = np.asarray(arrival_per_s, dtype=np.float64)
    rows, top = iteration_s.shape
    j = np.arange(1, top + 1, dtype=np.float64)
    mu = np.concatenate((np.zeros((rows, 1)), j[None, :] / (iterations[:, None] * iteration_s)), axis=1)
    row = np.arange(rows)
    full_rate = mu[row, max_batch]
    ratio = lam / (replicas * full_rate)
    stable = ratio < 1.0
    safe = np.where(stable, ratio, 0.0)
    step = max(1, -(-replicas * top // max_states))
    count = np.arange(0, replicas * top + 1, step)
    q, r = count // replicas, count % replicas
    inside = count[None, :] <= (replicas * max_batch)[:, None]
    level = np.minimum(q[None, :], max_batch[:, None])
    above = np.minimum(q[None, :] + 1, max_batch[:, None])
    death = (replicas - r)[None, :] * np.take_along_axis(mu, level, axis=1) + r[None, :] * np.take_along_axis(
        mu, above, axis=1)
    with np.errstate(divide="ignore"):
        log_ratio = np.where(inside[:, 1:], np.log(lam[:, None] / death[:, 1:]), 0.0)
    log_pi = np.concatenate((np.zeros((rows, 1)), step * np.cumsum(log_ratio, axis=1)), axis=1)
    log_pi = np.where(inside, log_pi, -np.inf)
    shift = np.max(log_pi, axis=1)
    mass = np.exp(log_pi - shift[:, None]) * np.where(count == 0, 1.0, step)[None, :]
    last = np.exp(log_pi[row, replicas * max_batch // step] - shift) if step == 1 else mass[
        row, (replicas * max_batch) // step] / step
    tail = last * safe / (1.0 - safe)  # states above R·max, each with a full batch everywhere
    total = mass.sum(axis=1) + tail
    n = count[None, :].astype(np.float64)
    busy = ((mass * np.minimum(n, replicas)).sum(axis=1) + replicas * tail) / total / replicas
    running = ((mass * n).sum(axis=1) + replicas * max_batch * tail) / total / replicas
    seen = ((mass * np.minimum(q[None, :], max_batch[:, None])).sum(axis=1) + max_batch * tail) / total
    busy_seen = ((mass * (count >= replicas)[None, :]).sum(axis=1) + tail) / total
    full = max_batch.astype(np.float64)
    return (np.where(stable, busy, 1.0), np.where(stable, running, full), np.where(stable, seen, full),
            np.where(stable, busy_seen, 1.0), full_rate, stable)


def fluid_backlog(offered, capacity):
    """Backlog [requests] left at the end of each bin: ``B_k = max(0, B_{k-1} + offered_k − capacity_k)``,
    ``B_0 = 0``, by Lindley's identity over partial sums (vectorised; no loop over bins)."""
    partial = np.cumsum(np.asarray(offered, dtype=np.float64) - capacity)
    return np.maximum(partial - np.minimum(np.minimum.accumulate(partial), 0.0), 0.0)


def erlang_c(servers: int, offered_load):
    """Erlang C, P(wait) of an M/M/c queue, vectorised over ``offered_load`` a = λ/μ [Erlangs].

    ``C = c·B / (c − a·(1 − B))`` with Erlang B = ``(a^c/c!) / Σ_{k≤c} a^k/k!`` summed in log space over the
    window of k where the Poisson(a) terms are not negligible (mode ± 12·√a + 30), so a group of
    thousands of slots costs a few hundred terms. Equals ``sim.kernels.queueing.erlang_c``; 1 where
    a >= c, 0 where a <= 0."""
    load = np.atleast_1d(np.asarray(offered_load, dtype=np.float64))
    live = (load > 0) & (load < servers)
    a = np.where(live, load, 1.0)
    half = np.ceil(12.0 * np.sqrt(a) + 30.0)
    low = np.maximum(np.minimum(np.floor(a), servers) - half, 0.0)
    width = int(np.minimum(servers - low, 2 * half).max(initial=0.0)) + 1
    k = low[:, None] + np.arange(width)[None, :]
    log_factorial = np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, servers + 1)))))
    inside = k <= servers
    kk = np.minimum(k, servers).astype(np.int64)
    terms = np.where(inside, kk * np.log(a)[:, None] - log_factorial[kk], -np.inf)
    top = terms.max(axis=1)
    log_sum = top + np.log(np.exp(terms - top[:, None]).sum(axis=1))
    blocking = np.exp(servers * np.log(a) - log_factorial[servers] - log_sum)
    c = servers * blocking / (servers - a * (1.0 - blocking))
    out = np.where(load <= 0, 0.0, np.where(load >= servers, 1.0, c))
    return out if np.ndim(offered_load) else float(out[0])


def component_cdf(t, shift, spread, exp_mass, exp_rate, uniform_mass, uniform_low, uniform_high):
    """P(X <= t) of each latency component: ``X = shift + S + W`` with S ~ Uniform(0, ``spread``) (a slice
    of the length distribution) and W = 0, or Exp(``exp_rate``) with probability ``exp_mass``, or
    Uniform(low, high) with probability ``uniform_mass``; closed forms of the convolutions. ``t``
    broadcasts against the components (e.g. shape (K, 1) against (n,))."""
    x = t - shift
    spread_on = spread > 1e-9
    width = np.where(spread_on, spread, 1.0)
    atom = np.where(spread_on, np.clip(x / width, 0.0, 1.0), (x >= 0).astype(np.float64))
    upper = np.maximum(x, 0.0)
    lower = np.where(spread_on, np.maximum(x - spread, 0.0), upper)
    rate = np.where(exp_rate > 0, exp_rate, 1.0)
    with np.errstate(over="ignore", invalid="ignore"):
        gap = upper - lower
        grown = np.where(exp_rate > 0, -np.expm1(-exp_rate * gap) / rate, gap)
        tail = np.where(spread_on, (gap - np.exp(-exp_rate * lower) * grown) / width, -np.expm1(-exp_rate * upper))
    y = x - uniform_low
    span = uniform_high - uniform_low
    plain = np.where(span > 0, np.clip(y / np.where(span > 0, span, 1.0), 0.0, 1.0), (y >= 0).astype(np.float64))
    smeared = (_ramp_integral(y, span) - _ramp_integral(y - spread, span)) / width
    ramp = np.where(spread_on, smeared, plain)
    return (1.0 - exp_mass - uniform_mass) * atom + exp_mass * tail + uniform_mass * ramp


def _ramp_integral(y, span):
    """∫_{-∞}^{y} of the CDF of Uniform(0, span) (span 0: a step at 0)."""
    inside = y * y / (2.0 * np.where(span > 0, span, 1.0))
    return np.where(y <= 0, 0.0, np.where(y >= span, y - span / 2.0, inside))


def mixture_quantiles(probs, weight, shift, spread, exp_mass, exp_rate, uniform_mass, uniform_low, uniform_high,
                      steps: int = 40):
    """Quantiles of the mixture Σ weight·component (``component_cdf``) at ``probs``, by bisection on
    all quantiles at once (``steps`` halvings of [0, largest support]); NaN when the weights are all 0."""
    probs = np.asarray(probs, dtype=np.float64)
    total = float(np.sum(weight))
    if total <= 0:
        return np.full(len(probs), np.nan)
    w = weight / total
    with np.errstate(divide="ignore"):
        far = np.where(exp_mass > 0, 50.0 / np.where(exp_rate > 0, exp_rate, np.inf), 0.0)
    lo = np.zeros(len(probs))
    hi = np.full(len(probs), float(np.max(shift + spread + np.maximum(far, uniform_high))) + 1e-12)
    args = (shift, spread, exp_mass, exp_rate, uniform_mass, uniform_low, uniform_high)
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        below = (component_cdf(mid[:, None], *args) * w).sum(axis=1) >= probs  # no BLAS threads
        hi = np.where(below, mid, hi)
        lo = np.where(below, lo, mid)
    return hi


def mixture_mean(weight, shift, spread, exp_mass, exp_rate, uniform_mass, uniform_low, uniform_high) -> float:
    """Mean of the mixture Σ weight·component; NaN when the weights are all 0."""
    total = float(np.sum(weight))
    if total <= 0:
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = np.where(exp_mass > 0, exp_mass / exp_rate, 0.0)
    each = shift + spread / 2.0 + tail + uniform_mass * 0.5 * (uniform_low + uniform_high)
    return float(np.sum(weight * each) / total)


def merge_rows(keys: list[np.ndarray], values: list[np.ndarray], weight: np.ndarray,
               base: np.ndarray | None = None, step: float = MERGE_STEP) -> tuple[list[np.ndarray], np.ndarray,
                                                                                   np.ndarray]:
    """Merge rows whose ``keys`` agree on a relative grid of ``step`` (zeros apart; rows of different
    ``base`` ints never merge). Returns the ``weight``-weighted means of ``values`` per merged row (plain
    means where the weight is 0), the summed weight, and for every input row its merged row. Dense integer
    codes and ``np.bincount``: no sort unless the combined codes are sparse."""
    key = np.zeros(len(weight), dtype=np.int64) if base is None else base
    for column in keys:
        if len(column) and column.min() != column.max():  # a constant column carries no information
            code, size = _dense(_grid(column, step))
            key, _ = _dense(key * size + code)
    inverse, size = _dense(key)
    total = np.bincount(inverse, weights=weight, minlength=size)
    count = np.bincount(inverse, minlength=size)
    weighted = total > 0
    means = []
    for column in values:
        by_weight = np.bincount(inverse, weights=weight * column, minlength=size) / np.where(weighted, total, 1.0)
        plain = np.bincount(inverse, weights=column, minlength=size) / np.maximum(count, 1)
        means.append(np.where(weighted, by_weight, plain))
    return means, total, inverse


def _grid(values: np.ndarray, step: float) -> np.ndarray:
    """Integer code of each value on a relative grid of ``step``; zero on a code of its own."""
    with np.errstate(divide="ignore", invalid="ignore"):
        code = np.round(np.log(np.abs(values)) * (1.0 / step))
    code = np.where(np.isfinite(code), code, -(1 << 40))
    return (np.sign(values) * (code + (1 << 41))).astype(np.int64)


def _dense(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Renumber integer codes 0..m-1 in increasing order (a lookup table when their span is small)."""
    if len(codes) == 0:
        return codes.astype(np.int64), 0
    low, high = int(codes.min()), int(codes.max())
    if high - low <= 4 * len(codes) + 1024:
        present = np.zeros(high - low + 1, dtype=bool)
        present[codes - low] = True
        number = np.cumsum(present) - 1
        return number[codes - low], int(present.sum())
    unique, inverse = np.unique(codes, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64), len(unique)
