"""Numba versions of the kernels in ``sim.kernels.reference`` (same signatures, same results)."""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.kernels.reference import (
    BF16_BYTES,
    STATUS_GANG_TOO_LARGE,
    STATUS_OK,
    STATUS_OUT_OF_MEMORY,
    STATUS_STACK_UNSUPPORTED,
)


@njit(cache=True)
def training_time_s(samples, flop_per_sample, params, bytes_per_param, activation_bytes_per_sample,
                    microbatch_samples, embedding_params, gang_chips,
                    peak_flops, memory_bandwidth_bps, memory_bytes, scale_up_bps, scale_out_bps,
                    domain_chips, max_gang_chips, efficiency):
    n_jobs = samples.shape[0]
    n_pools = peak_flops.shape[0]
    time = np.empty((n_jobs, n_pools), dtype=np.float64)
    status = np.zeros((n_jobs, n_pools), dtype=np.int8)
    for j in range(n_jobs):
        g = float(gang_chips[j])
        mb = microbatch_samples[j]
        resident = params[j] * bytes_per_param[j] / g + activation_bytes_per_sample[j] * mb
        dense = params[j] - embedding_params[j]
        weight_bytes = 3.0 * BF16_BYTES * dense
        act_bytes = 2.0 * activation_bytes_per_sample[j] * mb
        steps = samples[j] / (g * mb)
        for p in range(n_pools):
            eff = efficiency[j, p]
            if eff <= 0.0:
                status[j, p] = STATUS_STACK_UNSUPPORTED
            elif g > max_gang_chips[p]:
                status[j, p] = STATUS_GANG_TOO_LARGE
            elif resident > memory_bytes[p]:
                status[j, p] = STATUS_OUT_OF_MEMORY
            if status[j, p] != STATUS_OK:
                time[j, p] = np.inf
                continue
            compute = mb * flop_per_sample[j] / (peak_flops[p] * eff)
            memory = (weight_bytes + act_bytes) / memory_bandwidth_bps[p]
            network = 0.0
            if g > 1.0:
                link = 0.5 * scale_up_bps[p] if g <= domain_chips[p] else scale_out_bps[p]
                network = 3.0 * (g - 1.0) / g * BF16_BYTES * dense / link
            step = max(compute, memory, network)
            time[j, p] = steps * step
    return time, status
