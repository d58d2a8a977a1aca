"""Site fields of the facility model: weather, time-varying energy price and grid carbon.

A price or carbon intensity is a number (constant, as before), a ``profile`` (a yearly mean shaped by 24
hourly and 12 monthly factors) or an hourly CSV (``{csv: path}``, columns ``hour,value``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from sim.scenario.base import Strict, bounded


class DataCsv(Strict):
    """An hourly CSV file, relative to the scenario file."""

    csv: str = Field(description="path of the CSV, relative to the scenario file")


def _factors(values: list[float], n: int, what: str) -> list[float]:
    if len(values) != n:
        raise ValueError(f"{what} has {len(values)} factors; accepted: exactly {n}")
    if any(v < 0 for v in values) or not any(v > 0 for v in values):
        raise ValueError(f"{what} factors must be >= 0 with at least one above 0")
    return values


class _Profile(Strict):
    daily: list[float] = Field(
        default_factory=lambda: [1.0] * 24,
        description="24 factors, local hour 0 to 23 (scaled to mean 1) [default: flat]")
    monthly: list[float] = Field(
        default_factory=lambda: [1.0] * 12,
        description="12 factors, January to December (scaled to a day-weighted mean of 1) [default: flat]")

    @field_validator("daily")
    @classmethod
    def _daily(cls, v):
        return _factors(v, 24, "daily")

    @field_validator("monthly")
    @classmethod
    def _monthly(cls, v):
        return _factors(v, 12, "monthly")


class PriceProfile(_Profile):
    """Energy price over the year: ``mean`` × the hour's daily factor × the month's factor."""

    mean: float = bounded(ge=0, le=100, unit="USD/kWh", why="far above any market price",
                          description="yearly mean price [USD/kWh]")


class CarbonProfile(_Profile):
    """Grid carbon intensity over the year: ``mean`` × the hour's daily factor × the month's factor."""

    mean: float = bounded(ge=0, le=2_000, unit="gCO2e/kWh", why="twice a coal plant's",
                          description="yearly mean carbon intensity [gCO2e/kWh]")


PriceValue = Annotated[float, Field(ge=0, le=100)] | PriceProfile | DataCsv
CarbonValue = Annotated[float, Field(ge=0, le=2_000)] | CarbonProfile | DataCsv
