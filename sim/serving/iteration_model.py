"""Calibrated time of one batched LLM serving iteration on a tensor-parallel replica.

The model (units: seconds, FLOP, bytes; one replica of ``n`` chips joined by tensor parallelism):

    iteration_s = overhead_s + per_token_s · tokens + per_seq_s · decoders
                  + max((flop_per_token · tokens + attn_flop_per_token_ctx · attended) / flops_per_s,
                        (weight_bytes + kv_bytes_per_token · context_tokens) / bytes_per_s)

``tokens`` are all tokens of the iteration (prefill tokens + one per decoding request), ``decoders``
the decoding requests, ``context_tokens`` the KV-cache tokens they read (the sum of their contexts)
and ``attended`` the context tokens attended to, summed over the iteration's tokens: a decoding
request its whole context, a causal prefill chunk of ``c`` tokens after ``p`` already prefilled
``c·p + c(c+1)/2`` (the serving kernel's ``prefill_attended``). ``replica_iteration`` fills the nine
parameters from a catalog model and chip:

* **compute** ``flops_per_s = n · peak BF16 · min(1, stack_efficiency · COMPUTE_SCALE)``. The stack
  efficiency (the catalog's MFU-like figure for the service's software stack, porting included) scales
  compute only: it was measured on compute-bound work, while streaming weights and KV from HBM reaches
  a fraction of peak bandwidth set by the memory system (``MEMORY_EFFICIENCY``) on any stack with
  vendor kernels. ``COMPUTE_SCALE`` is the ratio of the compute fraction a prefill reaches to that
  training figure.
* **memory** ``bytes_per_s = n · HBM bandwidth · MEMORY_EFFICIENCY``; ``weight_bytes = 2 · params``
  (BF16/FP16 weights); ``kv_bytes_per_token`` from the catalog.
* **tensor-parallel all-reduce** (only when ``n > 1``): two per layer (after attention and after the
  MLP), a ring over the scale-up fabric (the scale-out network when the replica spans more chips than
  one scale-up domain). Its bytes, ``2(n−1)/n · hidden · 2 B`` per token and all-reduce, are sent at
  ``LINK_EFFICIENCY`` × the per-direction link bandwidth (half the catalog's bidirectional figure):
  that is ``per_token_s``. Its latency, ``2(n−1)`` ring steps of ``ALLREDUCE_STEP_LATENCY_S`` per
  all-reduce, goes into ``overhead_s``.
* **per-layer fixed cost** × layers (kernel launches, synchronisation, host work) goes into
  ``overhead_s``. It is a property of the chip and its serving system, measured by profiling as
  Vidur does per device: the catalog's ``serving_layer_overhead_us``, fitted on the Splitwise
  measurements for A100 (225 µs) and H100 (127 µs); the measured fixed cost per iteration is
  15–45 % higher on DGX-A100 than on DGX-H100 (with the all-reduce latency, the fitted one is 31 %
  higher at TP 8). A chip without a measurement gets ``LAYER_OVERHEAD_S``, the H100
  value: most chips without one are of the H100's generation or later and are served from hosts
  and stacks of that era. A separate per-iteration constant is not kept: fitted on one model it
  cannot be told apart from the per-layer cost.
* **attention FLOPs** ``attn_flop_per_token_ctx = 4 · layers · hidden``: per layer, a query token
  and one context token cost ``2 · hidden`` FLOPs in ``QKᵀ`` and ``2 · hidden`` in attention × V (a
  multiply-add is 2 FLOPs; ``hidden`` = query heads × head size). Hoffmann et al. 2022 (Chinchilla,
  Appendix F) count both products this way; Kaplan et al. 2020, Table 1, count only the first
  (``2 · n_layer · n_ctx · d_attn``). Grouped-query attention shares K and V among query heads, which
  shrinks the KV cache (``kv_bytes_per_token``) but not these FLOPs: every query head still scores
  and sums over every context token. Softmax (a few FLOPs per head and pair) is left out. These
  FLOPs run at the same ``flops_per_s`` as the weight GEMMs.
* **per-decoder cost** ``per_seq_s = PER_SEQ_LAYER_S × layers``, per decoding request and
  iteration, fitted: the work each running sequence adds beyond its FLOPs and KV bytes — a
  per-sequence share of the paged decode-attention kernel (block-table lookups, one small, poorly
  occupied GEMV per sequence and head), sampling and the host's per-sequence bookkeeping (KV
  paging, detokenisation). Prefill tokens do not pay it. It does not shrink with tensor
  parallelism (every chip handles every sequence). It is measured up to 64 decoders only; larger
  batches extrapolate it linearly.

Simplifications: all-reduce and per-layer costs do not overlap compute (as in Megatron-style tensor
parallelism); attention runs at the GEMMs' fraction of peak; the measured prefill cost per token
rises faster with tokens per iteration than these terms do (see README); apart from the per-layer
fixed cost, one set of constants serves every chip, and a chip without a fitted per-layer cost is
assumed to pay the H100's; power capping is not modelled. A model without ``layers`` or ``hidden_size`` gets
them from its parameter count (``params ≈ 12 · layers · hidden²`` with ``hidden = 128 · layers``,
the GPT-3 aspect ratio), an estimate.

Fidelity (``python benchmarks/splitwise_fidelity.py``; constants fitted on Llama-2-70B, BLOOM-176B
held out): see README.md, "Model and limits".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BYTES_PER_VALUE = 2.0          # BF16/FP16 weights and activations
ALLREDUCES_PER_LAYER = 2       # Megatron tensor parallelism: after attention and after the MLP
GPT3_ASPECT = 128              # hidden / layers of GPT-3 175B (12,288 / 96): fallback shape
ATTN_FLOP_PER_LAYER_HIDDEN = 4  # QKᵀ and attention × V, 2 FLOPs per multiply-add each (Chinchilla, App. F)

# Calibration constants. Fitted by `python benchmarks/splitwise_fidelity.py --fit llama2-70b`
# (deterministic coordinate descent, least squares on log(predicted / measured), every device and
# phase weighted equally), together with the per-layer fixed costs of a100-sxm and h100-sxm that the
# catalog holds (serving_layer_overhead_us), on the Splitwise measurements of Llama-2-70B at TP 2/4/8 on DGX-A100 and
# DGX-H100 (benchmarks/data/splitwise-perf/perf_model.csv; SplitwiseSim, MIT). BLOOM-176B is held
# out. MEMORY_EFFICIENCY is a prior, not fitted: Llama-2's decode points hardly constrain it (a free
# fit drifts to 0.58 for a few per cent lower in-sample loss, and BLOOM's decode errors then rise to
# 21-26 %). LINK_EFFICIENCY is far below the ~0.8 of bus bandwidth NCCL reaches: it stands for every
# per-token cost that grows with layers x hidden and with tensor parallelism (replicated norms and
# residuals too).
COMPUTE_SCALE = 1.381               # prefill compute fraction of peak / the stack's training efficiency
MEMORY_EFFICIENCY = 0.85            # prior: a read kernel reaches 88 % of A100 HBM bandwidth and ~90 % is
#                                     the best reported (forums.developer.nvidia.com/t/339083); weight
#                                     streaming in real kernels a few points less
LINK_EFFICIENCY = 0.2065            # achieved fraction of per-direction link bandwidth per all-reduce byte
LAYER_OVERHEAD_S = 1.270e-4         # fixed cost per layer and iteration [s] of a chip without its own
#                                     serving_layer_overhead_us: the fitted h100-sxm value (docstring)
ALLREDUCE_STEP_LATENCY_S = 6.736e-6  # latency per ring step of one all-reduce [s]
PER_SEQ_LAYER_S = 2.715e-6          # cost per layer of each decoding request in an iteration [s]


@dataclass(frozen=True)
class Calibration:
    """The fitted constants as one value, so a fit can try others without touching the module's."""

    compute_scale: float = COMPUTE_SCALE
    memory_efficiency: float = MEMORY_EFFICIENCY
    link_efficiency: float = LINK_EFFICIENCY
    layer_overhead_s: float = LAYER_OVERHEAD_S  # only for chips without serving_layer_overhead_us
    allreduce_step_latency_s: float = ALLREDUCE_STEP_LATENCY_S
    per_seq_layer_s: float = PER_SEQ_LAYER_S


