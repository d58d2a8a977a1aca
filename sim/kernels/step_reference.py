"""Readable twin of ``sim.kernels.step_compiled``: one training step of a parallel layout on each pool.

Arrays in, arrays out. Rows are *candidates* (a job shape with one layout: model, sequence, batch and the
tensor/pipeline/data/context/expert split); columns are pools. Computed once per unique (shape, pool),
never per job. Units: seconds, bytes, FLOP.

Notation (per candidate): ``N`` total and ``Na`` activated parameters, ``Ne`` expert parameters (0 for a
dense model), ``L`` layers, ``h`` hidden size, ``a`` attention heads, ``s`` sequence length [tokens], ``B``
global batch [sequences], layout ``tp, pp, dp, cp, ep`` and ``v`` virtual pipeline stages per device, ZeRO
stage ``z`` (FSDP = 3), micro-batch ``mb`` [sequences], recomputation ``r`` (0 none, 1 selective, 2 full).
Ranks are ordered tp (innermost), cp, pp, dp: tensor ranks are adjacent, pipeline neighbours ``tp·cp`` apart,
data-parallel (and expert) ranks ``tp·cp·pp`` apart.

* micro-batches per step ``m = B / (dp·mb)``; tokens per micro-batch per tensor group ``T = mb·s/cp``.
* FLOP per token (NARAYANAN2021 eq. 3 without the logit term, which ``6·Na`` already counts; KORTHIKANTI2022):
  model ``f = 6·Na + 12·L·h·s`` (dense GEMMs forward and backward + attention scores and values);
  hardware ``f_hw = f + 4·L·h·s`` with selective recomputation (the attention core again),
  ``f + 2·Na + 4·L·h·s`` with full recomputation (the whole forward again).
* shape efficiency (GEMMs on few tokens or on narrow tensor-parallel shards run below peak; a saturating
  curve, ``SHAPE_TOKENS`` and ``SHAPE_WIDTH`` are estimates calibrated on benchmarks/training_fidelity.py):
  ``e_shape = (1 − exp(−T/SHAPE_TOKENS)) · (1 − exp(−(h/tp)/SHAPE_WIDTH))``; the chip then runs at
  ``peak · min(1, eff_stack · EFFICIENCY_PLATEAU) · e_shape`` — the stack's catalog efficiency (an end-to-end,
  MFU-like fraction) scaled to the GEMMs alone is the cap.
* compute per micro-batch and stage: ``c = T·f_hw / (tp·pp) / (peak·min(1, eff_stack·EFFICIENCY_PLATEAU)·e_shape)``.
* memory traffic per micro-batch and stage (roofline): local parameters ``P = (N−Ne)/(tp·pp) + Ne/(tp·pp·ep)``;
  bf16 weights read forward and backward and gradients written, activations written and read:
  ``mem = (3·2·P + 2·act·T·L/pp) / hbm_bandwidth``.
* memory-bound kernels between the GEMMs (layer norms, bias-GeLU, bias-dropout-residual; and, where the attention
  scores are materialized — ``materialized_attention``, no flash attention — the scale-mask-softmax and dropout on
  the ``a·s`` scores of each token), run in series with the GEMMs at the HBM bandwidth:
  ``x = T·L/pp · (ELEMENTWISE_BYTES·n_e·h/tp + [materialized] SCORE_BYTES·n_s·a·s/tp) / hbm_bandwidth`` with
  ``n_e = 3`` passes' worth (forward once, backward about twice the forward's bytes; 4 with full recomputation)
  and ``n_s = 3`` (4 with selective or full recomputation, which repeat the attention core). Per token and layer
  this is ∝ h (scores: ∝ a·s) against the GEMMs' ∝ h², so it weighs on narrow models: with materialized scores
  a 1.7B model (h = 2,304, 24 heads, s = 2,048) on an A100 spends ~30 % of its micro-batch in it, a 1T model
  (h = 25,600, tp = 8) ~3 %. The micro-batch runs ``w = max(c, mem) + x``.
* tensor parallel (inside the scale-up domain): 4 all-reduces per layer (2 forward, 2 backward; 6 with full
  recomputation) of ``T·h·2`` bytes over the tp ranks; ring all-reduce ``2·(n−1)/n·D/bw + 2·(n−1)·latency``.
* context parallel (ring attention, LIU2023): per layer ``3·(cp−1)`` passes of the K,V chunk ``4·T·h/tp`` bytes
  (forward K,V; backward K,V and their gradients) at the level the ``cp·tp`` chips span, hidden behind the
  attention compute of the layer: only ``max(0, comm − attention compute)`` is exposed.
* expert parallel (MoE): 4 all-to-alls per layer (dispatch and combine, forward and backward) of
  ``T/tp · k · h · 2`` bytes per chip (k = experts per token); a share ``(n_k − n_{k−1})/n`` of the peers is
  reached at level k, so its bytes move at that level's bandwidth.
* a micro-batch on one stage: ``t = w + tp_comm + ep_comm + exposed cp_comm``; pipeline point-to-point:
  ``q = 2·(T·h·2/tp / bw + latency)`` (activation forward, gradient backward) between stages ``tp·cp`` apart, at
  the level the ``pp·cp·tp`` chips span (the slowest stage boundary).
* pipeline (1F1B, NARAYANAN2021; interleaved with ``v`` virtual stages per device, §2.2.2):
  ``m·(t + v·q) + (pp − 1)·(t/v + q)``; the bubble ``(pp − 1)·(t/v + q)`` is its ``(pp−1)/(v·m+pp−1)`` share
  (``(pp−1)/(m+pp−1)`` without interleaving), while every micro-batch crosses ``v`` times more stage boundaries.
* data parallel over the levels the dp group spans (hierarchical: reduce-scatter inside the inner level,
  then across the next on ``1/inner`` of the data, ...; all-gather the reverse), on ``G = 2·P`` bytes:
  ZeRO 0–2: one reduce-scatter + one all-gather per step (= an all-reduce), overlapped with the last
  micro-batch's ``w`` by ``DP_OVERLAP``; ZeRO 3 (FSDP): two all-gathers per micro-batch and one reduce-
  scatter per step, overlapped with all ``m·w`` by ``DP_OVERLAP``. Exposed: ``max(0, comm − DP_OVERLAP·window)``.
  A level whose ``torus_dims`` are set (TPU slice) runs a multi-dimensional ring: the same bytes at the
  level's (total, one-way) bandwidth, ``Σ(dᵢ − 1)`` latency steps instead of ``n − 1``.
* step ``= pipeline + exposed dp``; ``MFU = B·s·f / (chips · peak · step)``.
* bottleneck: the largest of compute (``m·c`` where compute-bound), memory (``m·mem`` where memory-bound, + ``m·x``),
  scale-up network (level-0 parts of every exchange), scale-out network (levels ≥ 1), pipeline bubble;
  returned as a code (``BOTTLENECKS``) and its share of the step. The five terms add up to the step; the compute
  and memory terms' shares are returned too (the rest is communication and bubble waits), for the power a step
  draws (``sim.training.power``).

Memory per chip (must fit ``memory_bytes``; ZERO2020, KORTHIKANTI2022): training state ``bpp`` bytes per local
parameter split as 2 B weights (sharded over dp at ZeRO 3), 2 B gradients (at ZeRO ≥ 2) and ``bpp − 4`` B
optimizer (at ZeRO ≥ 1); expert parameters shard over ``dp/ep``. Activations per token and layer: ``34·h/tp``
without or with selective recomputation (attention is a fused kernel, DAO2022, so KORTHIKANTI2022's ``5·a·s``
score term is not stored; it is, ``5·a·s/tp``, where the scores are materialized and nothing is recomputed),
``2·h/tp`` with full recomputation (plus one layer's ``34·h/tp·T`` working set);
the first stage holds ``min(m, pp)`` micro-batches of ``L/pp`` layers.

Simplifications: the MoE expert GEMMs are taken at the dense shape efficiency; no interleaved schedule,
optimizer step or embedding/logit imbalance between stages; all-to-alls and tensor all-reduces are not
overlapped; every chip of a domain drives its own NIC at the outer levels; the memory-bound kernels between the
GEMMs split over tp (sequence parallelism, KORTHIKANTI2022) even where a run replicated them, and never overlap
the GEMMs.
"""

