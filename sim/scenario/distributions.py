"""Random quantities in scenarios: exactly one of fixed, log-normal, exponential, uniform, empirical.

A distribution is unit-agnostic (seconds, samples, tokens); its parameters are at most ``MAX_QUANTITY``
in that unit, and the field that uses it may set a tighter limit on its mean (see ``mean_or_none``).
"""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from sim.scenario.base import MAX_QUANTITY, MAX_SIGMA, Strict, bounded, require_exactly_one

WHY_QUANTITY = "larger than any quantity a scenario describes"


class LogNormal(Strict):
    median: float = bounded(gt=0, le=MAX_QUANTITY, why=WHY_QUANTITY,
                            description="median of the distribution (same unit as the quantity)")
    sigma: float = bounded(ge=0, le=MAX_SIGMA, description="standard deviation of the underlying normal [-]",
                           why="at 4 the 95th percentile is already 500,000 times the 5th; wider spreads "
                               "overflow 64-bit counts")


class Exponential(Strict):
    mean: float = bounded(gt=0, le=MAX_QUANTITY, why=WHY_QUANTITY, description="mean (same unit as the quantity)")


class Uniform(Strict):
    low: float = bounded(ge=0, le=MAX_QUANTITY, why=WHY_QUANTITY, description="lower bound")
    high: float = bounded(ge=0, le=MAX_QUANTITY, why=WHY_QUANTITY, description="upper bound (>= low)")

    @model_validator(mode="after")
    def _ordered(self):
        if self.high < self.low:
            raise ValueError(f"high ({self.high:g}) must not be below low ({self.low:g})")
        return self


class Distribution(Strict):
    """A non-negative random quantity: exactly one of the forms below."""

    fixed: float | None = bounded(None, ge=0, le=MAX_QUANTITY, why=WHY_QUANTITY, description="always this value")
    lognormal: LogNormal | None = Field(None, description="log-normal by median and sigma")
    exponential: Exponential | None = Field(None, description="exponential by mean")
    uniform: Uniform | None = Field(None, description="uniform between low and high")
    empirical: str | None = Field(None, description="'philly-runtime' or a one-column CSV path (with header)")

    @model_validator(mode="after")
    def _exactly_one(self):
        require_exactly_one(self, "fixed", "lognormal", "exponential", "uniform", "empirical")
        return self


def mean_or_none(dist: Distribution) -> float | None:
    """The mean in closed form (log-normal: ``median · exp(sigma² / 2)``); None for an empirical one."""
    if dist.fixed is not None:
        return dist.fixed
    if dist.lognormal is not None:
        return dist.lognormal.median * math.exp(dist.lognormal.sigma ** 2 / 2.0)
    if dist.exponential is not None:
        return dist.exponential.mean
    if dist.uniform is not None:
        return (dist.uniform.low + dist.uniform.high) / 2.0
    return None
