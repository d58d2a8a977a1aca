"""The facility over a run: from the IT power the run drew, per time-series bin, to facility power, PUE,
outside temperature, energy price and grid carbon per bin, and the embodied carbon of the online hardware.

With ``site.climate`` or ``site.weather``, PUE follows the weather hour by hour (``sim.facility.cooling``),
separately for the IT power of air, rear-door and liquid pools, and the load (chillers at part load, fixed
overheads), unless ``site.pue`` pins it; without them PUE is ``site.pue`` as before. Within a bin IT power is
its bin mean, so a bin's facility power is computed from its mean IT power and the bin means of the hourly
cooling terms (exact for bins of an hour or less at hourly weather). With ``site.cooling_plant_mw`` the plant's
capacity, derated above its design dry-bulb, is the most IT power it can cool each hour (``plant_it_cap``): the
runner passes it to training as a dated cap (``plant_cap_schedule``). Price and carbon
per bin are time means of the hourly values (``sim.facility.tariff``); a bin's energy cost is its facility
kWh × that price (exact for bins of an hour or less)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim import kernels
from sim.facility.cooling import CLASSES, class_array, fixed_frac, hourly_pue, plant_array, plant_capacity_frac
from sim.facility.tariff import hourly_values
from sim.facility.weather import Weather, builtin_weather, read_weather_csv

SECONDS_PER_YEAR = 365 * 86400.0


@dataclass(frozen=True)
class FacilityModel:
    """What a site's facility needs over time: its weather (None: no cooling model), hourly price and
    carbon, the pinned PUE (None: PUE from the weather), and the cooling plant's rated heat rejection [W]
    at its design dry-bulb [°C] (None: sized to the fleet, no limit)."""

    weather: Weather | None
    price_usd_per_kwh: np.ndarray
    carbon_g_per_kwh: np.ndarray
    pinned_pue: float | None
    climate: str
    plant_w: float | None = None
    design_c: float | None = None

    def plant_it_cap_w(self) -> np.ndarray | None:
        """The most IT power [W] the plant can cool at each hour of the weather year (its heat is the IT
        power), or None without ``site.cooling_plant_mw``."""
        if self.plant_w is None:
            return None
        return self.plant_w * plant_capacity_frac(self.weather.dry_bulb_c, self.design_c)

    def hourly_pue(self) -> np.ndarray:
        """PUE per cooling class (``CLASSES``) and hour of the weather year."""
        return hourly_pue(self.weather.wet_bulb_c)


def active(site) -> bool:
    """Whether a scenario's site needs the facility model: a climate or weather, or a price or carbon that
    is not a constant. Otherwise results are computed as before (PUE and price constant)."""
    return (site.climate is not None or site.weather is not None
            or any(hasattr(v, "csv") or hasattr(v, "mean") for v in (site.electricity_usd_per_kwh,
                                                                      site.carbon_g_per_kwh)))


def facility_model(site, resolved, base_dir: Path | str | None = None) -> FacilityModel:
    """The model of a scenario's ``site`` (``resolved``: its ``ResolvedSite``, for the constant defaults);
    files are read relative to ``base_dir``. Bad files raise ``TraceError``, an unknown location ``ValueError``."""
    if site.climate is not None:
        weather, climate = builtin_weather(site.climate), site.climate
    elif site.weather is not None:
        weather, climate = read_weather_csv(site.weather.csv, base_dir), f"csv:{site.weather.csv}"
    else:
        weather, climate = None, ""
    price = hourly_values(site.electricity_usd_per_kwh if site.electricity_usd_per_kwh is not None
                          else resolved.electricity_usd_per_kwh, "electricity_usd_per_kwh", base_dir)
    carbon = hourly_values(site.carbon_g_per_kwh if site.carbon_g_per_kwh is not None
                           else resolved.carbon_g_per_kwh, "carbon_g_per_kwh", base_dir)
    plant_w = float(site.cooling_plant_mw) * 1e6 if site.cooling_plant_mw is not None else None
    return FacilityModel(weather, price, carbon, float(site.pue) if site.pue is not None else None, climate,
                         plant_w, site.cooling_plant_design_c)


def planning_site(model: FacilityModel, fleet):
    """The fleet with its site's constant PUE, price and carbon set to the model's yearly means, for what
    plans ahead with constants (the scheduler's energy cost, admission under the site cap, serving cost
    per token): PUE weighted by each cooling class's full-load IT power. The results use the per-bin values."""
    site = fleet.site
    pue = site.pue
    if model.weather is not None and model.pinned_pue is None:
        weights = _design_weights(fleet.pools)
        pue = float(weights @ model.hourly_pue().mean(axis=1))
    site = dataclasses.replace(site, pue=pue, electricity_usd_per_kwh=float(model.price_usd_per_kwh.mean()),
                               carbon_g_per_kwh=float(model.carbon_g_per_kwh.mean()))
    return dataclasses.replace(fleet, site=site)


