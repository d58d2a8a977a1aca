"""The figures of a run as one flat row: every number of ``summary.json`` under its dotted key.

``{"jct_s": {"mean": 3.2}}`` becomes ``{"jct_s.mean": 3.2}``; ``None`` (a statistic over no values)
becomes ``NaN``; texts (the scenario's name and description) are left out. Every figure is a float, so a
column keeps one type whatever its rows.
"""

from __future__ import annotations

import math

from sim.results.compare import flatten


def summary_figures(summary: dict) -> dict[str, float]:
    """The numeric leaves of ``summary`` as ``{dotted key: float}`` (``None`` -> ``NaN``)."""
    figures = {}
    for key, value in flatten(summary).items():
        if value is None:
            figures[key] = math.nan
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            figures[key] = float(value)
    return figures