def model_shape(model) -> tuple[int, int]:
    """(layers, hidden size) of an LLM: the catalog's values, or the GPT-3-aspect estimate."""
    layers, hidden = model.layers, model.hidden_size
    if layers is None and hidden is None:
        layers = max(1, round((model.params / (12.0 * GPT3_ASPECT ** 2)) ** (1.0 / 3.0)))
        hidden = GPT3_ASPECT * layers
    elif layers is None:
        layers = max(1, round(model.params / (12.0 * hidden ** 2)))
    elif hidden is None:
        hidden = max(1, round((model.params / (12.0 * layers)) ** 0.5))
    return layers, hidden


def allreduce_link_bytes_per_s(chip, chips_per_replica: int) -> float:
    """Per-direction bandwidth [B/s] of the ring: scale-up fabric inside one domain, else scale-out."""
    bidirectional_gbps = (chip.scale_up_bandwidth_gbps if chips_per_replica <= chip.scale_up_domain_chips
                          else chip.scale_out_bandwidth_gbps)
    return bidirectional_gbps * 1e9 / 2.0


def layer_overhead_s(chip, calibration: Calibration | None = None) -> float:
    """Fixed cost per layer and iteration [s]: the chip's fitted ``serving_layer_overhead_us``, or,
    for a chip without one, the calibration's default (``LAYER_OVERHEAD_S``)."""
    measured_us = getattr(chip, "serving_layer_overhead_us", None)
    if measured_us is not None:
        return measured_us * 1e-6
    return (calibration or Calibration()).layer_overhead_s


