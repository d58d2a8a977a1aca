"""The growth multiplier m(t) of a ``growth:`` schedule (``sim.scenario.growth``) as numbers over simulated time.

t is in seconds since the scenario start (its date's midnight). Compound growth: m(t) = (1 + per_year)^(t / year)
for t >= 0 and 1 before the start. Points: linear interpolation between the dates' multipliers, flat outside.
Besides m(t) the curve gives what the traffic models need, all exact:

* ``rate_integral``: ∫₀ᵗ m(s)·(1 + A·cos(2π (s/3600 − peak_hour)/24)) ds, the diurnal pattern times the growth, in
  closed form (exponential × cosine for compound growth; linear × cosine per segment between points), so fluid bins
  get their expected arrivals exactly;
* ``inverse``: the t at which ∫₀ᵗ m = y (a Poisson process of constant rate mapped through it has rate × m(t):
  inversion of the cumulative rate, used for training arrivals);
* ``peak`` and ``envelope_edges``: a piecewise-constant upper bound of m for thinning (Lewis–Shedler) at the
  request level.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

YEAR_S = 365 * 86400.0  # as durations: a year is 365 days
OMEGA = 2.0 * np.pi / 86400.0  # the diurnal pattern's angular frequency [rad/s]
ENVELOPE_SEGMENTS = 256  # thinning envelope: the horizon in this many pieces (plus the points' dates)


class GrowthCurve:
    """m(t) of one ``Growth`` for a scenario starting on ``start``."""

    def __init__(self, growth, start: dt.date | None):
        self.per_year = growth.per_year
        if self.per_year is not None:
            self.vanishes = self.per_year == -1  # the rate is 0 after the start
            self.k = 0.0 if self.vanishes else math.log1p(self.per_year) / YEAR_S  # [1/s]
            return
        if start is None:
            raise ValueError("growth points need the scenario start date")
        self.x = np.array([(date - start).days * 86400.0 for date in growth.points], dtype=np.float64)
        self.y = np.array(list(growth.points.values()), dtype=np.float64)

    def multiplier(self, t) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        if self.per_year is None:
            return np.interp(t, self.x, self.y)
        if self.vanishes:
            return np.where(t <= 0, 1.0, 0.0)
        return np.exp(self.k * np.maximum(t, 0.0))

    def peak(self, begin, end) -> np.ndarray:
        """The largest m over each [begin, end] (m is monotone between the points' dates)."""
        begin, end = np.asarray(begin, dtype=np.float64), np.asarray(end, dtype=np.float64)
        top = np.maximum(self.multiplier(begin), self.multiplier(end))
        if self.per_year is None:
            for x, y in zip(self.x, self.y):
                top = np.where((begin < x) & (x < end), np.maximum(top, y), top)
        return top

    def envelope_edges(self, horizon_s: float) -> np.ndarray:
        """Edges of the thinning envelope's pieces over [0, horizon_s]: an even grid and the points' dates."""
        edges = np.linspace(0.0, horizon_s, ENVELOPE_SEGMENTS + 1)
        if self.per_year is None:
            edges = np.union1d(edges, self.x[(self.x > 0) & (self.x < horizon_s)])
        return edges

    def rate_integral(self, t, amplitude: float = 0.0, peak_hour: float = 0.0) -> np.ndarray:
        """∫₀ᵗ m(s)·(1 + amplitude·cos(ω s + θ)) ds, θ = −2π·peak_hour/24, for t >= 0 [s × multiplier]."""
        t = np.asarray(t, dtype=np.float64)
        theta = -2.0 * np.pi * peak_hour / 24.0
        if self.per_year is not None:
            if self.vanishes:
                return np.zeros_like(t)
            k = self.k
            flat = t if k == 0 else np.expm1(k * t) / k

            def wave(s):
                return np.exp(k * s) * (k * np.cos(OMEGA * s + theta) + OMEGA * np.sin(OMEGA * s + theta))

            return flat + amplitude * (wave(t) - wave(np.zeros_like(t))) / (k * k + OMEGA * OMEGA)
        x, y = self.x, self.y
        n = len(x)
        # segment j: j = 0 before x[0], j = n after x[-1], else between x[j-1] and x[j]; it starts at s[j]
        s = np.concatenate(([x[0]], x))
        a = np.concatenate(([y[0]], y))  # m at the segment's start
        slope = np.zeros(n + 1)
        if n > 1:
            slope[1:n] = np.diff(y) / np.diff(x)

        def primitive(j, u):  # ∫ over [s_j, s_j + u] of segment j's m(s)·(1 + A cos(ω s + θ))
            phase0, phase = OMEGA * s[j] + theta, OMEGA * (s[j] + u) + theta
            m_u = a[j] + slope[j] * u
            wave = (m_u * np.sin(phase) - a[j] * np.sin(phase0)) / OMEGA \
                + slope[j] * (np.cos(phase) - np.cos(phase0)) / OMEGA ** 2
            return a[j] * u + slope[j] * u * u / 2.0 + amplitude * wave

        # F at each segment's start (F(x[0]) = 0): segment j >= 1 starts at x[j-1]
        start_f = np.zeros(n + 1)
        for j in range(2, n + 1):
            start_f[j] = start_f[j - 1] + primitive(j - 1, x[j - 1] - x[j - 2])

        def f(times):
            j = np.searchsorted(x, times, side="right")
            return start_f[j] + primitive(j, times - s[j])

        return f(t) - f(np.zeros(1))[0]

    def inverse(self, cumulative) -> np.ndarray:
        """The t >= 0 with ∫₀ᵗ m = ``cumulative`` (>= 0); infinity where the integral never gets there."""
        c = np.asarray(cumulative, dtype=np.float64)
        if self.per_year is not None:
            if self.vanishes:
                return np.where(c <= 0, 0.0, np.inf)
            if self.k == 0:
                return c
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(self.k * c > -1.0, np.log1p(self.k * c) / self.k, np.inf)
        x, y = self.x, self.y
        knots = np.concatenate(([0.0], np.cumsum(np.diff(x) * (y[:-1] + y[1:]) / 2.0)))  # F at x, F(x[0]) = 0
        target = c + _f_at_zero(x, y, knots)
        first = x[0] + target / y[0]
        last = x[-1] + (target - knots[-1]) / y[-1]
        i = np.clip(np.searchsorted(knots, target, side="right") - 1, 0, max(len(x) - 2, 0))
        if len(x) < 2:
            return np.where(target <= 0, first, last)
        rest = target - knots[i]
        slope = (y[i + 1] - y[i]) / (x[i + 1] - x[i])
        with np.errstate(invalid="ignore"):
            middle = x[i] + 2.0 * rest / (y[i] + np.sqrt(np.maximum(y[i] ** 2 + 2.0 * slope * rest, 0.0)))
        return np.where(target <= 0, first, np.where(target >= knots[-1], last, middle))


def _f_at_zero(x: np.ndarray, y: np.ndarray, knots: np.ndarray) -> float:
    """∫ from x[0] to 0 of the piecewise-linear m (negative when the scenario starts before the first date)."""
    if 0.0 <= x[0]:
        return (0.0 - x[0]) * y[0]
    if 0.0 >= x[-1]:
        return knots[-1] + (0.0 - x[-1]) * y[-1]
    i = int(np.searchsorted(x, 0.0, side="right") - 1)
    m0 = float(np.interp(0.0, x, y))
    return knots[i] + (0.0 - x[i]) * (y[i] + m0) / 2.0


def growth_curve(growth, start: dt.date | None) -> GrowthCurve | None:
    """The curve of a ``growth:`` field, or None when there is none (the steady rate)."""
    return None if growth is None else GrowthCurve(growth, start)
