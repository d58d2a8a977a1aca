"""Synthetic request arrivals shared by the request-level families (LLM and ranking)."""

from __future__ import annotations

import numpy as np


def peak_rate_per_s(gen) -> float:
    """The highest arrival rate a generator reaches [requests/s] (its diurnal peak, or its burst rate): an
    upper bound on its requests per second of horizon, for sizing before drawing."""
    if gen.bursty is not None:
        return gen.rate_per_s * gen.bursty.burst_factor
    return gen.rate_per_s * (1.0 + (gen.diurnal.amplitude_frac if gen.diurnal is not None else 0.0))


def poisson_arrivals(gen, horizon_s: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times [s] over [0, horizon): homogeneous Poisson, or modulated by a diurnal or bursty
    pattern. Diurnal: thinning of a Poisson process at the peak rate (Lewis–Shedler), with hour 0 at
    the scenario's start date's midnight. Bursty: a two-state Markov-modulated Poisson process."""
    rate = gen.rate_per_s
    if gen.bursty is not None:
        b = gen.bursty
        burst_share = b.mean_burst_s / (b.mean_burst_s + b.mean_calm_s)
        calm_rate = rate / (1.0 - burst_share + b.burst_factor * burst_share)
        pieces, t, bursting = [], 0.0, False
        while t < horizon_s:
            length = rng.exponential(b.mean_burst_s if bursting else b.mean_calm_s)
            end = min(t + length, horizon_s)
            level = calm_rate * (b.burst_factor if bursting else 1.0)
            count = int(rng.poisson(level * (end - t)))
            pieces.append(rng.uniform(t, end, count))
            t, bursting = end, not bursting
        return np.sort(np.concatenate(pieces)) if pieces else np.zeros(0)
    peak = rate * (1.0 + (gen.diurnal.amplitude_frac if gen.diurnal is not None else 0.0))
    arrival = np.sort(rng.uniform(0.0, horizon_s, int(rng.poisson(peak * horizon_s))))
    if gen.diurnal is None:
        return arrival  # a Poisson process, conditioned on its count
    d = gen.diurnal
    hour = (arrival / 3600.0) % 24.0
    level = rate * (1.0 + d.amplitude_frac * np.cos(2 * np.pi * (hour - d.peak_hour) / 24.0))
    return arrival[rng.random(len(arrival)) < level / peak]
