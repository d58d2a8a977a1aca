"""The money ledger: dated entries of what the site costs, built once after training and serving.

What is modelled, per entry (USD; times in seconds since the scenario start):

* ``capex`` (cash, not a cost): an owned pool's purchases, one per purchase tranche
  (``ResolvedPool.purchases``) and item (column ``item``): ``chips`` (chips × price per chip), ``servers``
  (chips ÷ ``chips_per_server`` servers × ``site.server_usd``), ``racks_network`` and ``installation``
  (chips ÷ chips per rack racks × ``site.rack_usd`` and × ``site.installation_usd_per_rack``). Servers and
  racks are bought pro rata by chips: a tranche filling part of a rack buys that fraction of it (fractional
  racks, so every chip carries the same share; whole racks would charge the first chips of a part-filled
  rack for all of it). A tranche is the pool's first chips on its online date or a delivery on its date
  at its own chip price (``fleet[].deliveries``; tranches after the horizon are not bought within the run).
  The chip price is the pool's ``purchase_usd_per_chip`` or the catalog's ``price_usd`` unless a delivery
  carries its own; items with no cost (e.g. ``server_usd: 0``) write no row.
* ``depreciation`` (``site.capex_accounting: depreciation``, the default): all of a tranche's hardware
  (every item) straight line over ``site.amortization_years`` from the day it comes online, no resale
  value, per online chip-hour at the tranche's hardware value per chip ÷ life, per pool and calendar month;
  it stops when the tranche is fully depreciated (its life is over) or the pool leaves.
* ``write_off`` (depreciation accounting): an owned pool that leaves within the run (``online_until``)
  writes off the book value its tranches still carry then (hardware value × the share of their life not
  yet depreciated), on that date; no resale. A partial retirement (``fleet[].retirements``) takes chips from
  the oldest tranches first (FIFO, ``retired_by_tranche``) and writes off their book value on its date; their
  depreciation and maintenance stop then.
* ``capex_cash_cost`` (``site.capex_accounting: cash``): the whole purchase is a cost on its date, per item
  like its ``capex`` rows (which stay: the cash flow); no depreciation and no write-off.
* ``maintenance``: ``site.maintenance_frac_per_year`` of a tranche's chip price per year (servers, racks and
  installation carry none: a simplification), accrued per online chip-hour (for as long as the chips are
  online, past their depreciation life too), per pool and month.
* ``rental``: a rented pool's rate per online chip-hour, per pool and month. Under a reserved term
  (``fleet[].rental_term``) the rate is the committed one and the pool is charged for every hour of its
  whole terms from ``online_from``, even after ``online_until`` (``ResolvedPool.charged_steps``), up to
  the horizon. A burst pool (``policy.burst``) is charged for the chips it rented, while online.
* ``energy``: per time-series bin, facility kWh (the exact bin integral of facility power, as
  ``sim.results.series`` computes it) × the site's electricity price, with its carbon (kWh × gCO2e/kWh),
  one row per pool: the bin's facility kWh split by the pools' shares of its IT power (each pool's online
  chips idle plus its busy chips' increment, training and inference alike: ``it_power_kw.<pool>`` of the
  time series), so every pool carries its own energy and the PUE overhead in proportion. A bin whose IT
  power no pool explains (none given, or zero) is a site row (no pool). A bin straddling a month's first
  midnight (only when the bin width does not divide a day) is split between the two months pro rata by
  time: the total stays exact, the split assumes even power in that bin.

* ``porting``: a porting project's one-off cost (``porting[].cost_usd`` + ``engineer_weeks`` ×
  ``site.engineer_week_usd``) on the port's start date (time 0 for a port without one), once; it belongs to no
  pool (column ``pool`` empty, ``accelerator`` the port's target, ``item`` ``<from_stack>-><accelerator>``).

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
COST_CATEGORIES = ("depreciation", "write_off", "capex_cash_cost", "maintenance", "rental", "energy", "porting")
CATEGORIES = ("capex",) + COST_CATEGORIES
CAPEX_ITEMS = ("chips", "servers", "racks_network", "installation")
COLUMNS = ["time_s", "end_s", "month", "category", "pool", "accelerator", "ownership", "usd", "kwh", "carbon_kg",
           "item"]


def online_window_s(pool, horizon_s: float) -> tuple[float, float]:
    """``[from, until)`` of a pool inside the run [s]; empty (from >= until) when it is never online."""
    return max(0.0, pool.online_from_s), min(float(horizon_s), pool.online_until_s)


def _chip_steps(pool, horizon_s: float, charged: bool = False) -> list[tuple[float, int]]:
    """(time [s], chips online from then), closed by a step of 0 chips: ``ResolvedPool.chip_steps`` (the one
    step function of a pool's online chips, deliveries and retirements included), or with ``charged`` the chips
    its cost is charged for (``ResolvedPool.charged_steps``: a reserved term runs on after the pool leaves)."""
    steps = pool.charged_steps(horizon_s) if charged else pool.chip_steps(horizon_s)
    return list(zip(*steps))


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
        zeros included, capex as cash), or ``pool`` / ``ownership`` (costs with a pool: chips and each pool's
        energy; site energy rows, if any, belong to no pool)."""
        rows = self.entries if column == "category" else self.entries[self.entries["pool"] != ""]
        if column != "category":
            rows = rows[rows["category"] != "capex"]
        table = rows.pivot_table(index="month", columns=column, values="usd", aggfunc="sum", fill_value=0.0)
        names = list(CATEGORIES) if column == "category" else sorted(set(rows[column]))
        return table.reindex(index=self.months, columns=names, fill_value=0.0)


def build_ledger(pools, site, start: dt.date, horizon_s: float, bin_edges_s: np.ndarray,
                 facility_power_kw: np.ndarray, pool_it_power_kw: dict[str, np.ndarray] | None = None,
                 porting_costs=(), price_usd_per_kwh: np.ndarray | None = None,
                 carbon_g_per_kwh: np.ndarray | None = None) -> Ledger:
    """The ledger of a run from plain values: resolved pools (``online_from_s``, ``online_until_s`` when
    present, ``count``, ``owner``, ``purchases()`` of owned pools, a rented pool's ``chip_cost_usd_per_hour``),
    the resolved site (price, carbon, amortization, maintenance, hardware beyond the chips, capex
    accounting), the scenario start date, the horizon [s], the facility power per time-series bin (bin means
    [kW] over ``bin_edges_s``) and, to split energy by pool, each pool's IT power per bin [kW] (pool name ->
    array; without it all energy is the site's), the porting projects' costs (``(time [s], USD, port)``,
    ``sim.catalog.efficiency.port_costs``), and ``price_usd_per_kwh`` and ``carbon_g_per_kwh``, the energy
    price and grid carbon per bin (``sim.facility``: time-varying); without them the site's constants."""
    edges, months = month_edges(start, horizon_s)
    rows: list[tuple] = []
    online_chip_s: dict[str, np.ndarray] = {}
    for pool in pools:
        lo, hi = online_window_s(pool, horizon_s)
        chip_s = _per_month_chip_s(_chip_steps(pool, horizon_s), edges)
        online_chip_s[pool.name] = chip_s
        if pool.owner == "owned":
            rows += _ownership_rows(pool, lo, hi, horizon_s, site, edges, months)
            continue
        charged = _chip_steps(pool, horizon_s, charged=True)
        chip_s = _per_month_chip_s(charged, edges)
        hi = max(hi, charged[-1][0])
        accel = pool.accelerator.id
        for m, seconds in enumerate(chip_s):
            if seconds > 0:
                rows.append((max(edges[m], lo), min(edges[m + 1], hi), months[m], "rental", pool.name, accel,
                             pool.owner, seconds / 3600.0 * pool.chip_cost_usd_per_hour, 0.0, 0.0, ""))
    for at, usd, port in porting_costs:
        month = months[min(int(np.searchsorted(edges, at, side="right")) - 1, len(months) - 1)]
        rows.append((at, at, month, "porting", "", port.accelerator, "", usd, 0.0, 0.0,
                     f"{port.from_stack}->{port.accelerator}"))
    n_bins = len(bin_edges_s) - 1
    price = np.full(n_bins, site.electricity_usd_per_kwh) if price_usd_per_kwh is None else price_usd_per_kwh
    carbon = np.full(n_bins, site.carbon_g_per_kwh) if carbon_g_per_kwh is None else carbon_g_per_kwh
    energy = _energy_rows(bin_edges_s, facility_power_kw, edges, months, (price, carbon),
                          _energy_shares(pools, facility_power_kw, pool_it_power_kw))
    entries = pd.concat([pd.DataFrame(rows, columns=COLUMNS), energy], ignore_index=True)
    entries = entries.sort_values(["time_s", "category", "pool"], kind="stable", ignore_index=True)
    return Ledger(entries=entries, month_edges_s=edges, months=months, online_chip_s=online_chip_s)


def _ownership_rows(pool, lo: float, hi: float, horizon_s: float, site, edges, months) -> list[tuple]:
    """Capex, depreciation (or cash cost), maintenance and write-off entries of an owned pool, tranche by
    tranche (``ResolvedPool.purchases``), inside its online window ``[lo, hi)`` of the run."""
    rows: list[tuple] = []
    life_s = site.amortization_years * YEAR_S
    accel, owner = pool.accelerator.id, pool.owner
    cash = getattr(site, "capex_accounting", "depreciation") == "cash"

    def month_of(at: float) -> str:
        return months[min(int(np.searchsorted(edges, at, side="right") - 1), len(months) - 1)]

    tranches = pool.purchases()
    retired = retired_by_tranche(tranches, pool.retirements)
    for (at, chips, price), leaving in zip(tranches, retired):
        start = max(at, lo)
        if not chips or start > horizon_s:
            continue  # bought after the run
        items = capex_items_usd(pool, site, chips, price)
        value = sum(items.values()) / chips  # the tranche's hardware per chip [USD]
        rows += _purchase_rows(pool, start, month_of(start), items, cash)
        # cash accounting: an empty depreciation window (the purchase is already a cost)
        windows = {"depreciation": (start, start if cash else min(hi, start + life_s), value / life_s),
                   "maintenance": (start, hi, price * site.maintenance_frac_per_year / YEAR_S)}
        for category, (a, b, usd_per_chip_s) in windows.items():
            if leaving:  # retired chips stop at their date: chip-seconds of each part of the tranche
                parts = [(t, n) for t, n in leaving] + [(b, chips - sum(n for _, n in leaving))]
                chip_s = sum(n * overlap_s(a, min(b, t), edges) for t, n in parts)
                b = max((min(b, t) for t, n in parts if n), default=a)
                for m in np.flatnonzero(chip_s > 0):
                    rows.append((max(edges[m], a), min(edges[m + 1], b), months[m], category, pool.name, accel,
                                 owner, chip_s[m] * usd_per_chip_s, 0.0, 0.0, ""))
                continue
            seconds = overlap_s(a, b, edges)
            for m in np.flatnonzero(seconds > 0):
                rows.append((max(edges[m], a), min(edges[m + 1], b), months[m], category, pool.name, accel, owner,
                             chips * seconds[m] * usd_per_chip_s, 0.0, 0.0, ""))
        remaining = chips
        for t, n in leaving:  # a retirement writes off the book value its chips still carry
            remaining -= n
            if not cash and start < t < min(horizon_s, start + life_s):
                book = n * value * (1.0 - (t - start) / life_s)
                rows.append((t, t, month_of(t), "write_off", pool.name, accel, owner, book, 0.0, 0.0, ""))
        # leaves within the run, not fully depreciated
        if remaining and not cash and start < hi < min(horizon_s, start + life_s):
            book = remaining * value * (1.0 - (hi - start) / life_s)
            rows.append((hi, hi, month_of(hi), "write_off", pool.name, accel, owner, book, 0.0, 0.0, ""))
    return rows


def retired_by_tranche(tranches, retirements) -> list[list[tuple[float, int]]]:
    """Per purchase tranche (``ResolvedPool.purchases`` order), the ``(time [s], chips)`` of it that retirements
    (``ResolvedPool.retirements``) take: oldest tranches first (FIFO), among the tranches bought by then.
    Chips beyond what the tranches hold (not left by validation) are not charged to any."""
    left = [chips for _, chips, _ in tranches]
    order = sorted(range(len(tranches)), key=lambda k: tranches[k][0])
    out: list[list[tuple[float, int]]] = [[] for _ in tranches]
    for t, chips in retirements:
        for k in order:
            if chips <= 0 or tranches[k][0] > t:
                break
            take = min(chips, left[k])
            if take:
                out[k].append((t, take))
                left[k] -= take
                chips -= take
    return out


def capex_items_usd(pool, site, chips: float, price: float) -> dict[str, float]:
    """What a purchase tranche of ``chips`` chips at ``price`` USD each buys, by item (``CAPEX_ITEMS``) [USD]:
    the chips, and their share of servers, racks with their network, and rack installation
    (``ResolvedSite.hardware_usd_per_chip``: pro rata, fractional servers and racks). A site without those
    fields (a plain test double) buys chips only."""
    items = {"chips": chips * price}
    if hasattr(site, "hardware_usd_per_chip"):
        shares = site.hardware_usd_per_chip(pool.chips_per_server, pool.servers_per_rack)
        items.update({item: chips * usd for item, usd in shares.items()})
    return items


def _purchase_rows(pool, at: float, month: str, items: dict[str, float], cash: bool) -> list[tuple]:
    """A tranche's ``capex`` rows on its date, one per item with a cost, and with cash accounting the same
    amounts as ``capex_cash_cost`` (the purchase a cost of its month)."""
    categories = ("capex", "capex_cash_cost") if cash else ("capex",)
    return [(at, at, month, category, pool.name, pool.accelerator.id, pool.owner, usd, 0.0, 0.0, item)
            for category in categories for item, usd in items.items() if usd]


def _energy_shares(pools, facility_kw, pool_it_kw) -> list[tuple[tuple[str, str, str], np.ndarray]]:
    """``((pool, accelerator, ownership), share of each bin's facility energy)`` per pool with IT power, and
    the site's share (``("", "", "")``: bins whose IT power no pool explains) when there is any."""
    n = len(facility_kw)
    named = [(p, np.asarray(pool_it_kw[p.name], dtype=np.float64)) for p in pools if p.name in (pool_it_kw or {})]
    total = np.zeros(n)
    for _, kw in named:
        total = total + kw
    explained = total > 0
    shares = [((p.name, p.accelerator.id, p.owner), np.divide(kw, total, out=np.zeros(n), where=explained))
              for p, kw in named if kw.any()]
    if not explained.all():
        shares.append((("", "", ""), (~explained).astype(np.float64)))
    return shares


def _energy_rows(bin_edges_s, facility_kw, edges, months, tariff, shares) -> pd.DataFrame:
    """Per bin (two parts for a bin cut by a month edge) and share (``_energy_shares``) with energy in it: the
    share of facility kWh, × the bin's price, and its carbon (``tariff``: price and carbon per bin)."""
    bin_edges_s = np.asarray(bin_edges_s, dtype=np.float64)
    facility_kw = np.asarray(facility_kw, dtype=np.float64)
    cuts = np.union1d(bin_edges_s, edges[(edges > bin_edges_s[0]) & (edges < bin_edges_s[-1])])
    lo, hi = cuts[:-1], cuts[1:]
    which_bin = np.searchsorted(bin_edges_s, lo, side="right") - 1
    which_month = np.searchsorted(edges, lo, side="right") - 1
    kwh = facility_kw[which_bin] * (hi - lo) / 3600.0
    price, carbon = (np.asarray(values, dtype=np.float64)[which_bin] for values in tariff)
    frames = []
    for (pool, accel, owner), share in shares:
        part = share[which_bin]
        keep = part > 0
        pool_kwh = kwh[keep] * part[keep]
        frames.append(pd.DataFrame({"time_s": lo[keep], "end_s": hi[keep],
                                    "month": np.array(months, dtype=object)[which_month[keep]],
                                    "category": "energy", "pool": pool, "accelerator": accel, "ownership": owner,
                                    "usd": pool_kwh * price[keep], "kwh": pool_kwh,
                                    "carbon_kg": pool_kwh * carbon[keep] / 1000.0, "item": ""},
                                   columns=COLUMNS))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
