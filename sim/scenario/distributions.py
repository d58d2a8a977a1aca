"""Random quantities in scenarios: exactly one of fixed, log-normal, exponential, uniform, empirical."""

from __future__ import annotations

from pydantic import Field, model_validator

from sim.scenario.base import Strict, require_exactly_one


class LogNormal(Strict):
    median: float = Field(gt=0, description="median of the distribution (same unit as the quantity)")
    sigma: float = Field(ge=0, description="standard deviation of the underlying normal [-]")


class Exponential(Strict):
    mean: float = Field(gt=0, description="mean (same unit as the quantity)")


class Uniform(Strict):
    low: float = Field(ge=0, description="lower bound")
    high: float = Field(ge=0, description="upper bound (>= low)")

    @model_validator(mode="after")
    def _ordered(self):
        if self.high < self.low:
            raise ValueError(f"high ({self.high:g}) must not be below low ({self.low:g})")
        return self


class Distribution(Strict):
    """A non-negative random quantity: exactly one of the forms below."""

    fixed: float | None = Field(None, ge=0, allow_inf_nan=False, description="always this value")
    lognormal: LogNormal | None = Field(None, description="log-normal by median and sigma")
    exponential: Exponential | None = Field(None, description="exponential by mean")
    uniform: Uniform | None = Field(None, description="uniform between low and high")
    empirical: str | None = Field(None, description="'philly-runtime' or a one-column CSV path (with header)")

    @model_validator(mode="after")
    def _exactly_one(self):
        require_exactly_one(self, "fixed", "lognormal", "exponential", "uniform", "empirical")
        return self
