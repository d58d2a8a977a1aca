"""Synthetic request arrivals shared by the request-level families (LLM and ranking)."""

from __future__ import annotations

import datetime as dt

import numpy as np

from sim.workload.growth import GrowthCurve, growth_curve


def expected_requests(gen, horizon_s: float, start: dt.date | None = None) -> float:
    """An upper bound on a generator's requests over the horizon, for sizing before drawing: its highest
    rate (diurnal peak, or burst rate) × the horizon × the growth's mean multiplier."""
    if gen.bursty is not None:
        peak = gen.rate_per_s * gen.bursty.burst_factor
    else:
        peak = gen.rate_per_s * (1.0 + (gen.diurnal.amplitude_frac if gen.diurnal is not None else 0.0))
    grown = gen.growth.mean(start, horizon_s) if gen.growth is not None and start is not None else 1.0
    return peak * horizon_s * grown


def poisson_arrivals(gen, horizon_s: float, rng: np.random.Generator, start: dt.date | None = None) -> np.ndarray:
    """Arrival times [s] over [0, horizon): homogeneous Poisson, or modulated by a diurnal or bursty
    pattern. Diurnal: thinning of a Poisson process at the peak rate (Lewis–Shedler), with hour 0 at
    the scenario's start date's midnight. Bursty: a two-state Markov-modulated Poisson process.
    With ``growth`` the rate is also multiplied by its m(t) (``sim.workload.growth``; ``start`` dates its
    points): candidates at the pattern's peak rate × an envelope of m, constant on each of a few hundred
    pieces of the horizon (or on each calm/burst period), thinned to the grown rate."""
    rate = gen.rate_per_s
    growth = growth_curve(getattr(gen, "growth", None), start)
    if gen.bursty is not None:
        b = gen.bursty
        burst_share = b.mean_burst_s / (b.mean_burst_s + b.mean_calm_s)
        calm_rate = rate / (1.0 - burst_share + b.burst_factor * burst_share)
        pieces, t, bursting = [], 0.0, False
        while t < horizon_s:
            length = rng.exponential(b.mean_burst_s if bursting else b.mean_calm_s)
            end = min(t + length, horizon_s)
            level = calm_rate * (b.burst_factor if bursting else 1.0)
            if growth is None:
                count = int(rng.poisson(level * (end - t)))
                pieces.append(rng.uniform(t, end, count))
            else:
                top = float(growth.peak(t, end))
                drawn = rng.uniform(t, end, int(rng.poisson(level * top * (end - t))))
                pieces.append(drawn[rng.random(len(drawn)) * top < growth.multiplier(drawn)])
            t, bursting = end, not bursting
        return np.sort(np.concatenate(pieces)) if pieces else np.zeros(0)
    peak = rate * (1.0 + (gen.diurnal.amplitude_frac if gen.diurnal is not None else 0.0))
    if growth is not None:
        return _grown(gen, growth, peak, horizon_s, rng)
    arrival = np.sort(rng.uniform(0.0, horizon_s, int(rng.poisson(peak * horizon_s))))
    if gen.diurnal is None:
        return arrival  # a Poisson process, conditioned on its count
    d = gen.diurnal
    hour = (arrival / 3600.0) % 24.0
    level = rate * (1.0 + d.amplitude_frac * np.cos(2 * np.pi * (hour - d.peak_hour) / 24.0))
    return arrival[rng.random(len(arrival)) < level / peak]


def _grown(gen, growth: GrowthCurve, peak: float, horizon_s: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson (optionally diurnal) arrivals at rate × m(t): on each envelope piece, candidates at
    ``peak`` × the piece's largest m, each kept with probability rate(t)·m(t) / that."""
    edges = growth.envelope_edges(horizon_s)
    width = np.diff(edges)
    top = growth.peak(edges[:-1], edges[1:])
    piece = np.repeat(np.arange(len(width)), rng.poisson(peak * top * width))
    arrival = edges[piece] + rng.random(len(piece)) * width[piece]
    level = gen.rate_per_s * growth.multiplier(arrival)
    if gen.diurnal is not None:
        d = gen.diurnal
        level = level * (1.0 + d.amplitude_frac * np.cos(2 * np.pi * ((arrival / 3600.0) % 24.0 - d.peak_hour) / 24.0))
    kept = (rng.random(len(arrival)) * peak * top[piece] < level) & (arrival < horizon_s)
    return np.sort(arrival[kept])