from __future__ import annotations

import numpy as np

from sim.kernels.reference import (
    BF16_BYTES,
    STATUS_GANG_TOO_LARGE,
    STATUS_OK,
    STATUS_OUT_OF_MEMORY,
    STATUS_STACK_UNSUPPORTED,
)

STATUS_TP_WIDER_THAN_DOMAIN = 4
BOTTLENECKS = ("compute", "memory", "scale-up-network", "scale-out-network", "pipeline-bubble")

# estimate: calibrated on benchmarks/training_fidelity.py (109 public MFU/step-time rows; `--fit` grids these four
# constants, SHAPE_TOKENS 256–2048, SHAPE_WIDTH 64–512, EFFICIENCY_PLATEAU 1.15–1.60, DP_OVERLAP 0.6–0.95, and keeps
# the lowest median error among those with every ordering right: 5.8 %, 13/13; ELEMENTWISE_BYTES and SCORE_BYTES
# stay at their counted values, which a wider grid moves by < 0.3 points of median); a GEMM of T tokens
# reaches 1 − e^(−T/SHAPE_TOKENS) of its large-shape rate, and a tensor-parallel shard of width h/tp
# 1 − e^(−(h/tp)/SHAPE_WIDTH): both near 1 for the thousands of tokens and widths ≥ 1k of large runs
SHAPE_TOKENS = 1024.0
SHAPE_WIDTH = 256.0
# estimate: calibrated on benchmarks/training_fidelity.py; the catalog's stack efficiencies are end-to-end MFU-like
# fractions of well-tuned jobs, which already carry their communication and pipeline losses; the GEMMs alone run
# faster, so the compute term runs at stack efficiency × EFFICIENCY_PLATEAU (at most peak)
EFFICIENCY_PLATEAU = 1.425
# estimate: bytes moved through HBM per token, layer and unit of h/tp by the memory-bound kernels between the GEMMs
# in one forward pass (Megatron-LM's fused kernels, NARAYANAN2021): layer norms 2 × (2h read + 2h written),
# bias-dropout-residual 2 × (4h read + 2h written + h mask), bias-GeLU 8h read + 8h written on the 4h-wide MLP
# = 38 (KORTHIKANTI2022 §4.1 lists these activations); the backward pass moves about twice the forward's bytes
ELEMENTWISE_BYTES = 38.0
# estimate: bytes per attention-score element (a·s per token) in one forward pass where the scores are materialized
# (no fused flash attention, DAO2022; Megatron-LM 2021–22): the batched QKᵀ writes 2, scale-mask-softmax reads 2 and
# writes 2, dropout reads 2, writes 2 and a 1-byte mask, the score-value product reads 2 = 13
SCORE_BYTES = 13.0
# estimate: share of the overlap window in which data-parallel collectives actually run hidden (bucketed
# gradient reduce-scatter and parameter prefetch lose some of it to stream contention and the first/last bucket)
DP_OVERLAP = 0.95


