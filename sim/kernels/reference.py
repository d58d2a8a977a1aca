"""Readable reference twins of the Numba kernels: arrays in, arrays out, no SimPy, no I/O.

These functions are the specification. ``sim.kernels.compiled`` holds Numba versions with the same
signatures; the tests run both on random inputs and require equal results (to rounding).
"""

from __future__ import annotations

import numpy as np

STATUS_OK = 0
STATUS_STACK_UNSUPPORTED = 1
STATUS_OUT_OF_MEMORY = 2
STATUS_GANG_TOO_LARGE = 3

BF16_BYTES = 2.0


def training_time_s(samples, flop_per_sample, params, bytes_per_param, activation_bytes_per_sample,
                    microbatch_samples, embedding_params, gang_chips,
                    peak_flops, memory_bandwidth_bps, memory_bytes, scale_up_bps, scale_out_bps,
                    domain_chips, max_gang_chips, efficiency):
    """Wall time of each training job on each pool, from a roofline over one micro-step.

    Job arrays have length N; pool arrays length P (``max_gang_chips``: the largest gang the pool can
    place — one domain, or all its full domains when gangs may span domains); ``efficiency`` is N×P
    (fraction of peak the job's software stack reaches on the pool's chip; 0 when the stack does not run
    there).

    Model (data-parallel with fully sharded state, FSDP/ZeRO-3 style), per chip and micro-step, where
    dense = params - embedding_params (embedding tables are sharded, looked up row by row, and neither
    streamed whole nor all-reduced):
      compute  = mb · flop_per_sample / (peak_flops · efficiency)                    [s]
      memory   = (3 · 2 B · dense + 2 · act_bytes · mb) / memory_bandwidth           [s]
                 (weights read forward and backward, gradients written; activations written and read)
      network  = 3 · (g-1)/g · 2 B · dense / link                                    [s]
                 (two all-gathers and one reduce-scatter of bf16 weights/gradients over a ring; link is
                 half the bidirectional scale-up bandwidth inside one domain, else the scale-out bandwidth)
      step     = max(compute, memory, network)         (communication fully overlapped with compute)
      steps    = samples / (g · mb);   time = steps · step
    A job fits when params · bytes_per_param / g + act_bytes · mb <= memory_bytes per chip.
    Returns (time_s[N,P] with inf where the job cannot run, status[N,P] int8 with the reason).
    """
    g = gang_chips[:, None].astype(np.float64)
    mb = microbatch_samples[:, None]
    eff = efficiency
    dense = (params - embedding_params)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        compute = mb * flop_per_sample[:, None] / (peak_flops[None, :] * eff)
        memory = (3.0 * BF16_BYTES * dense + 2.0 * activation_bytes_per_sample[:, None] * mb) \
            / memory_bandwidth_bps[None, :]
        link = np.where(g <= domain_chips[None, :], 0.5 * scale_up_bps[None, :], scale_out_bps[None, :])
        network = np.where(g > 1, 3.0 * (g - 1.0) / g * BF16_BYTES * dense / link, 0.0)
        step = np.maximum(np.maximum(compute, memory), network)
        steps = samples[:, None] / (g * mb)
        time = steps * step
    resident = (params * bytes_per_param)[:, None] / g + activation_bytes_per_sample[:, None] * mb
    status = np.zeros(time.shape, dtype=np.int8)
    status[resident > memory_bytes[None, :]] = STATUS_OUT_OF_MEMORY
    status[g > max_gang_chips[None, :]] = STATUS_GANG_TOO_LARGE
    status[eff <= 0.0] = STATUS_STACK_UNSUPPORTED
    time = np.where(status == STATUS_OK, time, np.inf)
    return time, status
