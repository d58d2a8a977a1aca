"""Serving power that follows the work: how much of a chip's dynamic power an iteration or a batch draws.

A replica's chips draw idle power (with the server share) while the replica is active, plus ``activity`` × the
full-load increment (busy − idle) while it iterates (LLM) or serves a batch (ranking), where

    activity = c + (1 − c) · m,   c = compute seconds ÷ the iteration's (batch's) length, at most 1

``compute seconds`` is the roofline's compute term of that iteration or batch (the same term that gives its
length: ``serving_reference.iteration_time_s``, ``RankingCost.batch_time_s``), so the tensor cores draw the full
increment for the time they compute and ``m`` = ``MEMORY_BOUND_ACTIVITY`` for the rest: HBM-bound streaming of
weights, KV cache or embedding rows, and the fixed per-iteration overheads. A prefill of thousands of tokens is
compute-bound (activity near 1), a decode iteration of a small batch memory-bound (near ``m``); a ranking batch
of few items streams the dense weights for little compute (near ``m``) and a large one computes more per byte.
Summed over the work, the *energy-weighted busy seconds* are ``m · busy seconds + (1 − m) · compute seconds``
(the kernels accumulate them per replica and time bin beside the busy seconds; the fluid fidelities from the
compute seconds of the work each bin serves, ``energy_weighted_s``).

Source of ``m``: the packaged Splitwise profiles (``SPLITWISE-PERF``, benchmarks/data/splitwise-perf) carry GPU
power for 120 A100 runs of Llama-2-70B and BLOOM-176B with one request of a prompt up to 1,024 tokens and 128
output tokens, runs whose time is more than 95 % decode: their average power is 0.599 (mean) of the reference
that prefill-heavy runs peak at (1.00-1.04; Patel et al., Splitwise, ISCA 2024: prompt phases draw near TDP).
Taking that reference as the A100's TDP (400 W) and its idle at 50 W (catalog), decode draws
(0.599 × 400 − 50) / (400 − 50) = 0.54 of the dynamic range. Simplifications: one ``m`` for every chip type (the
A100's, an estimate elsewhere); overheads draw like memory-bound work; compute and memory overlap inside an
iteration, so a compute-bound one draws the full increment whatever its memory traffic; the clock does not
change with the activity. The power-cap reservation still counts replicas at full load (conservative).
"""

from __future__ import annotations

import numpy as np

MEMORY_BOUND_ACTIVITY = 0.54  # SPLITWISE-PERF: decode-dominated A100 runs at 0.599 of TDP, idle 50 W (module docstring)


def activity(compute_s, length_s, memory_activity: float = MEMORY_BOUND_ACTIVITY):
    """Share of the full-load increment drawn by work of ``length_s`` [s] whose compute term is ``compute_s``
    [s] (arrays broadcast; a zero length counts as compute-bound)."""
    share = np.minimum(1.0, np.divide(compute_s, length_s, out=np.ones(np.broadcast(compute_s, length_s).shape),
                                      where=np.asarray(length_s) > 0))
    return share + (1.0 - share) * memory_activity


def energy_weighted_s(busy_s, compute_s, memory_activity: float = MEMORY_BOUND_ACTIVITY):
    """Energy-weighted busy seconds of work that kept a replica busy ``busy_s`` and computed ``compute_s`` of it
    (per bin; the compute share is capped at the busy time): ``m · busy + (1 − m) · min(busy, compute)``."""
    busy_s = np.asarray(busy_s, dtype=np.float64)
    return memory_activity * busy_s + (1.0 - memory_activity) * np.minimum(busy_s, compute_s)