def design_it_w(fleet) -> float:
    """The fleet's full-load IT power [W]: every chip of every pool busy, with its server share."""
    return float(sum(p.count * p.busy_w_with_server for p in fleet.pools))


def plant_it_cap_hours(model: FacilityModel, start: dt.date, horizon_s: float) -> np.ndarray | None:
    """``FacilityModel.plant_it_cap_w`` for each hour of the run from t = 0 [W] (the weather year cycles)."""
    hourly = model.plant_it_cap_w()
    if hourly is None:
        return None
    first = int(year_offset_s(start) // 3600)
    return hourly[(first + np.arange(int(np.ceil(horizon_s / 3600.0)))) % len(hourly)]


def plant_cap_schedule(model: FacilityModel, fleet, start: dt.date, horizon_s: float,
                       quantum_frac: float = 0.01) -> tuple:
    """The plant's limit on IT power as a dated cap in facility terms, ``((t [s], cap [W]), ...)``, one entry
    per change from t = 0: each hour's IT capacity (``FacilityModel.plant_it_cap_w``) rounded down to a
    multiple of ``quantum_frac`` of the plant's rating (so the cap never exceeds the plant, and an entry only
    comes when the capacity moves by a step), no higher than the fleet's full-load IT power (above it the plant
    cannot limit anything), × the planning PUE (``fleet.site.pue``: the unit the training cluster counts
    facility power in). Empty without a plant or when it never limits the fleet."""
    it_w = plant_it_cap_hours(model, start, horizon_s)
    if it_w is None:
        return ()
    quantum = quantum_frac * model.plant_w
    capped = np.minimum(np.floor(it_w / quantum + 1e-9) * quantum, design_it_w(fleet))
    if not (capped < design_it_w(fleet)).any():
        return ()
    change = np.flatnonzero(np.diff(capped)) + 1
    steps = np.concatenate(([0], change))
    return tuple((float(h * 3600.0), float(capped[h] * fleet.site.pue)) for h in steps)


def _design_weights(pools) -> np.ndarray:
    power = np.array([sum(p.count * p.busy_w_with_server for p in pools if p.cooling == c) for c in CLASSES])
    return power / power.sum() if power.sum() > 0 else np.full(len(CLASSES), 1.0 / len(CLASSES))


def year_offset_s(start: dt.date) -> float:
    """Seconds from 1 January 00:00 of the start's year to the start: where time 0 falls in the weather year."""
    return (start - dt.date(start.year, 1, 1)).days * 86400.0


@dataclass(frozen=True)
class FacilityRun:
    """Per bin: facility power [kW], PUE, outside dry- and wet-bulb [°C] (None without weather),
    price [USD/kWh], carbon [g/kWh], embodied carbon [kg], and the plant's IT capacity [kW] (bin mean; None
    without ``site.cooling_plant_mw``)."""

    facility_kw: np.ndarray
    pue: np.ndarray
    dry_bulb_c: np.ndarray | None
    wet_bulb_c: np.ndarray | None
    price_usd_per_kwh: np.ndarray
    carbon_g_per_kwh: np.ndarray
    embodied_kg: np.ndarray
    plant_it_kw: np.ndarray | None = None


def evaluate(model: FacilityModel, fleet, edges_s: np.ndarray, pool_it_kw: dict[str, np.ndarray],
             start: dt.date, horizon_s: float) -> FacilityRun:
    """The facility per bin ``[edges_s[i], edges_s[i+1])`` from each pool's IT power per bin [kW]."""
    edges_s = np.ascontiguousarray(edges_s, dtype=np.float64)
    offset = year_offset_s(start)
    n = len(edges_s) - 1
    it_by_class = np.zeros((len(CLASSES), n))
    for p in fleet.pools:
        if p.name in pool_it_kw:
            it_by_class[CLASSES.index(p.cooling)] += np.asarray(pool_it_kw[p.name], dtype=np.float64)
    it_kw = it_by_class.sum(axis=0)
    dry = wet = plant_it_kw = None
    design_kw = design_it_w(fleet) / 1e3
    if model.weather is not None:
        table, plant = class_array(), plant_array()
        weather = [model.weather.dry_bulb_c, model.weather.wet_bulb_c]
        cooling = model.pinned_pue is None
        if cooling:
            weather.extend(kernels.chiller_terms(np.ascontiguousarray(model.weather.wet_bulb_c), table, plant))
        if model.plant_w is not None:
            weather.append(model.plant_it_cap_w() / 1e3)
        means = kernels.hourly_bin_means(np.ascontiguousarray(np.vstack(weather)), offset, edges_s)
        dry, wet = means[0], means[1]
        if model.plant_w is not None:
            plant_it_kw = means[-1]
    if model.weather is not None and model.pinned_pue is None:
        k = len(CLASSES)
        capacity_kw = plant_it_kw if plant_it_kw is not None else np.full(n, design_kw)
        facility_kw = kernels.facility_power(np.ascontiguousarray(it_by_class), np.ascontiguousarray(means[2:2 + k]),
                                             np.ascontiguousarray(means[2 + k:2 + 2 * k]),
                                             np.ascontiguousarray(capacity_kw), fixed_frac() * design_kw, table, plant)
        idle = _design_weights(fleet.pools) @ kernels.hourly_bin_means(
            np.ascontiguousarray(model.hourly_pue()), offset, edges_s)  # a bin without IT power: the fleet's mix
        pue = np.divide(facility_kw, it_kw, out=idle.copy(), where=it_kw > 0)
    else:
        pue = np.full(n, fleet.site.pue)
        facility_kw = it_kw * fleet.site.pue
    tariff = np.vstack((model.price_usd_per_kwh[:_common(model)], model.carbon_g_per_kwh[:_common(model)]))
    if len(model.price_usd_per_kwh) == len(model.carbon_g_per_kwh):
        price, carbon = kernels.hourly_bin_means(np.ascontiguousarray(tariff), offset, edges_s)
    else:  # two CSVs of different lengths: each cycles on its own
        price = kernels.hourly_bin_means(model.price_usd_per_kwh[None, :].copy(), offset, edges_s)[0]
        carbon = kernels.hourly_bin_means(model.carbon_g_per_kwh[None, :].copy(), offset, edges_s)[0]
    return FacilityRun(facility_kw, pue, dry, wet, price, carbon, embodied_kg(fleet, edges_s, horizon_s),
                       plant_it_kw)


def _common(model: FacilityModel) -> int:
    return min(len(model.price_usd_per_kwh), len(model.carbon_g_per_kwh))


def embodied_kg_per_chip(pool, site) -> float:
    """Manufacturing carbon of one chip with its share of a server [kgCO2e]."""
    return site.embodied_kg_per_accelerator + site.embodied_kg_per_server / pool.chips_per_server


def embodied_kg(fleet, edges_s: np.ndarray, horizon_s: float) -> np.ndarray:
    """Embodied carbon per bin [kgCO2e]: every online chip (owned or rented) carries its manufacturing
    carbon with its server share, amortized straight-line over ``site.amortization_years`` (its service
    life) per online second."""
    life_s = fleet.site.amortization_years * SECONDS_PER_YEAR
    out = np.zeros(len(edges_s) - 1)
    for p in fleet.pools:
        times, counts = p.chip_steps(horizon_s)
        out += np.diff(step_integral(np.asarray(times, float), np.asarray(counts, float), edges_s)) \
            * embodied_kg_per_chip(p, fleet.site) / life_s
    return out


def step_integral(times: np.ndarray, levels: np.ndarray, at: np.ndarray) -> np.ndarray:
    """∫₀^at of a step function that is ``levels[k]`` from ``times[k]`` to ``times[k+1]`` (0 before the
    first time, ``levels[-1]`` after the last)."""
    if len(times) == 0:
        return np.zeros(len(at))
    cumulative = np.concatenate(([0.0], np.cumsum(levels[:-1] * np.diff(times))))
    k = np.clip(np.searchsorted(times, at, side="right") - 1, 0, len(times) - 1)
    return np.where(at < times[0], 0.0, cumulative[k] + levels[k] * (at - times[k]))


def per_month(values_per_bin: np.ndarray, edges_s: np.ndarray, month_edges_s: np.ndarray) -> np.ndarray:
    """Sum of a per-bin quantity within each month, a bin across a month edge split by time share."""
    cumulative = np.concatenate(([0.0], np.cumsum(values_per_bin)))
    at = np.interp(month_edges_s, edges_s, cumulative)
    return np.diff(at)
