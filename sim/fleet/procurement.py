"""Procurement orders and supply shocks resolved into dated deliveries (``procurement.orders``, ``supply.shocks``).

What is modelled, per order (times in seconds since the scenario start):

* lead time: fixed, log-normal (median, sigma) or one of a list of observed values with equal probability, drawn
  from the run's ``supply`` random stream (``sim.rng``) in file order, one draw per random order (a fixed lead
  time draws nothing);
* supply shocks: a shock hits an order when it names the order's accelerator (or its vendor) and the order's
  undisturbed arrival (order date + lead time) falls in its window (both days included). Every shock that hits
  adds its ``extra_delay`` to the arrival and multiplies the share of chips that ever arrive by its
  ``delivery_factor`` (rounded down to whole scale-up domains and servers: the rest is the shortfall, never
  delivered). A shock whose window holds the order *date* multiplies the unit price by its ``price_factor``;
* price: the order's ``unit_price_usd``, else the price schedule of its accelerator at the order date, else the
  pool's price (``purchase_usd_per_chip``, else the catalog's ``price_usd``); times the price factors above;
* installation: from the arrival on, ``install_racks_per_week`` racks a week (rounded down to whole domains, at
  least one domain) are installed; each week's batch comes online ``burn_in`` after its installation week began,
  and never before the pool itself comes online. Without a rate every chip is installed at once.

Simplifications: installation capacity is per order (two orders of one pool do not share installers); a shock's
delay and shortfall do not depend on how long the window lasts; chips arrive whole at the arrival instant; the
price is paid per delivered chip at its delivery (no deposits, no cancellation terms). Each batch that comes
online before the run ends (and before the pool leaves) becomes one delivery of the pool (``ResolvedPool
.deliveries``); the others are not delivered within the run.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

WEEK_S = 7 * 86400.0
DAY_S = 86400.0


@dataclass(frozen=True)
class PoolLayout:
    """What an order needs of its pool: chips per whole unit (domain and server), chips per rack, its chip and
    owner, default price and online window [s]."""

    index: int
    name: str
    accelerator: str
    vendor: str
    owner: str
    unit_chips: int  # a delivery is whole scale-up domains and whole servers: a multiple of this
    rack_chips: int
    usd_per_chip: float | None
    online_from_s: float
    online_until_s: float


@dataclass(frozen=True)
class OrderOutcome:
    """One resolved order: what was drawn, which shocks hit it, and the batches that came online in the run."""

    index: int  # position in procurement.orders
    pool: int  # pool index
    pool_name: str
    accelerator: str
    chips: int  # ordered
    order_s: float
    lead_time_s: float  # drawn, before any shock delay
    arrival_s: float  # order + lead time + shock delays
    arriving_chips: int  # chips that ever arrive (after the shocks' delivery factors)
    unit_usd: float | None
    shocks: tuple[int, ...]  # indices in supply.shocks that changed its arrival, chips or price
    batches: tuple[tuple[float, int], ...]  # (online time [s], chips) of the batches online within the run

    @property
    def delivered_chips(self) -> int:
        """Chips online within the run (and while the pool is online)."""
        return sum(chips for _, chips in self.batches)

    @property
    def shortfall_chips(self) -> int:
        """Chips ordered that never arrive (supply shocks)."""
        return self.chips - self.arriving_chips


def draw_lead_time_s(lead_time, rng: np.random.Generator) -> float:
    """One lead time [s]: fixed (no draw), log-normal or one of the empirical values."""
    if lead_time.fixed is not None:
        return float(lead_time.fixed)
    if lead_time.lognormal is not None:
        return float(rng.lognormal(math.log(lead_time.lognormal.median), lead_time.lognormal.sigma))
    values = lead_time.empirical
    return float(values[int(rng.integers(len(values)))])


def price_at(schedule, accelerator: str, date: dt.date) -> float | None:
    """The scheduled price of ``accelerator`` on ``date`` (the last point on or before it), or None."""
    points = sorted((p.date, p.usd_per_chip) for p in schedule if p.accelerator == accelerator)
    at = bisect.bisect_right([d for d, _ in points], date)
    return points[at - 1][1] if at else None


def batch_chips(unit_chips: int, rack_chips: int, racks_per_week: float | None, chips: int) -> int:
    """Chips installed per week: ``racks_per_week`` racks rounded down to whole units, at least one unit;
    every chip at once without a rate."""
    if racks_per_week is None:
        return chips
    return max(unit_chips, int(racks_per_week * rack_chips // unit_chips) * unit_chips)


def install_batches(arrival_s: float, chips: int, per_week: int, burn_in_s: float, earliest_s: float,
                    cutoff_s: float) -> tuple[tuple[float, int], ...]:
    """``(online time [s], chips)`` of each weekly batch that comes online before ``cutoff_s``: batch k is
    installed from ``arrival_s + k weeks`` and online ``burn_in_s`` later, not before ``earliest_s``."""
    batches = []
    left, k = chips, 0
    while left > 0:
        at = max(arrival_s + k * WEEK_S + burn_in_s, earliest_s)
        if at >= cutoff_s:
            break
        size = min(per_week, left)
        batches.append((at, size))
        left -= size
        k += 1
    return tuple(batches)


def _day_s(start: dt.date, date: dt.date) -> float:
    return (date - start).days * DAY_S


def _hits(shock, layout: PoolLayout) -> bool:
    return shock.accelerator == layout.accelerator if shock.accelerator is not None else shock.vendor == \
        layout.vendor


def resolve_orders(orders, shocks, schedule, start: dt.date, horizon_s: float,
                   layouts: dict[str, PoolLayout], rng: np.random.Generator) -> tuple[OrderOutcome, ...]:
    """Every order resolved into its batches (module docstring). ``layouts`` maps pool names to their layout
    (orders on a pool missing from it, or on a rented pool, draw their lead time and deliver nothing: validation
    reports them). ``rng`` is the run's ``supply`` stream, fresh: the draws follow the orders' file order."""
    outcomes = []
    for index, order in enumerate(orders):
        lead_s = draw_lead_time_s(order.lead_time, rng)
        layout = layouts.get(order.pool)
        if layout is None or layout.owner != "owned":
            continue
        order_s = _day_s(start, order.order_date)
        undisturbed = order_s + lead_s
        hit, delay_s, factor, price_factor = [], 0.0, 1.0, 1.0
        for k, shock in enumerate(shocks):
            if not _hits(shock, layout):
                continue
            arrival_hit = _day_s(start, shock.window.start) <= undisturbed < _day_s(start, shock.window.end) + DAY_S
            price_hit = shock.window.start <= order.order_date <= shock.window.end
            if arrival_hit:
                delay_s += float(shock.extra_delay)
                factor *= shock.delivery_factor
            if price_hit:
                price_factor *= shock.price_factor
            if (arrival_hit and (shock.extra_delay > 0 or shock.delivery_factor < 1)) or \
                    (price_hit and shock.price_factor != 1):
                hit.append(k)
        unit = layout.unit_chips
        arriving = min(order.chips, int(math.floor(order.chips * factor / unit + 1e-9)) * unit)
        price = order.unit_price_usd
        if price is None:
            price = price_at(schedule, layout.accelerator, order.order_date)
        if price is None:
            price = layout.usd_per_chip
        arrival_s = undisturbed + delay_s
        per_week = batch_chips(unit, layout.rack_chips, order.install_racks_per_week, arriving)
        batches = install_batches(arrival_s, arriving, per_week, float(order.burn_in), layout.online_from_s,
                                  min(horizon_s, layout.online_until_s))
        outcomes.append(OrderOutcome(
            index=index, pool=layout.index, pool_name=layout.name, accelerator=layout.accelerator, chips=order.chips,
            order_s=order_s, lead_time_s=lead_s, arrival_s=arrival_s, arriving_chips=arriving,
            unit_usd=None if price is None else price * price_factor, shocks=tuple(hit), batches=batches))
    return tuple(outcomes)


def merged_deliveries(fixed: tuple[tuple[float, int], ...], fixed_usd: tuple[float, ...],
                      outcomes: tuple[OrderOutcome, ...], pool: int) -> tuple[tuple, tuple]:
    """A pool's deliveries in time order, fixed ones (``fleet[].deliveries``) and its orders' batches, with
    the price per chip of each: ``((time [s], chips), ...), (USD per chip, ...)``. Ties keep fixed deliveries
    first, then orders in file order."""
    rows = [(at, 0, k, chips, usd) for k, ((at, chips), usd) in enumerate(zip(fixed, fixed_usd))]
    rows += [(at, 1, o.index, chips, o.unit_usd) for o in outcomes if o.pool == pool for at, chips in o.batches]
    rows.sort(key=lambda row: row[:3])
    return tuple((at, chips) for at, _, _, chips, _ in rows), tuple(usd for *_, usd in rows)


ORDER_COLUMNS = ["order", "pool", "accelerator", "order_date", "chips_ordered", "chips_delivered", "chips_after_run",
                 "shortfall_chips", "lead_time_days", "arrival_date", "first_delivery", "last_delivery",
                 "unit_price_usd", "capex_usd", "shocks"]


def order_rows(outcomes: tuple[OrderOutcome, ...], orders, shocks, start: dt.date) -> list[dict]:
    """One row per order for ``procurement.csv`` (chips, drawn lead time, delivery dates, price, shocks);
    orders that resolve to nothing (reported by validation) do not reach a run."""
    rows = []
    for o in outcomes:
        delivered = o.delivered_chips
        rows.append({
            "order": o.index, "pool": o.pool_name, "accelerator": o.accelerator,
            "order_date": orders[o.index].order_date.isoformat(), "chips_ordered": o.chips,
            "chips_delivered": delivered, "chips_after_run": o.arriving_chips - delivered,
            "shortfall_chips": o.shortfall_chips, "lead_time_days": o.lead_time_s / DAY_S,
            "arrival_date": _date_text(start, o.arrival_s),
            "first_delivery": _date_text(start, o.batches[0][0]) if o.batches else "",
            "last_delivery": _date_text(start, o.batches[-1][0]) if o.batches else "",
            "unit_price_usd": o.unit_usd, "capex_usd": delivered * (o.unit_usd or 0.0),
            "shocks": "; ".join(f"supply.shocks[{k}] {shocks[k].vendor or shocks[k].accelerator}" for k in o.shocks),
        })
    return rows


def _date_text(start: dt.date, t_s: float) -> str:
    """The calendar day ``t_s`` seconds after ``start`` (ISO), or '' past any calendar date."""
    try:
        return (dt.datetime.combine(start, dt.time()) + dt.timedelta(seconds=t_s)).date().isoformat()
    except OverflowError:
        return ""


def procurement_summary(outcomes: tuple[OrderOutcome, ...]) -> dict:
    """``summary.json``'s ``procurement`` section: chips ordered, delivered within the run, arriving after it,
    never arriving (shortfall), and the capex of the delivered chips [USD]."""
    delivered = sum(o.delivered_chips for o in outcomes)
    arriving = sum(o.arriving_chips for o in outcomes)
    return {"orders": len(outcomes), "chips_ordered": sum(o.chips for o in outcomes), "chips_delivered": delivered,
            "chips_after_run": arriving - delivered, "shortfall_chips": sum(o.shortfall_chips for o in outcomes),
            "capex_usd": float(sum(o.delivered_chips * (o.unit_usd or 0.0) for o in outcomes))}
