"""Headroom of an LLM replica: how many requests its batch holds, and its output-token rate at full batches.

A replica's *saturation rate* is the fluid model's capacity (``sim.kernels.fluid.stationary_group``'s
``full_rate``) in output tokens: with a full batch of ``cap`` requests of the traffic's mean shape, a
request leaves every ``iterations · τ(cap) / cap`` seconds, where ``τ(cap)`` is the mean iteration time
(prefill chunks and decode tokens mixed, ``sim.kernels.fluid.mean_iteration_time_s``) and ``iterations``
= E[O] − 1 decode iterations + E[prompt chunks]; so ``saturation = cap · E[O] / (iterations · τ(cap))``
[tokens/s]. ``cap`` = min(``max_seqs``, ``token_budget``, KV capacity ÷ E[P + O]), at least 1.

Both fidelities use it: the fluid model with its per-bin moments (the rate at which its backlog starts
to grow), the request level with the moments of the service's offered requests that the group's KV
cache can hold. It is larger than the nominal decode rate used for routing (``tokens_per_s``, a full
batch of 1,024-token contexts with no prefill) when contexts are short, smaller when prompts are long.
"""

from __future__ import annotations

import numpy as np

from sim.serving.fluid.latency import iteration_s
from sim.serving.fluid.traffic import Lengths, TraceLengths


def per_request_means(lengths: Lengths) -> dict[str, np.ndarray]:
    """Per-request means (per bin, or 0-d when constant): decode tokens E[O] − 1, prompt, prompt chunks
    (at least 1) and the context summed over the decode iterations, as the fluid chain reads them."""
    return {"decode": lengths.output - 1.0, "prompt": lengths.prompt, "chunks": np.maximum(lengths.chunks, 1.0),
            "context": lengths.context}


def batch_cap(kernel: dict, request_kv_tokens):
    """Requests a replica's batch holds at most: ``max_seqs``, ``token_budget`` (a decoder takes one
    token of it) and the KV cache over the mean reservation ``request_kv_tokens`` (E[P + O]); at least 1."""
    return np.maximum(np.minimum(min(kernel["max_seqs"], kernel["token_budget"]), np.floor(
        kernel["kv_capacity_tokens"] / np.maximum(request_kv_tokens, 1))), 1.0)


def saturation_tokens_per_s(kernel: dict, means: dict) -> tuple[float, float]:
    """(output tokens/s of one replica at full batches, the batch cap) for requests of the mean shape
    ``means`` (``per_request_means``; scalars); see the module docstring."""
    cap = float(batch_cap(kernel, means["prompt"] + means["decode"] + 1))
    iterations = means["decode"] + means["chunks"]
    tau = float(iteration_s(kernel, cap, {**means, "iterations": iterations}))
    return cap * (float(means["decode"]) + 1.0) / (float(iterations) * tau), cap


def request_means(kernel: dict, prompt: np.ndarray, output: np.ndarray) -> dict:
    """``per_request_means`` of the requests (token arrays) a replica with ``kernel``'s KV capacity and token
    budget can hold (all of them as one bin, as the fluid model reads a trace's bin)."""
    lengths = TraceLengths(np.zeros(len(prompt), dtype=np.int64), prompt, output, 1).lengths(
        int(kernel["kv_capacity_tokens"]), int(kernel["token_budget"]))
    return {name: float(values[0]) for name, values in per_request_means(lengths).items()}
