"""Procurement orders, supply shocks and price schedules (``procurement:`` and ``supply:``).

An order buys chips for an owned pool on a date; they arrive after a lead time (fixed, log-normal or drawn from a
list), are installed a number of racks per week and burned in before they come online. A supply shock disturbs the
orders of one vendor or accelerator: a share of their chips never arrives, they arrive later, or they cost more.
A price schedule gives an accelerator's purchase price from dated points on (piecewise constant). The numbers
are resolved by ``sim.fleet.procurement`` (with the run's ``supply`` random stream); names, pools and dates are
checked by ``sim.validation``.
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field, model_validator

from sim.scenario.base import MAX_CHIPS, MAX_SIGMA, WHY_CHIPS, DurationS, Strict, bounded, require_exactly_one

WHY_PRICE = "far above any accelerator's price"


class LeadTimeLogNormal(Strict):
    """A log-normal lead time by its median and the spread of its logarithm."""

    median: DurationS = bounded(gt=0, why="an order arrives after it is placed",
                                description="median lead time [s or '26w']")
    sigma: float = bounded(ge=0, le=MAX_SIGMA, why="at 4 the 95th percentile is already 500,000 times the 5th",
                           description="standard deviation of the lead time's logarithm [-]")


class LeadTime(Strict):
    """Time from placing an order to the chips' arrival at the site: exactly one of the forms below."""

    fixed: DurationS | None = bounded(None, gt=0, why="an order arrives after it is placed",
                                      description="always this lead time [s or '26w']")
    lognormal: LeadTimeLogNormal | None = Field(None, description="log-normal by median and sigma")
    empirical: tuple[DurationS, ...] | None = Field(
        None, min_length=1, description="observed lead times, one drawn with equal probability [s or '36w' each; "
                                        "each above 0]")

    @model_validator(mode="after")
    def _one_form(self):
        require_exactly_one(self, "fixed", "lognormal", "empirical")
        bad = [value for value in self.empirical or () if value <= 0]
        if bad:
            raise ValueError(f"found a lead time of {bad[0]:g} s; accepted: lead times above 0 (an order arrives "
                             "after it is placed)")
        return self


class Order(Strict):
    """Chips ordered for an owned pool: they join it in weekly installation batches after the lead time."""

    pool: str = Field(description="owned pool the chips join (its accelerator, servers and domains)")
    chips: int = bounded(gt=0, le=MAX_CHIPS, unit="chips", why=WHY_CHIPS,
                         description="chips ordered: whole servers and scale-up domains of the pool")
    order_date: dt.date = Field(description="date the order is placed, inside the run")
    lead_time: LeadTime = Field(description="time from the order to the chips' arrival (drawn from the run's seed)")
    unit_price_usd: float | None = bounded(
        None, ge=0, le=10_000_000, unit="USD", why=WHY_PRICE,
        description="price per chip [default: the price schedule at order_date, else the pool's or catalog price]")
    install_racks_per_week: float | None = bounded(
        None, gt=0, le=100_000, unit="racks/week", why="faster than any site installs",
        description="racks installed per week; each week's racks (whole scale-up domains, at least one) come "
                    "online together [default: unlimited, every chip at once]")
    burn_in: DurationS = bounded(0.0, ge=0, why="a duration", description="time from installation to online, for "
                                                                           "burn-in tests [s or '7d']")


class PricePoint(Strict):
    """An accelerator's purchase price from a date on (until the next point of the same accelerator)."""

    accelerator: str = Field(description="catalog accelerator id")
    date: dt.date = Field(description="first date of this price")
    usd_per_chip: float = bounded(ge=0, le=10_000_000, unit="USD", why=WHY_PRICE,
                                  description="purchase price per chip from date on [USD]")


class Procurement(Strict):
    """Orders for owned pools, and the price schedules that price them."""

    orders: tuple[Order, ...] = Field((), description="chip orders, each joining an owned pool after its lead time")
    price_schedule: tuple[PricePoint, ...] = Field(
        (), description="purchase prices by accelerator and date (piecewise constant from each date; dates in "
                        "increasing order per accelerator); they price orders at their order_date and "
                        "fleet[].deliveries at their date")


class Window(Strict):
    """Calendar dates [start, end] (both days included)."""

    start: dt.date = Field(description="first day of the window")
    end: dt.date = Field(description="last day of the window (on or after start)")

    @model_validator(mode="after")
    def _ordered(self):
        if self.end < self.start:
            raise ValueError(f"the window ends ({self.end}) before it starts ({self.start}); accepted: end on or "
                             "after start")
        return self


class Shock(Strict):
    """A supply disruption of one vendor's or one accelerator's orders.

    Orders whose undisturbed arrival (order date + lead time) falls in the window lose a share of their chips
    and arrive later; orders placed in the window pay ``price_factor`` times their unit price."""

    vendor: str | None = Field(None, description="catalog vendor whose chips are hit (e.g. nvidia)")
    accelerator: str | None = Field(None, description="catalog accelerator id that is hit")
    window: Window = Field(description="dates the shock lasts")
    delivery_factor: float = bounded(
        1.0, ge=0, le=1, why="a share of the chips ordered",
        description="share of an affected order's chips that ever arrive (rounded down to whole domains; the "
                    "rest is a shortfall) [-]")
    extra_delay: DurationS = bounded(0.0, ge=0, why="a duration",
                                     description="delay added to an affected order's arrival [s or '26w']")
    price_factor: float = bounded(1.0, gt=0, le=1_000, why="a thousandfold price is beyond any market",
                                  description="unit-price multiplier of orders placed in the window [-]")

    @model_validator(mode="after")
    def _one_target(self):
        require_exactly_one(self, "vendor", "accelerator")
        return self


class Supply(Strict):
    """Supply risk: shocks that delay, cut or raise the price of orders."""

    shocks: tuple[Shock, ...] = Field((), description="supply shocks, each on one vendor or accelerator")
