"""Demand growth over the run (``growth:`` on training and inference traffic sources).

One ``Growth`` model is shared by ``workloads.training.generator``, ``workloads.inference[].traffic.generator``
and ``workloads.inference[].traffic.trace``: the source's rate at time t is multiplied by a growth
multiplier m(t). Either compound growth, ``per_year``: m(t) = (1 + per_year)^(t / 1 year) with t from the
scenario start (a year is 365 days, as in durations; m = 1 before the start), or ``points``: multipliers at
calendar dates, linear in time between them and flat before the first and after the last. The numeric
curve (multiplier, exact integrals, envelopes) is ``sim.workload.growth``.
"""

from __future__ import annotations

import datetime as dt
import math

from pydantic import Field, field_validator, model_validator

from sim.scenario.base import Strict, bounded, require_exactly_one
from sim.scenario.units import SECONDS_PER_UNIT

MAX_MULTIPLIER = 1e6
YEAR_S = SECONDS_PER_UNIT["y"]


class Growth(Strict):
    """The source's rate multiplied by a compound yearly growth or by multipliers at calendar dates."""

    per_year: float | None = bounded(
        None, ge=-1.0, le=100.0, why="-1 is a demand that vanishes; above a hundredfold a year is beyond any reported "
        "demand growth", description="compound growth rate: the rate × (1 + per_year)^(years since start) [-/year]")
    points: dict[dt.date, float] | None = Field(
        None, description="calendar date -> rate multiplier, linear between dates and flat outside them (dates in "
                          "increasing order; multipliers above 0, up to 1,000,000) [-]")

    @field_validator("points", mode="before")
    @classmethod
    def _ordered_dates(cls, points):
        if not isinstance(points, dict):
            return points
        if not points:
            raise ValueError("found no dates; accepted: at least one `date: multiplier`")
        dates = []
        for key in points:
            try:
                dates.append(key if isinstance(key, dt.date) else dt.date.fromisoformat(str(key)))
            except ValueError:
                return points  # the schema reports the unreadable date
        for earlier, later in zip(dates, dates[1:]):
            if later <= earlier:
                word = "repeats" if later == earlier else "comes before"
                raise ValueError(f"date {later} {word} {earlier}; accepted: dates in increasing order, each once")
        return points

    @field_validator("points")
    @classmethod
    def _positive_multipliers(cls, points):
        for date, multiplier in (points or {}).items():
            if not 0 < multiplier <= MAX_MULTIPLIER:
                why = "a million times the rate is beyond any demand" if multiplier > 0 else "a multiplier of 0 or " \
                    "less is no traffic (start the scenario later instead)"
                raise ValueError(f"found {multiplier:g} on {date}; accepted: multipliers above 0, up to "
                                 f"{MAX_MULTIPLIER:,.0f} ({why})")
        return points

    @model_validator(mode="after")
    def _one_form(self):
        require_exactly_one(self, "per_year", "points")
        return self

    def knots(self, start: dt.date) -> tuple[list[float], list[float]]:
        """``points`` as (seconds since the scenario start, multipliers)."""
        return ([(date - start).days * 86400.0 for date in self.points],
                [float(m) for m in self.points.values()])

    def peak(self, start: dt.date, begin_s: float, end_s: float) -> float:
        """The largest multiplier over [begin_s, end_s] [s since the start] (bounds request counts before a run)."""
        if self.per_year is not None:
            years = [max(t, 0.0) / YEAR_S for t in (begin_s, end_s)]
            return max((1.0 + self.per_year) ** y for y in years)
        times, values = self.knots(start)
        inside = [v for t, v in zip(times, values) if begin_s < t < end_s]
        return max([_linear(times, values, begin_s), _linear(times, values, end_s)] + inside)

    def mean(self, start: dt.date, horizon_s: float) -> float:
        """Mean multiplier over [0, horizon_s] [s since the start]: expected arrivals = rate × horizon × this."""
        if self.per_year is not None:
            if self.per_year == 0:
                return 1.0
            if self.per_year == -1:
                return 0.0
            k = math.log1p(self.per_year) / YEAR_S
            return math.expm1(k * horizon_s) / (k * horizon_s)
        times, values = self.knots(start)
        grid = sorted({0.0, horizon_s, *(t for t in times if 0 < t < horizon_s)})
        area = sum((b - a) * (_linear(times, values, a) + _linear(times, values, b)) / 2
                   for a, b in zip(grid, grid[1:]))
        return area / horizon_s


def _linear(times: list[float], values: list[float], t: float) -> float:
    """Piecewise-linear interpolation, flat outside the knots (pure Python: the schema layer has no numpy)."""
    if t <= times[0]:
        return values[0]
    for (t0, v0), (t1, v1) in zip(zip(times, values), zip(times[1:], values[1:])):
        if t <= t1:
            return v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return values[-1]