def replica_iteration(model, chip, chips_per_replica: int, stack_efficiency: float,
                      calibration: Calibration | None = None) -> dict:
    """The nine parameters of ``iteration_time_s`` for one replica (SI units, see module docstring).

    ``model`` is a catalog ``ModelSpec``, ``chip`` an ``AcceleratorSpec``; ``stack_efficiency`` the
    chip's fraction of peak for the service's stack (0 < e ≤ 1)."""
    cal = calibration or Calibration()
    n = int(chips_per_replica)
    if n < 1 or not 0.0 < stack_efficiency <= 1.0:
        raise ValueError(f"need chips_per_replica >= 1 and 0 < stack_efficiency <= 1, "
                         f"got {chips_per_replica} and {stack_efficiency}")
    layers, hidden = model_shape(model)
    layer_s = layer_overhead_s(chip, cal)
    allreduces = ALLREDUCES_PER_LAYER * layers if n > 1 else 0
    ring_share = 2.0 * (n - 1) / n
    link = cal.link_efficiency * allreduce_link_bytes_per_s(chip, n)
    return {
        "flop_per_token": float(model.infer_flop_per_sample),
        "flops_per_s": n * chip.peak_flops * min(1.0, stack_efficiency * cal.compute_scale),
        "weight_bytes": BYTES_PER_VALUE * model.params,
        "kv_bytes_per_token": float(model.kv_bytes_per_token),
        "bytes_per_s": n * chip.memory_bandwidth_tbps * 1e12 * cal.memory_efficiency,
        "overhead_s": layers * layer_s + allreduces * 2 * (n - 1) * cal.allreduce_step_latency_s,
        "per_token_s": allreduces * ring_share * hidden * BYTES_PER_VALUE / link,
        "per_seq_s": layers * cal.per_seq_layer_s,
        "attn_flop_per_token_ctx": float(ATTN_FLOP_PER_LAYER_HIDDEN * layers * hidden),
    }


def iteration_time_s(params: dict, tokens, decoders, context_tokens, attended_tokens):
    """Wall time of one iteration [s]: the serving kernel's formula, on scalars or NumPy arrays.

    ``tokens``: prefill tokens + one per decoding request; ``decoders``: decoding requests;
    ``context_tokens``: KV tokens the decoding requests read; ``attended_tokens``: context tokens
    attended to, summed over all tokens (module docstring)."""
    compute_s = (params["flop_per_token"] * tokens
                 + params["attn_flop_per_token_ctx"] * attended_tokens) / params["flops_per_s"]
    memory_s = (params["weight_bytes"] + params["kv_bytes_per_token"] * context_tokens) / params["bytes_per_s"]
    return (params["overhead_s"] + params["per_token_s"] * tokens + params["per_seq_s"] * decoders
            + np.maximum(compute_s, memory_s))