def _levels_split(n, stride, chips):
    """Group sizes covered by each level: n_k = ranks of the group inside one level-k node (n_2 = n)."""
    out = []
    for k in range(chips.shape[1]):
        cap = np.maximum(1.0, np.floor(chips[:, k][None, :] / stride))
        out.append(np.minimum(n, cap) if k < chips.shape[1] - 1 else n + 0.0 * cap)
    return out


def _level_of(span, chips):
    """C×P index of the innermost level whose node holds ``span`` consecutive chips (0, 1 or 2)."""
    return np.where(span <= chips[:, 0][None, :], 0, np.where(span <= chips[:, 1][None, :], 1, 2))


def _at_level(values, level):
    """C×P: the pool's value (P×3 ``values``) at each candidate's level."""
    return np.take_along_axis(np.broadcast_to(values[None, :, :], level.shape + (3,)), level[..., None],
                              axis=2)[..., 0]


def _hier_rs(n, stride, data, chips, bw, lat, torus_steps):
    """Hierarchical reduce-scatter (= all-gather) time of ``data`` bytes per chip over a group of n ranks
    ``stride`` apart: (level-0 seconds, outer-level seconds)."""
    sizes = _levels_split(n, stride, chips)
    up = np.zeros(np.broadcast_shapes(np.shape(n), np.shape(stride), (1, chips.shape[0])))
    out = np.zeros_like(up)
    prev = np.ones_like(up)
    remaining = data * np.ones_like(up)
    for k, nk in enumerate(sizes):
        g = np.maximum(nk / prev, 1.0)
        steps = np.where((k == 0) & (torus_steps[None, :] > 0), np.minimum(g - 1.0, torus_steps[None, :]), g - 1.0)
        t = np.where(g > 1.0, (g - 1.0) / g * remaining / bw[:, k][None, :] + steps * lat[:, k][None, :], 0.0)
        if k == 0:
            up = up + t
        else:
            out = out + t
        remaining = remaining / g
        prev = np.maximum(prev, nk)
    return up, out


