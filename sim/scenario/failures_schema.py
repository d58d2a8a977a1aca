"""Scenario section ``failures``: failures of training capacity, repair, hot spares and checkpoints.

Absent or ``failures: none``: no failures (the engine runs exactly as without this section). Otherwise a named
profile of the catalog (``sim/catalog/data/failures.yaml``) with overrides; the model is described in
``sim.training.failures``.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator, model_validator

from sim.scenario.base import MAX_CHIPS, WHY_CHIPS, DurationS, Strict, bounded
from sim.scenario.units import parse_duration_s

COMPONENT_CLASSES = ("gpu", "memory", "network", "host", "software", "maintenance")
# causes counted beside the component classes: a network failure taking a whole rack (``rack_share``), a dated
# maintenance window (``maintenance``)
EXTRA_CAUSES = ("network-rack", "maintenance-window")
ComponentClass = Literal["gpu", "memory", "network", "host", "software", "maintenance"]
MAX_RATE = 1_000.0  # failures per 1,000 chip-days: one a chip-day, far above any fleet
MAX_REPAIR_S = 365 * 86400.0


def _rates(rates: dict, what: str = "") -> dict:
    for cls, rate in rates.items():
        if not 0 <= rate <= MAX_RATE:
            raise ValueError(f"found {rate:g} for {what}{cls}; accepted: 0 to {MAX_RATE:,.0f} failures per 1,000 "
                             "chip-days (one a chip-day, far above any fleet)")
    return rates


class MaintenanceWindow(Strict):
    """A dated maintenance window of one pool (``sim.training.failures``): whole scale-up domains leave placement
    for ``hours``, their training jobs are interrupted (cause ``maintenance-window``), and they return."""

    pool: str = Field(description="pool name")
    start: dt.datetime | dt.date = Field(description="when the window opens: a date (00:00) or a date and time, "
                                                     "inside the run")
    hours: float = bounded(gt=0, le=MAX_REPAIR_S / 3600.0, unit="h", why="a window longer than a year is a retirement",
                           description="length of the window [h]")
    fraction: float = bounded(1.0, gt=0, le=1, why="a share of the pool's servers",
                              description="share of the pool's scale-up domains taken (rounded up to whole "
                                          "domains; 1: the whole pool) [-]")
    every_days: float | None = bounded(None, gt=0, le=3650.0, unit="days", why="a repeat beyond ten years is "
                                       "not a schedule", description="repeat the window every so many days until "
                                                                     "the run ends; each repeat takes the next "
                                                                     "domains in turn [default: once]")

    drain_hours: float = bounded(0.0, ge=0, le=MAX_REPAIR_S / 3600.0, unit="h", why="a drain longer than a year "
                                 "is a retirement", description="before start, the window's domains take no new "
                                                                "training job (jobs there run on) [h] [default: 0]")

    @model_validator(mode="after")
    def _no_overlap(self) -> MaintenanceWindow:
        if self.every_days is not None and self.hours + self.drain_hours >= self.every_days * 24.0:
            raise ValueError(f"found hours {self.hours:g} + drain_hours {self.drain_hours:g} with every_days "
                             f"{self.every_days:g}: a window would outlast its repeat; accepted: hours + "
                             "drain_hours < every_days x 24")
        return self


def _interval(value: object) -> object:
    """``optimal`` or a positive duration."""
    if value is None or value == "optimal":
        return value
    seconds = parse_duration_s(value)
    if seconds <= 0:
        raise ValueError(f"checkpoint interval must be positive, got {value!r}; accepted: 'optimal' or a "
                         "duration > 0 like '30min'")
    return seconds


class Failures(Strict):
    """Failures of training chips by component class, their repair, hot spares, and checkpoint/restart of jobs."""

    profile: Literal["llm-cluster-typical"] = Field(
        "llm-cluster-typical", description="catalog failure profile giving rates, repair times and the restart "
                                           "delay (llm-cluster-typical: Llama 3 on 16,384 H100)")
    rates_per_1000_chip_days: dict[ComponentClass, float] = Field(
        {}, description="failures per 1,000 chip-days by component class (gpu, memory, network, host, software, "
                        "maintenance) for every accelerator, replacing the profile's [default: the profile]")
    accelerator_rates_per_1000_chip_days: dict[str, dict[ComponentClass, float]] = Field(
        {}, description="accelerator id -> failures per 1,000 chip-days by component class for that chip only "
                        "[default: the profile]")
    repair_time: dict[ComponentClass, float] = Field(
        {}, description="mean time a failed server is away, by component class (exponential draw) [s or '3d'; "
                        "0: nothing leaves, the job only restarts] [default: the profile]")
    distribution: Literal["exponential", "weibull"] = Field(
        "exponential", description="time between a pool's failures: exponential (Poisson process) or weibull "
                                   "(renewal process of the pool's superposed stream, same mean)")
    weibull_shape: float = bounded(0.8, gt=0.1, le=10, why="beyond any fitted failure process",
                                   description="Weibull shape k with distribution: weibull (k < 1: clustered "
                                               "failures) [-]")
    restart_delay: DurationS | None = bounded(
        None, ge=0, le=7 * 86400.0, unit="s", why="a week without restarting is an outage, not a restart",
        description="from an interruption to the job computing again, before its checkpoint restore [s or "
                    "'10min'] [default: the profile]")
    checkpoint_interval: float | Literal["optimal"] | None = Field(
        None, description="run time between checkpoints of a job: a duration, or optimal (Young/Daly: sqrt(2 x "
                          "save time x MTBF of the job's gang)) [default: policy.preemption.checkpoint_interval]")
    hot_spares: dict[str, int] = Field(
        {}, description="pool name -> chips held out of placement as hot spares, whole servers; a spare server "
                        "replaces a failed one at once [default: none]")

    rack_share: float | Literal["profile"] = Field(
        0.0, description="share of network failures that take a whole rack down at once (its top-of-rack switch: the "
                         "pool's servers_per_rack x chips_per_server chips; every job there is interrupted, cause "
                         "network-rack); a number 0 to 1, or profile for the catalog's estimate (0.42) [default: 0, "
                         "every network failure takes one server]")
    maintenance: list[MaintenanceWindow] = Field(
        [], description="dated maintenance windows: {pool, start, hours, fraction, every_days, drain_hours} "
                        "[default: none]")

    @field_validator("rack_share", mode="before")
    @classmethod
    def _rack_share(cls, value: object) -> object:
        if value == "profile":
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError("not a share; accepted: 0 to 1 (a share of network failures), or profile")
        return float(value)

    @field_validator("rates_per_1000_chip_days")
    @classmethod
    def _fleet_rates(cls, rates: dict) -> dict:
        return _rates(rates)

    @field_validator("accelerator_rates_per_1000_chip_days")
    @classmethod
    def _accelerator_rates(cls, by_accel: dict) -> dict:
        for accel, rates in by_accel.items():
            _rates(rates, f"{accel}.")
        return by_accel

    @field_validator("repair_time", mode="before")
    @classmethod
    def _repair_times(cls, times: object) -> object:
        if not isinstance(times, dict):
            return times
        parsed = {}
        for key, value in times.items():
            seconds = parse_duration_s(value)
            if seconds > MAX_REPAIR_S:
                raise ValueError(f"found {value!r} for {key}; accepted: up to a year (a part away longer is "
                                 "retired, not repaired)")
            parsed[key] = seconds
        return parsed

    @field_validator("checkpoint_interval", mode="before")
    @classmethod
    def _checkpoint_interval(cls, value: object) -> object:
        return _interval(value)

    @field_validator("hot_spares")
    @classmethod
    def _spares(cls, spares: dict) -> dict:
        for name, chips in spares.items():
            if not 0 <= chips <= MAX_CHIPS:
                raise ValueError(f"found {chips} chips for {name}; accepted: 0 to {MAX_CHIPS:,} ({WHY_CHIPS})")
        return spares


def no_failures(value: object) -> object:
    """``failures: none`` is the same as no section."""
    return None if value == "none" else value
