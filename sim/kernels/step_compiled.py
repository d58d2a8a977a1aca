"""Numba version of ``sim.kernels.step_reference.step_time_s`` (same signature, same results; the formulas
and their sources are in that module's docstring)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from sim.kernels import step_reference
from sim.kernels.reference import (
    BF16_BYTES,
    STATUS_GANG_TOO_LARGE,
    STATUS_OK,
    STATUS_OUT_OF_MEMORY,
    STATUS_STACK_UNSUPPORTED,
)
from sim.kernels.step_reference import STATUS_TP_WIDER_THAN_DOMAIN


@njit(cache=True)
def _group_size(n, stride, chips, p, k):
    if k == chips.shape[1] - 1:
        return n
    cap = max(1.0, math.floor(chips[p, k] / stride))
    return min(n, cap)


@njit(cache=True)
def _hier_rs(n, stride, data, chips, bw, lat, torus_steps, p):
    up = 0.0
    out = 0.0
    prev = 1.0
    remaining = data
    for k in range(chips.shape[1]):
        nk = _group_size(n, stride, chips, p, k)
        g = max(nk / prev, 1.0)
        if g > 1.0:
            steps = g - 1.0
            if k == 0 and torus_steps > 0:
                steps = min(g - 1.0, torus_steps)
            t = (g - 1.0) / g * remaining / bw[p, k] + steps * lat[p, k]
            if k == 0:
                up += t
            else:
                out += t
        remaining = remaining / g
        prev = max(prev, nk)
    return up, out


@njit(cache=True)
def _all_to_all(n, stride, data, chips, bw, lat, p):
    up = 0.0
    out = 0.0
    prev = 1.0
    for k in range(chips.shape[1]):
        nk = _group_size(n, stride, chips, p, k)
        if nk > prev:
            t = (nk - prev) / n * data / bw[p, k] + lat[p, k]
            if k == 0:
                up += t
            else:
                out += t
        prev = max(prev, nk)
    return up, out


@njit(cache=True)
def _level_of(span, chips, p):
    if span <= chips[p, 0]:
        return 0
    if span <= chips[p, 1]:
        return 1
    return 2


def step_time_s(params, active_params, expert_params, layers, hidden, heads, experts_per_token, bytes_per_param,
                seq_len, global_batch, tp, pp, dp, cp, ep, zero, micro_batch, recompute, virtual_stages,
                materialized_attention, peak_flops, memory_bandwidth_bps, memory_bytes, level_chips,
                level_bandwidth_bps, level_latency_s, torus_dims, max_gang_chips, efficiency):
    """The compiled kernel with the calibrated constants of ``step_reference`` passed in at call time (Numba's
    cache would otherwise keep the values of the compile, since it only watches this file)."""
    return _step_time_s(params, active_params, expert_params, layers, hidden, heads, experts_per_token,
                        bytes_per_param, seq_len, global_batch, tp, pp, dp, cp, ep, zero, micro_batch, recompute,
                        virtual_stages, materialized_attention, peak_flops, memory_bandwidth_bps, memory_bytes,
                        level_chips, level_bandwidth_bps, level_latency_s, torus_dims, max_gang_chips, efficiency,
                        step_reference.SHAPE_TOKENS, step_reference.SHAPE_WIDTH, step_reference.EFFICIENCY_PLATEAU,
                        step_reference.DP_OVERLAP, step_reference.ELEMENTWISE_BYTES, step_reference.SCORE_BYTES)


@njit(cache=True)
def _step_time_s(params, active_params, expert_params, layers, hidden, heads, experts_per_token, bytes_per_param,
                 seq_len, global_batch, tp, pp, dp, cp, ep, zero, micro_batch, recompute, virtual_stages,
                 materialized_attention, peak_flops, memory_bandwidth_bps, memory_bytes, level_chips,
                 level_bandwidth_bps, level_latency_s, torus_dims, max_gang_chips, efficiency, shape_tokens,
                 shape_width, plateau, dp_overlap, elementwise_bytes, score_bytes):
    n_c = params.shape[0]
    n_p = peak_flops.shape[0]
    step_out = np.empty((n_c, n_p), dtype=np.float64)
    mfu_out = np.zeros((n_c, n_p), dtype=np.float64)
    neck_out = np.zeros((n_c, n_p), dtype=np.int8)
    share_out = np.zeros((n_c, n_p), dtype=np.float64)
    compute_out = np.zeros((n_c, n_p), dtype=np.float64)
    memory_out = np.zeros((n_c, n_p), dtype=np.float64)
    status = np.zeros((n_c, n_p), dtype=np.int8)
    chips, bw, lat = level_chips, level_bandwidth_bps, level_latency_s
    terms = np.zeros(5)
    for c_i in range(n_c):
        N = params[c_i]
        Na = active_params[c_i]
        Ne = expert_params[c_i]
        L = layers[c_i]
        h = hidden[c_i]
        a = heads[c_i]
        k_e = experts_per_token[c_i]
        bpp = bytes_per_param[c_i]
        s = seq_len[c_i]
        B = global_batch[c_i]
        t_p = float(tp[c_i])
        p_p = float(pp[c_i])
        d_p = float(dp[c_i])
        c_p = float(cp[c_i])
        e_p = float(ep[c_i])
        z = zero[c_i]
        mb = micro_batch[c_i]
        r = recompute[c_i]
        v = float(virtual_stages[c_i])
        g = t_p * p_p * d_p * c_p
        m = B / (d_p * mb)
        T = mb * s / c_p
        f_model = 6.0 * Na + 12.0 * L * h * s
        f_hw = f_model
        if r == 2:
            f_hw += 2.0 * Na + 4.0 * L * h * s
        elif r == 1:
            f_hw += 4.0 * L * h * s
        shape = (1.0 - math.exp(-T / shape_tokens)) * (1.0 - math.exp(-(h / t_p) / shape_width))
        P = (N - Ne) / (t_p * p_p) + Ne / (t_p * p_p * e_p)
        mat = materialized_attention[c_i] > 0
        if r == 2:
            act = 2.0 * h / t_p
        else:
            act = 34.0 * h / t_p
            if mat and r == 0:
                act += 5.0 * a * s / t_p
        # memory-bound kernels between the GEMMs (elementwise; attention scores where materialized) [bytes]
        other = elementwise_bytes * (4.0 if r == 2 else 3.0) * h / t_p
        if mat:
            other += score_bytes * (4.0 if r >= 1 else 3.0) * a * s / t_p
        other *= T * L / p_p
        n_ar = (6.0 if r == 2 else 4.0) * L / p_p
        dense_local = (N - Ne) / (t_p * p_p)
        expert_local = Ne / (t_p * p_p * e_p)
        states = 0.0
        for part in range(2):
            shard = d_p if part == 0 else max(d_p / e_p, 1.0)
            local = dense_local if part == 0 else expert_local
            per = 2.0 / (shard if z >= 3 else 1.0) + 2.0 / (shard if z >= 2 else 1.0) \
                + (bpp - 4.0) / (shard if z >= 1 else 1.0)
            states += local * per
        activations = act * T * L / p_p * min(m, p_p)
        if r == 2:
            activations += 34.0 * h / t_p * T
        resident = states + activations
        for p in range(n_p):
            eff = efficiency[c_i, p]
            st = STATUS_OK
            if eff <= 0.0:
                st = STATUS_STACK_UNSUPPORTED
            elif g > max_gang_chips[p]:
                st = STATUS_GANG_TOO_LARGE
            elif t_p > chips[p, 0]:
                st = STATUS_TP_WIDER_THAN_DOMAIN
            elif resident > memory_bytes[p]:
                st = STATUS_OUT_OF_MEMORY
            status[c_i, p] = st
            if st != STATUS_OK:
                step_out[c_i, p] = np.inf
                continue
            torus_steps = 0.0
            if torus_dims[p, 0] > 0:
                for d in range(torus_dims.shape[1]):
                    torus_steps += max(torus_dims[p, d] - 1.0, 0.0)
            rate = peak_flops[p] * min(eff * plateau, 1.0) * shape
            c = T * f_hw / (t_p * p_p) / rate
            attention = T * 12.0 * L * h * s / (t_p * p_p) / rate
            mem = (3.0 * BF16_BYTES * P + 2.0 * act * T * L / p_p) / memory_bandwidth_bps[p]
            x = other / memory_bandwidth_bps[p]
            w = max(c, mem) + x
            tp_up = 0.0
            tp_out = 0.0
            if t_p > 1:
                u, o = _hier_rs(t_p, 1.0, T * h * BF16_BYTES, chips, bw, lat, torus_steps, p)
                tp_up = 2.0 * n_ar * u
                tp_out = 2.0 * n_ar * o
            cp_exposed = 0.0
            cp_level = _level_of(c_p * t_p, chips, p)
            if c_p > 1:
                cp_comm = L / p_p * 3.0 * (c_p - 1.0) * 4.0 * T * h / t_p / bw[p, cp_level]
                cp_exposed = max(cp_comm - attention, 0.0)
            ep_up = 0.0
            ep_out = 0.0
            if e_p > 1:
                u, o = _all_to_all(e_p, t_p * c_p * p_p, T / t_p * k_e * h * BF16_BYTES, chips, bw, lat, p)
                ep_up = 4.0 * L / p_p * u
                ep_out = 4.0 * L / p_p * o
            t = w + tp_up + tp_out + ep_up + ep_out + cp_exposed
            q_level = _level_of(p_p * t_p * c_p, chips, p)
            q = 0.0
            if p_p > 1:
                q = 2.0 * (T * h * BF16_BYTES / t_p / bw[p, q_level] + lat[p, q_level])
            pipeline = m * (t + v * q) + (p_p - 1.0) * (t / v + q)
            bubble = (p_p - 1.0) * (t / v + q)
            dp_up = 0.0
            dp_out = 0.0
            if d_p > 1:
                u, o = _hier_rs(d_p, t_p * c_p * p_p, BF16_BYTES * P, chips, bw, lat, torus_steps, p)
                times = 2.0 * m + 1.0 if z >= 3 else 2.0
                dp_up = times * u
                dp_out = times * o
            window = dp_overlap * (m * w if z >= 3 else w)
            dp_comm = dp_up + dp_out
            exposed = max(dp_comm - window, 0.0)
            step = pipeline + exposed
            step_out[c_i, p] = step
            mfu_out[c_i, p] = B * s * f_model / (g * peak_flops[p] * step)
            scale = exposed / dp_comm if dp_comm > 0 else 0.0
            cp_up = cp_exposed if cp_level == 0 else 0.0
            q_up = v * q if q_level == 0 else 0.0
            terms[0] = m * (w - x) if c >= mem else 0.0
            terms[1] = m * x + (0.0 if c >= mem else m * (w - x))
            terms[2] = m * (tp_up + ep_up + cp_up + q_up) + scale * dp_up
            terms[3] = m * (tp_out + ep_out + (cp_exposed - cp_up) + (v * q - q_up)) + scale * dp_out
            terms[4] = bubble
            best = 0
            for i in range(1, 5):
                if terms[i] > terms[best]:
                    best = i
            neck_out[c_i, p] = best
            share_out[c_i, p] = terms[best] / step
            compute_out[c_i, p] = terms[0] / step
            memory_out[c_i, p] = terms[1] / step
    return step_out, mfu_out, neck_out, share_out, status, compute_out, memory_out
