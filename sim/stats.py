"""Summary statistics shared by every result table (training jobs, requests)."""

from __future__ import annotations

import numpy as np


def percentile_summary(values: np.ndarray) -> dict[str, float | None]:
    """``{mean, p50, p90, p99}`` of ``values`` (linear-interpolated percentiles); all ``None`` when empty."""
    if len(values) == 0:
        return {"mean": None, "p50": None, "p90": None, "p99": None}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"mean": float(values.mean()), "p50": float(p50), "p90": float(p90), "p99": float(p99)}
