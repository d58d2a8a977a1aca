"""Resolve a scenario's site and pools against the catalog, and build the fleet's topology.

A *pool* is identical chips (one accelerator type, cooling and owner). Chips sit in servers
(``chips_per_server``), servers in racks (``servers_per_rack``), and chips joined by the fast fabric form
*scale-up domains* (an 8-GPU HGX server, a 72-GPU NVL72 rack, a TPU slice). The engine counts free chips
per domain; individual chips never appear in the hot path.

Power model (per chip, at the wall of the IT equipment): idle ``idle_w`` and full load ``tdp_w``, both
multiplied by ``1 + server_power_overhead_frac`` for host CPUs, NICs, fans and PSU losses, plus the chip's share of
the scale-out switches (``network_w_per_chip``: ``network_w_per_400gbps`` per 400 Gb/s of the chip's scale-out
bandwidth, the same idle or busy). Facility power
is IT power times the pinned PUE. These are simplifications until the facility issue lands.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

from sim.catalog import AcceleratorSpec, Catalog
from sim.fleet.power_limit import limit_clock_frac, power_limited
from sim.fleet.procurement import OrderOutcome, PoolLayout, merged_deliveries, price_at, resolve_orders
from sim.fleet.windows import group_window_s, windowed
from sim.rng import streams

if TYPE_CHECKING:  # the scenario layer validates with this module, so it is not imported at run time
    from sim.scenario.schema import Pool, Scenario, Site

HOURS_PER_YEAR = 365 * 24
TERM_S = {"reserved-1y": HOURS_PER_YEAR * 3600.0, "reserved-3y": 3 * HOURS_PER_YEAR * 3600.0}  # a year is 365 d
TERM_RATE_FIELD = {"on-demand": "cloud_usd_per_chip_hour", "reserved-1y": "cloud_reserved_1y_usd_per_chip_hour",
                   "reserved-3y": "cloud_reserved_3y_usd_per_chip_hour"}
CAP_TOLERANCE = 1e-9  # relative: sums of watts in different orders differ in the last bits


def within_cap(power_w: float, cap_w: float | None) -> bool:
    """Whether facility power ``power_w`` respects the site cap (none = no cap), up to rounding."""
    return cap_w is None or power_w <= cap_w * (1.0 + CAP_TOLERANCE)


class FleetError(ValueError):
    def __init__(self, pool_index: int, field: str, message: str):
        self.pool_index, self.field = pool_index, field
        super().__init__(message)


@dataclass(frozen=True)
class ResolvedSite:
    power_cap_w: float | None
    pue: float
    electricity_usd_per_kwh: float
    carbon_g_per_kwh: float
    cooling_kw_per_rack: dict[str, float]
    server_power_overhead_frac: float
    amortization_years: float
    maintenance_frac_per_year: float = 0.0  # upkeep of owned chips per year, share of purchase price
    server_usd: float = 0.0  # a server beyond its accelerators [USD]
    rack_usd: float = 0.0  # a rack beyond its servers: rack, PDUs, ToR and its share of the spine [USD]
    # a dated cap schedule ((date, W), ...) in date order; () for a fixed cap (``site.power_cap_mw``)
    power_cap_dates: tuple = ()
    installation_usd_per_rack: float = 0.0  # one-off installation of a rack [USD]
    capex_accounting: str = "depreciation"  # or "cash": owned hardware a cost on its purchase date
    checkpoint_storage_gb_per_s: float = 2000.0  # a training job's checkpoint save/restore bandwidth [GB/s]
    embodied_kg_per_accelerator: float = 0.0  # manufacturing carbon of one accelerator [kgCO2e]
    embodied_kg_per_server: float = 0.0  # ... of one server beyond its accelerators [kgCO2e]
    spine_oversubscription: float = 1.0  # what a rack's servers send / what its spine uplinks carry [-]
    cooling_over_capacity: str = "error"  # a rack over its cooling: "error", or "throttle" its chips' power
    network_w_per_400gbps: float = 0.0  # scale-out switch power per 400 Gb/s of a chip's bandwidth [W] (site.yaml)

    def hardware_usd_per_chip(self, chips_per_server: int, servers_per_rack: int) -> dict[str, float]:
        """What owned hardware costs per accelerator beyond the chip itself [USD], by item: ``servers``
        (``server_usd / chips_per_server``), ``racks_network`` and ``installation`` (``rack_usd`` and
        ``installation_usd_per_rack`` / chips per rack). Pro rata: a pool or delivery that fills part of a
        server or rack buys that fraction of it (fractional servers and racks), so every chip carries the
        same share."""
        per_rack = chips_per_server * servers_per_rack
        return {"servers": self.server_usd / chips_per_server, "racks_network": self.rack_usd / per_rack,
                "installation": self.installation_usd_per_rack / per_rack}


@dataclass(frozen=True)
class ResolvedPool:
    index: int
    name: str
    accelerator: AcceleratorSpec
    count: int
    chips_per_server: int
    servers_per_rack: int
    domain_chips: int
    cooling: str
    online_from_s: float
    owner: str
    multi_domain_gangs: bool
    server_power_overhead_frac: float
    chip_cost_usd_per_hour: float
    shared: bool = False  # inference and training share it: inactive replicas' chips are lent to training
    online_until_s: float = math.inf  # when the pool leaves (retirement, end of a rental contract) [s]

    deliveries: tuple[tuple[float, int], ...] = ()  # (time [s], chips) joining the pool after online_from_s
    # (time [s], chips) leaving the pool before online_until_s (``fleet[].retirements``), in date order
    retirements: tuple[tuple[float, int], ...] = ()
    drain_s: float = 0.0  # before each retirement and online_until_s the leaving domains take no new job [s]
    rental_term: str = "on-demand"  # a rented pool's terms: on-demand, reserved-1y, reserved-3y
    burst: bool = False  # rented by ``policy.burst``: online only while rented (``realised_steps``)
    # the online chips a run realised, as ``chip_steps`` returns them (a burst pool's rentals); None: static
    realised_steps: tuple[tuple[float, ...], tuple[int, ...]] | None = None
    # an owned pool's purchase price per chip [USD] (None for a rented pool), and the price of each delivery
    # in ``deliveries`` order (empty: every delivery at ``purchase_usd_per_chip``)
    purchase_usd_per_chip: float | None = None
    delivery_usd_per_chip: tuple[float, ...] = ()
    # an owned chip's share of its server, rack, network and installation, amortized [USD per chip-hour]:
    # not in chip_cost_usd_per_hour (chips are compared by that), added in fleet_cost_usd; 0 for a rented pool
    hardware_usd_per_chip_hour: float = 0.0
    spine_oversubscription: float = 1.0  # the site's (``ResolvedSite``): the rack->spine edges carry 1/ratio
    # site.cooling_over_capacity: throttle, and a rack at TDP over its cooling: the chips' clock fraction and the
    # power limit per chip [W] that fits the rack's power to its cooling (1.0 and None otherwise)
    heat_clock_frac: float = 1.0
    heat_power_limit_w: float | None = None
    # the chip's share of the scale-out switches [W], idle or busy: the site's W per 400 Gb/s × its scale-out bandwidth
    network_w_per_chip: float = 0.0
    # IT power budgets of each rack and each row of ``racks_per_row`` racks [W] (``sim.fleet.budgets``); None: none
    rack_budget_w: float | None = None
    racks_per_row: int = 0
    row_budget_w: float | None = None

    def purchases(self) -> list[tuple[float, int, float]]:
        """An owned pool's purchase tranches, ``(time [s], chips, USD per chip)``: its first chips at
        ``online_from_s`` and each delivery at its date and price; empty for a rented pool. Not cut to the
        run: the money ledger decides what falls inside it."""
        if self.purchase_usd_per_chip is None:
            return []
        prices = self.delivery_usd_per_chip or (self.purchase_usd_per_chip,) * len(self.deliveries)
        return [(self.online_from_s, self.initial_chips, self.purchase_usd_per_chip)] + [
            (at, chips, price) for (at, chips), price in zip(self.deliveries, prices)]

    @property
    def initial_chips(self) -> int:
        """Chips online from ``online_from_s``, before any later delivery."""
        return self.count - sum(chips for _, chips in self.deliveries)

    def chip_steps(self, horizon_s: float = math.inf) -> tuple[list[float], list[int]]:
        """The pool's online chips as a step function of time, cut to [0, horizon_s]: ``counts[i]`` chips
        are online from ``times[i]`` to ``times[i + 1]``; the last count is 0 (the pool left, or the horizon).

        Modelled: the pool's first chips (``initial_chips``) come online whole at ``online_from_s``, each
        delivery's chips whole at its date, each retirement's chips leave at its date (``retirements``; a
        draining domain is online until then), and every chip left leaves at ``online_until_s``. A burst pool
        (``burst``) has no chip online until a run rents them: after the run, ``realised_steps`` (set with
        ``with_realised_steps``) holds the chips it rented over time, and this function returns those.
        Everything that integrates a pool's online chips (utilization denominators, idle power and energy,
        chip cost, the money ledger, monthly.csv, capacity.png) reads this function or
        ``online_chip_seconds``."""
        start, end = self.online_window(horizon_s)
        if self.realised_steps is not None or self.burst:
            times, counts = self.realised_steps or ((start, end), (0, 0))
            return _cut_steps(list(times), list(counts), start, end)
        times, counts = [start], [self.initial_chips]
        changes = self.deliveries
        if self.retirements:  # chips leaving: the same steps, downwards (a delivery first on a shared date)
            changes = sorted(list(self.deliveries) + [(at, -chips) for at, chips in self.retirements],
                             key=lambda change: (change[0], change[1] < 0))
        for at, chips in changes:
            if start < at < end:
                times.append(at)
                counts.append(counts[-1] + chips)
            elif at <= start:  # not left by validation; kept consistent: the chips are there from the start
                counts[-1] += chips
        times.append(end)
        counts.append(0)
        return times, counts

    def chip_events(self, horizon_s: float) -> tuple[list[float], list[int]]:
        """``chip_steps`` as change events (times, ±chips), for ``sim.results.series``."""
        times, counts = self.chip_steps(horizon_s)
        return times, [counts[0]] + [b - a for a, b in zip(counts, counts[1:])]

    def with_realised_steps(self, times, counts) -> "ResolvedPool":
        """This pool with the online chips a run realised (``chip_steps`` form: the last count 0)."""
        return dataclasses.replace(self, realised_steps=(tuple(float(t) for t in times), tuple(int(n) for n in counts)))

    def online_chip_seconds(self, begin_s: float, end_s: float) -> float:
        """Chip-seconds the pool is online within [begin_s, end_s) [chip·s] (deliveries included)."""
        times, counts = self.chip_steps(end_s)
        return _integral(times, counts, begin_s, end_s)

    def charged_steps(self, horizon_s: float = math.inf) -> tuple[list[float], list[int]]:
        """The chips the pool's chip cost is charged for, as ``chip_steps``, cut to [0, horizon_s].

        Owned and on-demand rented pools: the online chips. A reserved term (``rental_term``) is a
        commitment: the chips online when the pool leaves stay charged until its last term ends, the
        window [online_from, online_until) rounded up to whole terms (a pool that never leaves is charged
        to the horizon; what the commitment costs after the run is not in the run's money). Chips
        delivered later join the commitment to the same end (co-terminous terms)."""
        times, counts = self.chip_steps(horizon_s)
        term = TERM_S.get(self.rental_term) if self.owner == "rented" else None
        if term is None or not math.isfinite(self.online_until_s):
            return times, counts
        window = self.online_until_s - self.online_from_s
        committed_end = min(self.online_from_s + math.ceil(window / term - 1e-9) * term, horizon_s)
        if committed_end <= times[-1] or len(counts) < 2:
            return times, counts
        return times + [committed_end], counts[:-1] + [counts[-2], 0]

    def charged_chip_seconds(self, begin_s: float, end_s: float) -> float:
        """Chip-seconds charged within [begin_s, end_s) [chip·s] (``charged_steps``)."""
        times, counts = self.charged_steps(end_s)
        return _integral(times, counts, begin_s, end_s)

    def online_window(self, horizon_s: float) -> tuple[float, float]:
        """The part of the run the pool is online, [start, end) in seconds from the run start, clipped
        to [0, horizon_s]; start == end when it is never online within the run. Everything that counts
        a pool's online time (utilization, idle energy, cost, capacity series) uses this window."""
        start = min(self.online_from_s, horizon_s)
        return start, max(start, min(self.online_until_s, horizon_s))

    def online_seconds(self, horizon_s: float) -> float:
        """Seconds the pool is online within the run [s] (its chips vary with deliveries: for chip-seconds
        use ``online_chip_seconds``)."""
        start, end = self.online_window(horizon_s)
        return end - start

    @property
    def servers(self) -> int:
        return self.count // self.chips_per_server

    def full_load_cost_usd_per_s(self, chips: int, pue: float, usd_per_kwh: float) -> float:
        """What ``chips`` of this pool cost per second at full load [USD/s]: their hourly cost (capex or
        rental) plus their facility energy (the price slo-aware routing ranks replicas by)."""
        energy_usd_per_s = self.busy_w_with_server * pue / 3.6e6 * usd_per_kwh
        return chips * (self.chip_cost_usd_per_hour / 3600.0 + energy_usd_per_s)

    @property
    def racks(self) -> int:
        return math.ceil(self.servers / self.servers_per_rack)

    @property
    def domain_sizes(self) -> list[int]:
        """Chips in each scale-up domain, in order; the last one may be partial."""
        full, rest = divmod(self.count, self.domain_chips)
        return [self.domain_chips] * full + ([rest] if rest else [])

    @property
    def idle_w_with_server(self) -> float:
        """IT power of one online idle chip [W]: the chip's idle power with its server share, plus its share of the
        scale-out switches (``network_w_per_chip``, constant)."""
        return self.accelerator.idle_w * (1 + self.server_power_overhead_frac) + self.network_w_per_chip

    @property
    def busy_w_with_server(self) -> float:
        """IT power of one chip at full load (TDP) [W], server and switch shares included."""
        return self.accelerator.tdp_w * (1 + self.server_power_overhead_frac) + self.network_w_per_chip

    @property
    def rack_power_w(self) -> float:
        """A full rack's chips at TDP with their servers [W] (the switches sit in network racks: not counted)."""
        return self.chips_per_server * self.servers_per_rack * self.accelerator.tdp_w * (
            1 + self.server_power_overhead_frac)


def _integral(times, counts, begin_s: float, end_s: float) -> float:
    """Integral of a chip step function over [begin_s, end_s) [chip·s]."""
    return float(sum(n * max(0.0, min(b, end_s) - max(a, begin_s)) for a, b, n in zip(times, times[1:], counts)))


def _cut_steps(times: list, counts: list, start: float, end: float) -> tuple[list[float], list[int]]:
    """A step function cut to [start, end], closed by a step of 0 chips at ``end``."""
    out_t, out_n = [start], [0]
    for at, chips in zip(times, counts):
        if at <= start:
            out_n[-1] = chips
        elif at < end:
            out_t.append(at)
            out_n.append(chips)
    out_t.append(max(end, start))
    out_n.append(0)
    return out_t, out_n


def _first_cap_w(cap_mw) -> float | None:
    """The site cap before any date of a schedule (its first value), or the fixed cap [W]; None: no cap."""
    if cap_mw is None:
        return None
    if isinstance(cap_mw, dict):
        return next(iter(cap_mw.values())) * 1e6
    return cap_mw * 1e6


def resolve_site(site: "Site", catalog: Catalog) -> ResolvedSite:
    """Fill unset site fields from the catalog's facility defaults (each with its source)."""
    d = catalog.site_defaults

    def pick(value, key):
        if value is None:
            return d[key]
        if hasattr(value, "mean"):  # a profile: its yearly mean (sim.facility gives the hourly values)
            return float(value.mean)
        if hasattr(value, "csv"):  # an hourly file: the catalog's figure until sim.facility reads the file
            return d[key]
        return float(value)

    return ResolvedSite(
        power_cap_w=_first_cap_w(site.power_cap_mw),
        power_cap_dates=tuple((d, mw * 1e6) for d, mw in site.power_cap_mw.items())
        if isinstance(site.power_cap_mw, dict) else (),
        pue=pick(site.pue, "pue"),
        electricity_usd_per_kwh=pick(site.electricity_usd_per_kwh, "electricity_usd_per_kwh"),
        carbon_g_per_kwh=pick(site.carbon_g_per_kwh, "carbon_g_per_kwh"),
        cooling_kw_per_rack={
            "air": pick(site.air_cooling_kw_per_rack, "air_cooling_kw_per_rack"),
            "rear-door": pick(site.rear_door_cooling_kw_per_rack, "rear_door_cooling_kw_per_rack"),
            "liquid": pick(site.liquid_cooling_kw_per_rack, "liquid_cooling_kw_per_rack"),
        },
        server_power_overhead_frac=pick(site.server_power_overhead_frac, "server_power_overhead_frac"),
        amortization_years=pick(site.amortization_years, "amortization_years"),
        maintenance_frac_per_year=pick(site.maintenance_frac_per_year, "maintenance_frac_per_year"),
        server_usd=pick(site.server_usd, "server_usd"),
        rack_usd=pick(site.rack_usd, "rack_usd"),
        installation_usd_per_rack=pick(site.installation_usd_per_rack, "installation_usd_per_rack"),
        capex_accounting=site.capex_accounting,
        checkpoint_storage_gb_per_s=pick(site.checkpoint_storage_gb_per_s, "checkpoint_storage_gb_per_s"),
        embodied_kg_per_accelerator=pick(site.embodied_kg_per_accelerator, "embodied_kg_per_accelerator"),
        embodied_kg_per_server=pick(site.embodied_kg_per_server, "embodied_kg_per_server"),
        spine_oversubscription=float(site.network.spine_oversubscription),
        cooling_over_capacity=site.cooling_over_capacity,
        network_w_per_400gbps=float(d.get("network_w_per_400gbps", 0.0)),
    )


def resolve_pools(scenario: "Scenario", catalog: Catalog,
                  supply_rng: np.random.Generator | None = None) -> list[ResolvedPool]:
    """Pools with every default filled in, orders delivered (``scenario_orders``); raises ``FleetError`` for an
    inconsistent layout."""
    site = resolve_site(scenario.site, catalog)
    orders = scenario_orders(scenario, catalog, supply_rng)
    return [resolve_pool(scenario, index, catalog, site, orders) for index in range(len(scenario.fleet))]


def pool_layout(scenario: "Scenario", index: int, catalog: Catalog) -> PoolLayout | None:
    """What an order needs of pool ``index`` (``sim.fleet.procurement``); None when its chip is unknown."""
    pool = scenario.fleet[index]
    accel = catalog.accelerators.get(pool.accelerator_id)
    if accel is None:
        return None
    domain = pool.scale_up_domain_chips or accel.scale_up_domain_chips
    per_server = pool.chips_per_server or min(8, domain)
    price = accel.price_usd if pool.purchase_usd_per_chip is None else pool.purchase_usd_per_chip
    return PoolLayout(
        index=index, name=pool.name, accelerator=accel.id, vendor=accel.vendor, owner=pool.owner,
        unit_chips=max(domain, per_server), rack_chips=per_server * pool.servers_per_rack,
        usd_per_chip=None if price is None else float(price),
        online_from_s=_day_s(scenario, pool.online_from) if pool.online_from else 0.0,
        online_until_s=_day_s(scenario, pool.online_until) if pool.online_until else math.inf)


def scenario_orders(scenario: "Scenario", catalog: Catalog,
                    supply_rng: np.random.Generator | None = None) -> tuple[OrderOutcome, ...]:
    """The scenario's procurement orders resolved (``sim.fleet.procurement.resolve_orders``): the one place
    that draws lead times. ``supply_rng`` is the run's fresh ``supply`` stream; without it a fresh one is made
    from the scenario's seed, so validation and the run draw the same numbers."""
    if not scenario.procurement.orders:
        return ()
    rng = streams(scenario.seed)["supply"] if supply_rng is None else supply_rng
    layouts = {}
    for index, pool in enumerate(scenario.fleet):
        layout = pool_layout(scenario, index, catalog)
        if layout is not None:
            layouts.setdefault(pool.name, layout)
    return resolve_orders(scenario.procurement.orders, scenario.supply.shocks, scenario.procurement.price_schedule,
                          scenario.start, float(scenario.duration), layouts, rng)


def _day_s(scenario: "Scenario", date) -> float:
    return float((date - scenario.start).days * 86400)


def resolve_pool(scenario: "Scenario", index: int, catalog: Catalog, site: ResolvedSite,
                 orders: tuple[OrderOutcome, ...] | None = None) -> ResolvedPool:
    """One pool with every default filled in; raises ``FleetError`` for an inconsistent layout.

    Its deliveries are the fixed ``fleet[].deliveries`` (priced at the price schedule of the chip at their date
    when one covers it, else at the pool's price) and the batches of its orders delivered within the run
    (``orders``, default ``scenario_orders``); ``count`` is the pool's own count plus those batches' chips."""
    pool = scenario.fleet[index]
    accel = catalog.accelerators[pool.accelerator_id]
    domain = pool.scale_up_domain_chips or accel.scale_up_domain_chips
    per_server = pool.chips_per_server or min(8, domain)
    if domain % per_server and per_server % domain:
        raise FleetError(index, "chips_per_server",
                         f"found {per_server}: a scale-up domain of {domain} chips must hold whole servers "
                         f"(or a server whole domains); accepted: a divisor or multiple of {domain}")
    if pool.count % per_server:
        raise FleetError(index, "count",
                         f"found {pool.count}: the pool must be whole servers of {per_server} chips; "
                         f"accepted: a multiple of {per_server}, "
                         f"e.g. {pool.count - pool.count % per_server or per_server}")
    limit_w = pool.power_limit_w
    if limit_w is not None:
        try:
            power_limited(accel, limit_w)
        except ValueError as exc:
            raise FleetError(index, "power_limit_w", str(exc)) from None
    cooling = pool.cooling or accel.cooling
    heat_limit_w = _heat_limit_w(index, accel, cooling, per_server * pool.servers_per_rack, site)
    if heat_limit_w is not None and (limit_w is None or heat_limit_w < limit_w):
        limit_w = heat_limit_w
    else:
        heat_limit_w = None
    heat_clock = limit_clock_frac(accel, heat_limit_w) if heat_limit_w is not None else 1.0
    if limit_w is not None:
        accel = power_limited(accel, limit_w)
    network_w = site.network_w_per_400gbps * accel.scale_out_bandwidth_gbps * 8.0 / 400.0  # switch share per chip
    online = _day_s(scenario, pool.online_from) if pool.online_from else 0.0
    until = _day_s(scenario, pool.online_until) if pool.online_until else math.inf
    fixed = tuple((_day_s(scenario, d.date), d.chips) for d in pool.deliveries)
    chip_cost, price = _chip_cost_usd_per_hour(pool, index, accel, site)
    hardware = sum(site.hardware_usd_per_chip(per_server, pool.servers_per_rack).values()) \
        / (site.amortization_years * HOURS_PER_YEAR) if pool.owner == "owned" else 0.0
    deliveries, delivery_usd = fixed, ()
    if price is not None:
        schedule = scenario.procurement.price_schedule
        fixed_usd = tuple(scheduled if (scheduled := price_at(schedule, accel.id, d.date)) is not None else price
                          for d in pool.deliveries)
        outcomes = scenario_orders(scenario, catalog) if orders is None else orders
        deliveries, delivery_usd = merged_deliveries(fixed, fixed_usd, outcomes, index)
    count = pool.count + sum(chips for _, chips in deliveries) - sum(chips for _, chips in fixed)
    _check_budgets(pool, index, accel, per_server, site.server_power_overhead_frac, network_w, count)
    return ResolvedPool(
        index=index, name=pool.name, accelerator=accel, count=count, chips_per_server=per_server,
        servers_per_rack=pool.servers_per_rack, domain_chips=min(domain, count) or domain,
        cooling=cooling, online_from_s=online, owner=pool.owner,
        heat_clock_frac=heat_clock, heat_power_limit_w=heat_limit_w,
        multi_domain_gangs=pool.multi_domain_gangs,
        server_power_overhead_frac=site.server_power_overhead_frac,
        spine_oversubscription=site.spine_oversubscription,
        network_w_per_chip=network_w,
        chip_cost_usd_per_hour=chip_cost, purchase_usd_per_chip=price, hardware_usd_per_chip_hour=hardware,
        delivery_usd_per_chip=delivery_usd,
        shared=pool.sharing == "shared", online_until_s=until, deliveries=deliveries,
        retirements=tuple((_day_s(scenario, r.date), r.chips) for r in pool.retirements), drain_s=float(pool.drain),
        rental_term=pool.rental_term if pool.owner == "rented" else "on-demand",
        burst=any(b.pool == pool.name for b in scenario.policy.burst) or any(
            g.burst is not None and g.pool == pool.name for s in scenario.workloads.inference for g in s.replicas),
        rack_budget_w=None if pool.rack_budget_kw is None else pool.rack_budget_kw * 1e3,
        racks_per_row=pool.racks_per_row or 0,
        row_budget_w=None if pool.row_budget_kw is None else pool.row_budget_kw * 1e3,
    )


def _heat_limit_w(index: int, accel: AcceleratorSpec, cooling: str, rack_chips: int,
                  site: ResolvedSite) -> float | None:
    """Under ``site.cooling_over_capacity: throttle``, the power limit per chip [W] at which a full rack of
    ``rack_chips`` draws what its cooling removes: ``cooling per rack ÷ chips per rack ÷ (1 + server overhead)``
    (the server's share scales with the chips' power); None when the rack fits at TDP or the opt-in is off.
    A rack whose chips would have to run at or below idle is a ``FleetError``."""
    if site.cooling_over_capacity != "throttle":
        return None
    cooling_w = site.cooling_kw_per_rack[cooling] * 1e3
    per_chip_w = cooling_w / (rack_chips * (1.0 + site.server_power_overhead_frac)) * (1.0 - 1e-12)
    if per_chip_w >= accel.tdp_w:
        return None
    if per_chip_w <= accel.idle_w:
        idle_kw = rack_chips * accel.idle_w * (1.0 + site.server_power_overhead_frac) / 1e3
        raise FleetError(index, "servers_per_rack",
                         f"a rack of {rack_chips} chips idles at {idle_kw:.1f} kW but {cooling} cooling removes "
                         f"{cooling_w / 1e3:g} kW per rack, so no clock fits even "
                         f"with cooling_over_capacity: throttle; accepted: fewer servers_per_rack, or cooling: liquid")
    return per_chip_w


def _check_budgets(pool: "Pool", index: int, accel: AcceleratorSpec, per_server: int, overhead: float,
                   network_w: float, count: int) -> None:
    """A rack or row budget must hold its chips idling (an impossible rack otherwise), and a row budget needs
    ``racks_per_row`` (and the other way round); ``FleetError`` naming the field."""
    rack_chips = min(per_server * pool.servers_per_rack, count)  # the fullest rack of the pool's ``count`` chips
    chip_idle_kw = (accel.idle_w * (1 + overhead) + network_w) / 1e3
    idle_kw = rack_chips * chip_idle_kw
    if pool.rack_budget_kw is not None and pool.rack_budget_kw < idle_kw:
        raise FleetError(index, "rack_budget_kw",
                         f"found {pool.rack_budget_kw:g} kW: a rack of {rack_chips} {accel.id} chips draws "
                         f"{idle_kw:.4g} kW idle (server and switch shares included), so nothing could run in it; "
                         f"accepted: at least {math.ceil(idle_kw * 10) / 10:g} kW, or fewer servers_per_rack")
    if (pool.row_budget_kw is None) != (pool.racks_per_row is None):
        missing = "racks_per_row" if pool.racks_per_row is None else "row_budget_kw"
        given = "row_budget_kw" if pool.racks_per_row is None else "racks_per_row"
        raise FleetError(index, missing, f"found none: {given} is set, and a row budget needs both; accepted: "
                                         f"both racks_per_row and row_budget_kw, or neither")
    row_chips = min(per_server * pool.servers_per_rack * (pool.racks_per_row or 0), count)  # the fullest row
    row_kw = row_chips * chip_idle_kw
    if pool.row_budget_kw is not None and pool.row_budget_kw < row_kw:
        raise FleetError(index, "row_budget_kw",
                         f"found {pool.row_budget_kw:g} kW: its fullest row ({row_chips} chips in {pool.racks_per_row} "
                         f"racks or fewer) draws {row_kw:.4g} kW idle, so nothing could run in it; accepted: at least "
                         f"{math.ceil(row_kw * 10) / 10:g} kW, or fewer racks_per_row")


def _chip_cost_usd_per_hour(pool: "Pool", index: int, accel: AcceleratorSpec,
                            site: ResolvedSite) -> tuple[float, float | None]:
    """Capital or rental cost of one chip-hour, energy excluded [USD/h], and an owned chip's purchase
    price [USD] (None for a rented pool).

    Owned chips: the purchase price (the pool's ``purchase_usd_per_chip``, else the catalog's
    ``price_usd``) amortized linearly over ``amortization_years`` with no resale value or financing, plus
    maintenance (``maintenance_frac_per_year`` of that price per year, as the money ledger charges it).
    The chip's share of its server, rack, network and installation is not in it (schedulers, routing and
    serving costs compare chips by it): ``ResolvedPool.hardware_usd_per_chip_hour`` carries that share,
    and ``fleet_cost_usd`` adds it, so that it equals the ledger's depreciation + maintenance + rental (with
    ``capex_accounting: depreciation``, while a chip is within its life and its delivery costs the pool's
    price). Rented chips: the pool's ``rental_usd_per_chip_hour``, else the catalog's rate for the pool's
    ``rental_term`` (``cloud_usd_per_chip_hour`` on demand, ``cloud_reserved_1y_usd_per_chip_hour`` or
    ``cloud_reserved_3y_usd_per_chip_hour`` under a commitment). A chip with neither is a ``FleetError``
    naming the field to set: no chip is silently free.
    """
    if pool.owner == "owned":
        if pool.rental_term != "on-demand":
            raise FleetError(index, "rental_term",
                             f"found {pool.rental_term}: rental terms apply to a rented pool; accepted: owner: "
                             "rented, or leave rental_term out for an owned pool")
        if pool.rental_usd_per_chip_hour is not None:
            raise FleetError(index, "rental_usd_per_chip_hour",
                             f"found {pool.rental_usd_per_chip_hour:g}: a rental rate applies to a rented pool; "
                             "accepted: owner: rented, or purchase_usd_per_chip for an owned pool")
        price = accel.price_usd if pool.purchase_usd_per_chip is None else pool.purchase_usd_per_chip
        if price is None:
            raise FleetError(index, "purchase_usd_per_chip",
                             f"found none: {accel.id} has no purchase price, and an owned pool is charged its "
                             "amortized price; accepted: purchase_usd_per_chip on the pool (USD per chip), "
                             "price_usd on the accelerator, or owner: rented with a rental rate")
        return price / (site.amortization_years * HOURS_PER_YEAR) \
            + price * site.maintenance_frac_per_year / HOURS_PER_YEAR, float(price)
    if pool.purchase_usd_per_chip is not None:
        raise FleetError(index, "purchase_usd_per_chip",
                         f"found {pool.purchase_usd_per_chip:g}: a purchase price applies to an owned pool; "
                         "accepted: owner: owned, or rental_usd_per_chip_hour for a rented pool")
    if pool.rental_term != "on-demand":
        field = TERM_RATE_FIELD[pool.rental_term]
        rate = getattr(accel, field) if pool.rental_usd_per_chip_hour is None else pool.rental_usd_per_chip_hour
        if rate is None:
            raise FleetError(index, "rental_term",
                             f"found {pool.rental_term}: {accel.id} has no {pool.rental_term} rate in the catalog; "
                             f"accepted: rental_usd_per_chip_hour on the pool (the committed rate, USD per "
                             f"chip-hour), {field} on the accelerator, or rental_term: on-demand")
        return rate, None
    rate = accel.cloud_usd_per_chip_hour if pool.rental_usd_per_chip_hour is None else pool.rental_usd_per_chip_hour
    if rate is None:
        raise FleetError(index, "rental_usd_per_chip_hour",
                         f"found none: {accel.id} has no cloud rental rate, and a rented pool is charged by the "
                         "chip-hour; accepted: rental_usd_per_chip_hour on the pool (USD per chip-hour), "
                         "cloud_usd_per_chip_hour on the accelerator, or owner: owned with a purchase price")
    return rate, None


@dataclass(frozen=True)
class Fleet:
    """The resolved pools and site, the topology graph built once from them, and the chips reserved
    for inference replicas as ``(pool index, chips per replica, replicas)``.

    ``reservations`` are held for the whole run (every replica of a group, or only ``min_count`` of an
    autoscaled group on a shared pool); ``peak_reservations`` count every replica (``count``), for the
    site-power floor, which keeps replica chips at full load whether they are active or lent."""

    site: ResolvedSite
    pools: list[ResolvedPool]
    topology: nx.Graph
    reservations: tuple[tuple[int, int, int], ...] = ()
    peak_reservations: tuple[tuple[int, int, int], ...] | None = None  # None: the same as reservations
    orders: tuple[OrderOutcome, ...] = ()  # procurement orders resolved: their batches are in the pools' deliveries
    # windowed replica groups (``sim.fleet.windows``): (service, group) -> (from_s, until_s); their chips are not
    # in ``reservations`` but placed and released by the cluster's schedule (``sim.serving.autoscale``)
    group_windows: dict = field(default_factory=dict)

    def peak_reserved_chips(self, pool: int) -> int:
        """Chips of ``pool`` that inference replicas hold when every replica is active."""
        peak = self.reservations if self.peak_reservations is None else self.peak_reservations
        return sum(chips * count for p, chips, count in peak if p == pool)

    def new_allocators(self, held: list | None = None) -> list:
        """Per-pool chip bookkeeping with the reservations already placed (what training can use).

        Without ``held`` every chip is there (what a pool can ever hold). With a list ``held``, the domains
        of each pool's later deliveries are taken first, and ``held`` receives, per pool, one placement
        per delivery (release it at the delivery's date); the reservations then fit in the first chips."""
        from sim.fleet.allocation import DomainAllocator, hold_deliveries, reserve

        sizes = self.domain_sizes()
        allocators = [DomainAllocator(sizes[p.name]) for p in self.pools]
        if held is not None:
            held.extend(hold_deliveries(a, [chips for _, chips in p.deliveries])
                        for a, p in zip(allocators, self.pools))
        reserve(allocators, self.reservations)
        return allocators

    @property
    def committed_floor_w(self) -> float:
        """Facility power committed before any training job: every chip idle, and every replica's chips
        at full load (autoscaled replicas too, active or not: conservative)."""
        return self.idle_facility_w + sum(self.peak_reserved_chips(p.index) * self.busy_increment_facility_w(p.index)
                                          for p in self.pools)

    @property
    def total_chips(self) -> int:
        return sum(p.count for p in self.pools)

    @property
    def idle_facility_w(self) -> float:
        """Facility power of every chip idling (pools not yet online included) [W]: the floor that
        admission control reserves under a site cap."""
        return idle_facility_w(self.pools, self.site.pue)

    def busy_increment_facility_w(self, pool: int) -> float:
        """Extra facility power of one chip of ``pool`` going from idle to full load [W]."""
        p = self.pools[pool]
        return (p.busy_w_with_server - p.idle_w_with_server) * self.site.pue

    def domain_sizes(self) -> dict[str, list[int]]:
        """Chips in each scale-up domain, per pool name, read from the topology graph (the placement view)."""
        sizes: dict[str, list[int]] = {p.name: [] for p in self.pools}
        for _, data in self.topology.nodes(data=True):
            if data["kind"] == "domain":
                sizes[data["pool"]].append(data["chips"])
        return sizes


def idle_facility_w(pools: list[ResolvedPool], pue: float) -> float:
    """Facility power of these pools' chips all idling [W] (the one formula for the idle floor)."""
    return sum(p.count * p.idle_w_with_server for p in pools) * pue


def build_fleet(scenario: "Scenario", catalog: Catalog, supply_rng: np.random.Generator | None = None) -> Fleet:
    """The run's fleet; ``supply_rng`` is the run's fresh ``supply`` stream (``scenario_orders``)."""
    site = resolve_site(scenario.site, catalog)
    orders = scenario_orders(scenario, catalog, supply_rng)
    pools = [resolve_pool(scenario, index, catalog, site, orders) for index in range(len(scenario.fleet))]
    index = {p.name: p.index for p in pools}
    groups = [group for service in scenario.workloads.inference for group in service.replicas]
    peak = tuple((index[group.pool], group.chips_per_replica, group.count) for group in groups)
    horizon = float(scenario.duration)
    windows = {}
    for s, service in enumerate(scenario.workloads.inference):
        for g, group in enumerate(service.replicas):
            window = group_window_s(group, pools[index[group.pool]], scenario.start, horizon)
            if windowed(window, horizon):
                windows[(s, g)] = window
    held = tuple((index[g.pool], g.chips_per_replica, g.count if g.autoscale is None else g.autoscale.min_count)
                 for s, service in enumerate(scenario.workloads.inference) for k, g in enumerate(service.replicas)
                 if (s, k) not in windows)
    return Fleet(site=site, pools=pools, topology=build_topology(pools), reservations=held,
                 peak_reservations=peak, orders=orders, group_windows=windows)


def build_topology(pools: list[ResolvedPool]) -> nx.Graph:
    """Site -> racks -> servers, with one hub node per scale-up domain joined to the servers it spans.

    Node attributes: ``kind`` (site, rack, server, domain), ``pool``, ``chips`` (servers and domains).
    Edge attribute ``bandwidth_gbps`` is the aggregate bandwidth of the link in GB/s: a server's link
    to its domain's fabric carries ``chips × scale_up_bandwidth`` (bidirectional, as the catalog gives it);
    its link to the rack switch carries ``chips × scale_out_bandwidth``; a rack's link to the site spine
    carries the sum of its servers' links divided by the pool's ``spine_oversubscription`` (the site's
    ``network.spine_oversubscription``). The engine reads the domains' chip counts from this graph for
    placement, and ``sim.fleet.network.pool_network`` reads the per-level bandwidths from its edges.
    """
    graph = nx.Graph()
    graph.add_node("site", kind="site")
    for pool in pools:
        accel = pool.accelerator
        per_server = pool.chips_per_server
        server_up = per_server * accel.scale_up_bandwidth_gbps
        server_out = per_server * accel.scale_out_bandwidth_gbps
        for rack in range(pool.racks):
            rack_id = f"{pool.name}/rack{rack}"
            graph.add_node(rack_id, kind="rack", pool=pool.name)
            graph.add_edge("site", rack_id,
                           bandwidth_gbps=server_out * pool.servers_per_rack / pool.spine_oversubscription)
        for server in range(pool.servers):
            server_id = f"{pool.name}/server{server}"
            graph.add_node(server_id, kind="server", pool=pool.name, chips=per_server)
            graph.add_edge(f"{pool.name}/rack{server // pool.servers_per_rack}", server_id, bandwidth_gbps=server_out)
        first_chip = 0
        for domain, size in enumerate(pool.domain_sizes):
            domain_id = f"{pool.name}/domain{domain}"
            graph.add_node(domain_id, kind="domain", pool=pool.name, chips=size)
            for server in range(first_chip // per_server, (first_chip + size - 1) // per_server + 1):
                graph.add_edge(domain_id, f"{pool.name}/server{server}", bandwidth_gbps=server_up)
            first_chip += size
    return graph