def _all_to_all(n, stride, data, chips, bw, lat):
    """All-to-all of ``data`` bytes per chip over n ranks ``stride`` apart: (level-0 s, outer-level s)."""
    sizes = _levels_split(n, stride, chips)
    up = np.zeros(np.broadcast_shapes(np.shape(n), np.shape(stride), (1, chips.shape[0])))
    out = np.zeros_like(up)
    prev = np.ones_like(up)
    for k, nk in enumerate(sizes):
        share = np.maximum(nk - prev, 0.0) / n
        t = np.where(nk > prev, share * data / bw[:, k][None, :] + lat[:, k][None, :], 0.0)
        if k == 0:
            up = up + t
        else:
            out = out + t
        prev = np.maximum(prev, nk)
    return up, out


def step_time_s(params, active_params, expert_params, layers, hidden, heads, experts_per_token, bytes_per_param,
                seq_len, global_batch, tp, pp, dp, cp, ep, zero, micro_batch, recompute, virtual_stages,
                materialized_attention, peak_flops, memory_bandwidth_bps, memory_bytes, level_chips,
                level_bandwidth_bps, level_latency_s, torus_dims, max_gang_chips, efficiency):
    """Step time of each candidate (length C) on each pool (length P); see the module docstring.

    ``level_*`` and ``torus_dims`` are P×3 (``sim.fleet.network.level_arrays``); ``efficiency`` is C×P;
    ``materialized_attention`` (length C) is 1 where the attention scores go through HBM, else 0.
    Returns ``(step_s, mfu, bottleneck, share, status, compute_share, memory_share)``, each C×P: step time [s]
    (inf where the candidate cannot run), MFU [-], the bottleneck's code in ``BOTTLENECKS`` and its share of the
    step, a status (``STATUS_OK`` or why not: stack, out of memory, gang too large, tp wider than the domain), and
    the shares of the step in the compute term and in the memory term (0 where it cannot run)."""
    col = lambda x: np.asarray(x, dtype=np.float64)[:, None]  # noqa: E731
    N, Na, Ne, L, h, a, k_e, bpp = map(col, (params, active_params, expert_params, layers, hidden, heads,
                                             experts_per_token, bytes_per_param))
    s, B, tp, pp, dp, cp, ep, z, mb, r, v, mat = map(col, (seq_len, global_batch, tp, pp, dp, cp, ep, zero,
                                                           micro_batch, recompute, virtual_stages,
                                                           materialized_attention))
    chips, bw, lat = level_chips, level_bandwidth_bps, level_latency_s
    torus_steps = np.where(torus_dims[:, 0] > 0, np.maximum(torus_dims - 1.0, 0.0).sum(axis=1), 0.0)
    peak = peak_flops[None, :]
    eff = efficiency
    g = tp * pp * dp * cp
    m = B / (dp * mb)
    T = mb * s / cp
    f_model = 6.0 * Na + 12.0 * L * h * s
    f_hw = f_model + np.where(r == 2, 2.0 * Na + 4.0 * L * h * s, np.where(r == 1, 4.0 * L * h * s, 0.0))
    shape = (1.0 - np.exp(-T / SHAPE_TOKENS)) * (1.0 - np.exp(-(h / tp) / SHAPE_WIDTH))
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = peak * np.minimum(eff * EFFICIENCY_PLATEAU, 1.0) * shape
        c = T * f_hw / (tp * pp) / rate
        attention = T * 12.0 * L * h * s / (tp * pp) / rate
        P = (N - Ne) / (tp * pp) + Ne / (tp * pp * ep)
        act = np.where(r == 2, 2.0 * h / tp, 34.0 * h / tp + np.where((mat > 0) & (r == 0), 5.0 * a * s / tp, 0.0))
        mem = (3.0 * BF16_BYTES * P + 2.0 * act * T * L / pp) / memory_bandwidth_bps[None, :]
        # memory-bound kernels between the GEMMs (elementwise; attention scores where materialized), in series
        passes_e = np.where(r == 2, 4.0, 3.0)
        passes_s = np.where(r >= 1, 4.0, 3.0)
        other = T * L / pp * (ELEMENTWISE_BYTES * passes_e * h / tp
                              + np.where(mat > 0, SCORE_BYTES * passes_s * a * s / tp, 0.0))
        x = other / memory_bandwidth_bps[None, :]
        w = np.maximum(c, mem) + x
        compute_bound = c >= mem
        # tensor parallel: ring all-reduce = reduce-scatter + all-gather of T·h·2 bytes, inside the domain
        n_ar = np.where(r == 2, 6.0, 4.0) * L / pp
        tp_up, tp_out = _hier_rs(tp, 1.0, T * h * BF16_BYTES, chips, bw, lat, torus_steps)
        tp_up, tp_out = np.where(tp > 1, 2.0 * n_ar * tp_up, 0.0), np.where(tp > 1, 2.0 * n_ar * tp_out, 0.0)
        # context parallel ring attention, hidden behind the attention compute
        cp_level = _level_of(cp * tp, chips)
        cp_bw = _at_level(bw, cp_level)
        cp_comm = np.where(cp > 1, L / pp * 3.0 * (cp - 1.0) * 4.0 * T * h / tp / cp_bw, 0.0)
        cp_exposed = np.maximum(cp_comm - attention, 0.0)
        cp_is_up = cp_level == 0
        # expert parallel all-to-all
        ep_up, ep_out = _all_to_all(ep, tp * cp * pp, T / tp * k_e * h * BF16_BYTES, chips, bw, lat)
        ep_up, ep_out = np.where(ep > 1, 4.0 * L / pp * ep_up, 0.0), np.where(ep > 1, 4.0 * L / pp * ep_out, 0.0)
        t = w + tp_up + tp_out + ep_up + ep_out + cp_exposed
        # pipeline point-to-point between neighbours tp·cp apart
        q_level = _level_of(pp * tp * cp, chips)
        q_bw, q_lat = _at_level(bw, q_level), _at_level(lat, q_level)
        q = np.where(pp > 1, 2.0 * (T * h * BF16_BYTES / tp / q_bw + q_lat), 0.0)
        pipeline = m * (t + v * q) + (pp - 1.0) * (t / v + q)
        bubble = (pp - 1.0) * (t / v + q)
        # data parallel, hierarchical over the levels the group spans
        rs_up, rs_out = _hier_rs(dp, tp * cp * pp, BF16_BYTES * P, chips, bw, lat, torus_steps)
        times = np.where(z >= 3, 2.0 * m + 1.0, 2.0)
        dp_up, dp_out = np.where(dp > 1, times * rs_up, 0.0), np.where(dp > 1, times * rs_out, 0.0)
        window = DP_OVERLAP * np.where(z >= 3, m * w, w)
        dp_comm = dp_up + dp_out
        exposed = np.maximum(dp_comm - window, 0.0)
        step = pipeline + exposed
        mfu = B * s * f_model / (g * peak * step)
        # bottleneck: shares of the step
        scale = np.where(dp_comm > 0, exposed / dp_comm, 0.0)
        cp_up = np.where(cp_is_up, cp_exposed, 0.0)
        cp_out = np.where(cp_is_up, 0.0, cp_exposed)
        q_up = np.where(q_level == 0, v * q, 0.0)
        run = m + np.zeros_like(bubble)
        terms = np.stack([
            np.where(compute_bound, run * (w - x), 0.0),
            np.where(compute_bound, 0.0, run * (w - x)) + run * x,
            run * (tp_up + ep_up + cp_up + q_up) + scale * dp_up,
            run * (tp_out + ep_out + cp_out + (v * q - q_up)) + scale * dp_out,
            bubble,
        ], axis=-1)
        bottleneck = np.argmax(terms, axis=-1).astype(np.int8)
        share = np.max(terms, axis=-1) / step
        compute_share, memory_share = terms[..., 0] / step, terms[..., 1] / step
        # memory per chip
        dense_local = (N - Ne) / (tp * pp)
        expert_local = Ne / (tp * pp * ep)
        state_per = lambda shard: (2.0 / np.where(z >= 3, shard, 1.0) + 2.0 / np.where(z >= 2, shard, 1.0)  # noqa: E731
                                   + (bpp - 4.0) / np.where(z >= 1, shard, 1.0))
        states = dense_local * state_per(dp) + expert_local * state_per(np.maximum(dp / ep, 1.0))
        in_flight = np.minimum(m, pp)
        activations = act * T * L / pp * in_flight + np.where(r == 2, 34.0 * h / tp * T, 0.0)
        resident = states + activations
    status = np.zeros(step.shape, dtype=np.int8)
    status[resident > memory_bytes[None, :]] = STATUS_OUT_OF_MEMORY
    status[np.broadcast_to(tp > chips[:, 0][None, :], status.shape)] = STATUS_TP_WIDER_THAN_DOMAIN
    status[np.broadcast_to(g > max_gang_chips[None, :], status.shape)] = STATUS_GANG_TOO_LARGE
    status[eff <= 0.0] = STATUS_STACK_UNSUPPORTED
    ok = status == STATUS_OK
    step = np.where(ok, step, np.inf)
    return (step, np.where(ok, mfu, 0.0), np.where(ok, bottleneck, 0).astype(np.int8), np.where(ok, share, 0.0),
            status, np.where(ok, compute_share, 0.0), np.where(ok, memory_share, 0.0))
