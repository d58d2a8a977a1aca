"""The money ledger: dated entries of what the site costs, built once after training and serving.

What is modelled, per entry (USD; times in seconds since the scenario start):

* ``capex`` (cash, not a cost): an owned pool's purchases, ``chips × price per chip``, one per purchase
  tranche (``ResolvedPool.purchases``): its first chips on its online date, each delivery on its date at its
  own price (``fleet[].deliveries``; tranches after the horizon are not bought within the run). The price is
  the pool's ``purchase_usd_per_chip`` or the catalog's ``price_usd`` unless a delivery carries its own.
* ``depreciation``: straight line over ``site.amortization_years`` from the day a tranche comes online, no
  resale value, per online chip-hour at the tranche's own price ÷ life, per pool and calendar month; it stops
  when the tranche is fully depreciated (its life is over) or the pool leaves.
* ``write_off``: an owned pool that leaves within the run (``online_until``) writes off the book value its
  tranches still carry then (price × the share of their life not yet depreciated), on that date; no resale.
* ``maintenance``: ``site.maintenance_frac_per_year`` of a tranche's purchase price per year, accrued per
  online chip-hour (for as long as the chips are online, past their depreciation life too), per pool and month.
* ``rental``: a rented pool's rate per online chip-hour, per pool and month. Under a reserved term
  (``fleet[].rental_term``) the rate is the committed one and the pool is charged for every hour of its
  whole terms from ``online_from``, even after ``online_until`` (``ResolvedPool.charged_steps``), up to
  the horizon. A burst pool (``policy.burst``) is charged for the chips it rented, while online.
* ``energy``: per time-series bin, facility kWh (the exact bin integral of facility power, as
  ``sim.results.series`` computes it) × the site's electricity price, with its carbon (kWh × gCO2e/kWh).
  A bin straddling a month's first midnight (only when the bin width does not divide a day) is split
  between the two months pro rata by time: the total stays exact, the split assumes even power in that bin.

A pool is online over ``[online_from_s, online_until_s)`` (``online_until_s`` is infinite for pools that
never leave), cut to the run ``[0, horizon]``; its online chips grow at each delivery
(``ResolvedPool.chip_steps``). Chip costs are charged for every online chip, busy or idle.
An owned pool that leaves stops depreciating and writes off its remaining book value.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.money.calendar import month_edges, overlap_s

HOURS_PER_YEAR = 365 * 24
YEAR_S = HOURS_PER_YEAR * 3600.0
COST_CATEGORIES = ("depreciation", "write_off", "maintenance", "rental", "energy")
CATEGORIES = ("capex",) + COST_CATEGORIES
COLUMNS = ["time_s", "end_s", "month", "category", "pool", "accelerator", "ownership", "usd", "kwh", "carbon_kg"]


def online_window_s(pool, horizon_s: float) -> tuple[float, float]:
    """``[from, until)`` of a pool inside the run [s]; empty (from >= until) when it is never online."""
    until = getattr(pool, "online_until_s", float("inf"))
    return max(0.0, pool.online_from_s), min(float(horizon_s), until)


def _chip_steps(pool, lo: float, hi: float, horizon_s: float, charged: bool = False) -> list[tuple[float, int]]:
    """(time [s], chips online from then), closed by a step of 0 chips: ``ResolvedPool.chip_steps`` (the one
    step function of a pool's online chips, deliveries included), or with ``charged`` the chips its cost is
    charged for (``ResolvedPool.charged_steps``: a reserved term runs on after the pool leaves); a plain pool
    has ``count`` over [lo, hi)."""
    if charged and hasattr(pool, "charged_steps"):
        return list(zip(*pool.charged_steps(horizon_s)))
    if hasattr(pool, "chip_steps"):
        return list(zip(*pool.chip_steps(horizon_s)))
    return [(lo, pool.count), (max(lo, hi), 0)]


def _per_month_chip_s(steps, edges) -> np.ndarray:
    chip_s = sum(chips * overlap_s(a, b, edges) for (a, chips), (b, _) in zip(steps, steps[1:]))
    return np.zeros(len(edges) - 1) + chip_s


@dataclass(frozen=True)
class Ledger:
    """The entries (one row each, ``COLUMNS``), the run's calendar months (edges [s] and ``YYYY-MM``
    labels) and the per-pool online chip-seconds in each month (``pool name -> array``)."""

    entries: pd.DataFrame
    month_edges_s: np.ndarray
    months: list[str]
    online_chip_s: dict[str, np.ndarray]

    def cost_usd(self, category: str | None = None) -> float:
        rows = self.entries[self.entries["category"] != "capex"] if category is None else \
            self.entries[self.entries["category"] == category]
        return float(rows["usd"].sum())

    def by_month(self, column: str = "category") -> pd.DataFrame:
        """USD per month (rows, in order) and value of ``column`` (columns): ``category`` (every category,
        zeros included, capex as cash), or ``pool`` / ``ownership`` (chip costs only: energy is the site's)."""
        rows = self.entries if column == "category" else self.entries[self.entries["pool"] != ""]
        if column != "category":
            rows = rows[rows["category"] != "capex"]
        table = rows.pivot_table(index="month", columns=column, values="usd", aggfunc="sum", fill_value=0.0)
        names = list(CATEGORIES) if column == "category" else sorted(set(rows[column]))
        return table.reindex(index=self.months, columns=names, fill_value=0.0)


def build_ledger(pools, site, start: dt.date, horizon_s: float, bin_edges_s: np.ndarray,
                 facility_power_kw: np.ndarray) -> Ledger:
    """The ledger of a run from plain values: resolved pools (``online_from_s``, ``online_until_s`` when
    present, ``count``, ``owner``, ``chip_cost_usd_per_hour``), the resolved site (price, carbon,
    amortization, maintenance), the scenario start date, the horizon [s], and the facility power per
    time-series bin (bin means [kW] over ``bin_edges_s``)."""
    edges, months = month_edges(start, horizon_s)
    rows: list[tuple] = []
    online_chip_s: dict[str, np.ndarray] = {}
    for pool in pools:
        lo, hi = online_window_s(pool, horizon_s)
        chip_s = _per_month_chip_s(_chip_steps(pool, lo, hi, horizon_s), edges)
        online_chip_s[pool.name] = chip_s
        if pool.owner == "owned":
            rows += _ownership_rows(pool, lo, hi, horizon_s, site, edges, months)
            continue
        charged = _chip_steps(pool, lo, hi, horizon_s, charged=True)
        chip_s = _per_month_chip_s(charged, edges)
        hi = max(hi, charged[-1][0])
        accel = pool.accelerator.id
        for m, seconds in enumerate(chip_s):
            if seconds > 0:
                rows.append((max(edges[m], lo), min(edges[m + 1], hi), months[m], "rental", pool.name, accel,
                             pool.owner, seconds / 3600.0 * pool.chip_cost_usd_per_hour, 0.0, 0.0))
    entries = pd.concat([pd.DataFrame(rows, columns=COLUMNS),
                         _energy_rows(bin_edges_s, facility_power_kw, edges, months, site)], ignore_index=True)
    entries = entries.sort_values(["time_s", "category", "pool"], kind="stable", ignore_index=True)
    return Ledger(entries=entries, month_edges_s=edges, months=months, online_chip_s=online_chip_s)


def _ownership_rows(pool, lo: float, hi: float, horizon_s: float, site, edges, months) -> list[tuple]:
    """Capex, depreciation, maintenance and write-off entries of an owned pool, tranche by tranche
    (``ResolvedPool.purchases``), inside its online window ``[lo, hi)`` of the run."""
    rows: list[tuple] = []
    life_s = site.amortization_years * YEAR_S
    accel, owner = pool.accelerator.id, pool.owner

    def month_of(at: float) -> str:
        return months[min(int(np.searchsorted(edges, at, side="right") - 1), len(months) - 1)]

    for at, chips, price in pool.purchases():
        start = max(at, lo)
        if not chips or start > horizon_s:
            continue  # bought after the run
        rows.append((start, start, month_of(start), "capex", pool.name, accel, owner, chips * price, 0.0, 0.0))
        windows = {"depreciation": (start, min(hi, start + life_s), price / life_s),
                   "maintenance": (start, hi, price * site.maintenance_frac_per_year / YEAR_S)}
        for category, (a, b, usd_per_chip_s) in windows.items():
            seconds = overlap_s(a, b, edges)
            for m in np.flatnonzero(seconds > 0):
                rows.append((max(edges[m], a), min(edges[m + 1], b), months[m], category, pool.name, accel, owner,
                             chips * seconds[m] * usd_per_chip_s, 0.0, 0.0))
        if start < hi < min(horizon_s, start + life_s):  # the pool leaves within the run, not fully depreciated
            book = chips * price * (1.0 - (hi - start) / life_s)
            rows.append((hi, hi, month_of(hi), "write_off", pool.name, accel, owner, book, 0.0, 0.0))
    return rows


def _energy_rows(bin_edges_s, facility_kw, edges, months, site) -> pd.DataFrame:
    """One energy entry per bin (two for a bin cut by a month edge): facility kWh × price, and carbon."""
    bin_edges_s = np.asarray(bin_edges_s, dtype=np.float64)
    facility_kw = np.asarray(facility_kw, dtype=np.float64)
    cuts = np.union1d(bin_edges_s, edges[(edges > bin_edges_s[0]) & (edges < bin_edges_s[-1])])
    lo, hi = cuts[:-1], cuts[1:]
    which_bin = np.searchsorted(bin_edges_s, lo, side="right") - 1
    which_month = np.searchsorted(edges, lo, side="right") - 1
    kwh = facility_kw[which_bin] * (hi - lo) / 3600.0
    return pd.DataFrame({"time_s": lo, "end_s": hi, "month": np.array(months, dtype=object)[which_month],
                         "category": "energy", "pool": "", "accelerator": "", "ownership": "",
                         "usd": kwh * site.electricity_usd_per_kwh, "kwh": kwh,
                         "carbon_kg": kwh * site.carbon_g_per_kwh / 1000.0}, columns=COLUMNS)
