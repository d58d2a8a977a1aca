"""Mean and 95 % confidence interval of a figure over independent replicas (Student t).

The interval is ``mean ± t(0.975, n−1) · s / √n`` with ``s`` the sample standard deviation (ddof 1): it
assumes the replicas' values are independent draws of a figure whose mean is roughly normal, which holds
for means over many jobs or requests, less for extremes (p99 of a short run). Fewer than two values give
no interval (``NaN`` bounds).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

CONFIDENCE = 0.95


def student_t_cdf_two_sided(t: float, df: int) -> float:
    """``P(|T| < t)`` for Student's t with an integer ``df`` ≥ 1, in closed form (Abramowitz & Stegun 26.7.3
    and 26.7.4: finite sums in ``cos θ`` with ``θ = atan(t / √df)``)."""
    theta = math.atan(t / math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    if df == 1:
        return 2.0 * theta / math.pi
    if df % 2 == 1:  # (2/π)[θ + sin θ (cos θ + (2/3) cos³ θ + ... + (2·4···(df−3))/(1·3···(df−2)) cos^(df−2) θ)]
        total, term = 0.0, c
        for k in range((df - 1) // 2):
            total += term
            term *= c * c * (2 * k + 2) / (2 * k + 3)
        return 2.0 / math.pi * (theta + s * total)
    # even: sin θ [1 + (1/2) cos² θ + (1·3)/(2·4) cos⁴ θ + ... + (1·3···(df−3))/(2·4···(df−2)) cos^(df−2) θ]
    total, term = 0.0, 1.0
    for k in range(1, df // 2 + 1):
        total += term
        term *= c * c * (2 * k - 1) / (2 * k)
    return s * total


def student_t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    """The ``t`` with ``P(|T| < t) = confidence`` for ``df`` degrees of freedom (bisection to 1e-10)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {df}")
    low, high = 0.0, 1e6
    while high - low > 1e-10 * max(1.0, low):
        mid = (low + high) / 2
        if student_t_cdf_two_sided(mid, df) < confidence:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def interval(values) -> dict[str, float]:
    """``{n, mean, std, ci95_low, ci95_high, min, max}`` of the finite ``values`` (NaN where undefined)."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    nan = float("nan")
    if n == 0:
        return {"n": 0, "mean": nan, "std": nan, "ci95_low": nan, "ci95_high": nan, "min": nan, "max": nan}
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else nan
    half = student_t_quantile(n - 1) * std / math.sqrt(n) if n > 1 else nan
    return {"n": n, "mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half,
            "min": float(x.min()), "max": float(x.max())}


def intervals(table: pd.DataFrame, figures: list[str]) -> pd.DataFrame:
    """One row per figure of ``table`` (one row per replica): its interval statistics, indexed by figure."""
    rows = {figure: interval(table[figure].to_numpy()) for figure in figures}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "figure"
    return frame
