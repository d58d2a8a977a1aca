"""Performance model of a DLRM-class ranking model on one replica: batch service time, memory fit, cost rate.

A batch of B requests with S items in total takes (seconds)::

    overhead + max(compute_per_item · S, dense_weights_time + embedding_per_item · S)

* **compute**: ``infer_flop_per_sample`` per item over ``chips × peak × stack efficiency`` (the MLPs and the
  feature interaction; embedding pooling moves bytes, not FLOPs).
* **dense weights**: the MLP weights (``params − embedding_params``, bf16) are streamed once per batch from
  device memory — what batching amortizes.
* **embeddings**: each item reads ``lookups_per_item`` rows of ``embedding_dim`` values. Row popularity
  follows a power law (Zipf, exponent ``embedding_zipf_alpha``), the skew that RecNMP (ISCA 2020),
  Acun et al. (HPCA 2021) and the MTIA papers (ISCA 2023/2025) exploit with on-chip caches. On-chip SRAM
  (``sram_mb``, ``SRAM_CACHE_FRAC`` of it) holds the hottest rows as a static cache; the hit rate is the
  Zipf mass of the cached ranks. A lookup costs ``row_bytes / sram_bandwidth`` on a hit and
  ``row_bytes / memory_bandwidth`` on a miss (served one after the other, not overlapped), both at
  ``GATHER_EFFICIENCY``. A chip without a known SRAM bandwidth caches nothing.
* **placement**: the tables live in device memory, sharded row-wise (hashed) over the replica's chips, so
  capacity, bandwidth and SRAM add up over chips and each chip caches the hot rows of its shard. The
  all-to-all of pooled embeddings between chips is not modelled (small next to the lookups on a fast
  fabric; it would matter on PCIe-only ASICs split over several chips).
* **fit**: dense weights + tables must fit in ``USABLE_MEMORY_FRAC`` of the replica's device memory; what
  is left holds activations, ``activation_bytes_per_sample`` per item in a batch (the catalog value is a
  training figure, so an upper bound here), which caps the items of one batch.

Compute and memory overlap (a roofline), as in the LLM iteration model; the whole model is an
uncalibrated estimate from catalog numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DENSE_BYTES_PER_PARAM = 2.0   # estimate: bf16 MLP weights for serving
OVERHEAD_S = 0.0005           # estimate: per-batch cost (input copy, kernel launches, framework)
GATHER_EFFICIENCY = 0.8       # estimate: share of peak bandwidth a gather of 256-512 B rows reaches
SRAM_CACHE_FRAC = 0.75        # estimate: share of on-chip SRAM given to the embedding cache
USABLE_MEMORY_FRAC = 0.9      # as kv_capacity_tokens for LLMs (runtime, fragmentation)
MAX_ITEMS_CAP = 1 << 40       # "no limit" when a model declares no activation memory


@dataclass(frozen=True)
class RankingCost:
    """Per-replica constants of the batch service time (seconds) and the batch size limit (items)."""

    overhead_s: float
    compute_s_per_item: float
    weights_s: float
    embedding_s_per_item: float
    hit_rate: float
    max_items: int

    def batch_time_s(self, items: int) -> float:
        """Service time of one batch holding ``items`` items in total [s]."""
        return self.overhead_s + max(self.compute_s_per_item * items,
                                     self.weights_s + self.embedding_s_per_item * items)


def zipf_hit_rate(cached_rows: float, total_rows: float, alpha: float) -> float:
    """Share of lookups that hit the ``cached_rows`` most popular of ``total_rows`` rows when row k (by
    rank) is read with probability ∝ k^−alpha: H(cached, alpha) / H(total, alpha)."""
    if cached_rows < 1 or total_rows < 1:
        return 0.0
    if cached_rows >= total_rows:
        return 1.0
    return _harmonic(cached_rows, alpha) / _harmonic(total_rows, alpha)


def _harmonic(n: float, alpha: float) -> float:
    """Generalized harmonic number Σ_{k=1..n} k^−alpha: exact up to 10,000 terms, then Euler–Maclaurin."""
    n = math.floor(n)
    head = min(n, 10_000)
    total = math.fsum(k ** -alpha for k in range(1, head + 1))
    if n == head:
        return total
    a, b = float(head), float(n)
    integral = math.log(b / a) if alpha == 1.0 else (b ** (1 - alpha) - a ** (1 - alpha)) / (1 - alpha)
    # Σ_{k=a+1..b} f(k) ≈ ∫_a^b f + (f(b) − f(a))/2 − (f'(b) − f'(a))/12, f' = −alpha·x^(−alpha−1)
    return (total + integral + (b ** -alpha - a ** -alpha) / 2
            + alpha * (b ** (-alpha - 1) - a ** (-alpha - 1)) / 12)


def model_bytes(model) -> float:
    """Device memory a replica needs for the model: dense weights (bf16) + embedding tables as stored [B]."""
    return (model.params - model.embedding_params) * DENSE_BYTES_PER_PARAM + model.embedding_bytes


def free_bytes(model, chip, chips: int) -> float:
    """Usable device memory of ``chips`` chips left after the model [B]; negative: it does not fit."""
    return chips * chip.memory_gb * 1e9 * USABLE_MEMORY_FRAC - model_bytes(model)


def row_bytes(model) -> float:
    """Bytes of one embedding row as stored [B]."""
    if model.embedding_params <= 0 or model.embedding_dim <= 0:
        return 0.0
    return model.embedding_bytes / model.embedding_params * model.embedding_dim


def hit_rate(model, chip, chips: int) -> float:
    """Share of lookups served from on-chip SRAM (hot-row cache over all the replica's chips)."""
    if not chip.sram_mb or not chip.sram_bandwidth_tbps or row_bytes(model) <= 0:
        return 0.0
    cached = chips * chip.sram_mb * 1e6 * SRAM_CACHE_FRAC / row_bytes(model)
    return zipf_hit_rate(cached, model.embedding_params / model.embedding_dim, model.embedding_zipf_alpha)


def ranking_cost(model, chip, chips: int, efficiency: float, overhead_s: float = OVERHEAD_S) -> RankingCost:
    """The batch-time constants of ``model`` on a replica of ``chips`` × ``chip`` at ``efficiency`` of peak."""
    dram = chips * chip.memory_bandwidth_tbps * 1e12 * GATHER_EFFICIENCY
    h = hit_rate(model, chip, chips)
    sram = chips * (chip.sram_bandwidth_tbps or 1.0) * 1e12 * GATHER_EFFICIENCY
    lookup_bytes = model.lookups_per_item * row_bytes(model)
    activation = model.activation_bytes_per_sample
    room = free_bytes(model, chip, chips)
    max_items = MAX_ITEMS_CAP if activation <= 0 else int(max(0.0, room) // activation)
    return RankingCost(
        overhead_s=overhead_s,
        compute_s_per_item=model.infer_flop_per_sample / (chips * chip.peak_flops * efficiency),
        weights_s=(model.params - model.embedding_params) * DENSE_BYTES_PER_PARAM / dram,
        embedding_s_per_item=lookup_bytes * (h / sram + (1.0 - h) / dram),
        hit_rate=h,
        max_items=min(max_items, MAX_ITEMS_CAP))


def cost_per_s(pool, chips: int, pue: float, usd_per_kwh: float) -> float:
    """What a replica costs while it serves [USD/s] (``ResolvedPool.full_load_cost_usd_per_s``)."""
    return pool.full_load_cost_usd_per_s(chips, pue, usd_per_kwh)
