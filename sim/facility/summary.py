"""The facility's figures of a run: time-series columns, summary fields and monthly columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.facility.cooling import plant_value
from sim.facility.model import FacilityModel, FacilityRun, design_it_w, per_month, plant_it_cap_hours


def series_columns(run: FacilityRun) -> dict[str, np.ndarray]:
    """Columns added to (or replacing in) the time series: ``facility_power_kw``, ``pue``,
    ``outside_dry_bulb_c`` and ``outside_wet_bulb_c`` (with weather), ``electricity_usd_per_kwh``,
    ``carbon_g_per_kwh``, ``embodied_carbon_kg`` (per bin), and ``plant_it_capacity_kw`` (the IT power the plant
    can cool, bin mean) with ``site.cooling_plant_mw``."""
    out = {"facility_power_kw": run.facility_kw, "pue": run.pue}
    if run.dry_bulb_c is not None:
        out["outside_dry_bulb_c"] = run.dry_bulb_c
        out["outside_wet_bulb_c"] = run.wet_bulb_c
    if run.plant_it_kw is not None:
        out["plant_it_capacity_kw"] = run.plant_it_kw
    out["electricity_usd_per_kwh"] = run.price_usd_per_kwh
    out["carbon_g_per_kwh"] = run.carbon_g_per_kwh
    out["embodied_carbon_kg"] = run.embodied_kg
    return out


def summary_fields(model: FacilityModel, run: FacilityRun, it_kw: np.ndarray, edges_s: np.ndarray,
                   month_edges_s: np.ndarray, months: list[str], peak_it_w: float) -> dict:
    """``facility`` block of the summary (see the README), and the top-level fields it replaces:
    ``facility_energy_kwh``, ``energy_cost_usd``, ``carbon_kg`` (operational), ``pue`` (the run's
    energy-weighted PUE), ``peak_facility_power_kw`` (the exact IT peak × the highest bin PUE: an upper bound)."""
    hours = np.diff(edges_s) / 3600.0
    it_kwh = it_kw * hours
    facility_kwh = run.facility_kw * hours
    it_total, facility_total = float(it_kwh.sum()), float(facility_kwh.sum())
    cost = float((facility_kwh * run.price_usd_per_kwh).sum())
    operational = float((facility_kwh * run.carbon_g_per_kwh).sum() / 1000.0)
    embodied = float(run.embodied_kg.sum())
    month_it = per_month(it_kwh, edges_s, month_edges_s)
    month_facility = per_month(facility_kwh, edges_s, month_edges_s)
    month_pue = np.divide(month_facility, month_it, out=np.full(len(months), np.nan), where=month_it > 0)
    pue = facility_total / it_total if it_total > 0 else float(np.mean(run.pue))
    block = {
        "climate": model.climate or None,
        "pue_pinned": model.pinned_pue is not None,
        "it_energy_kwh": it_total,
        "facility_energy_kwh": facility_total,
        "pue_mean": pue,
        "pue_worst_month": ({"month": months[int(np.nanargmax(month_pue))], "pue": float(np.nanmax(month_pue))}
                            if np.isfinite(month_pue).any() else None),
        "pue_min_bin": float(run.pue.min()) if len(run.pue) else None,
        "pue_max_bin": float(run.pue.max()) if len(run.pue) else None,
        "energy_cost_usd": cost,
        "mean_price_usd_per_kwh": cost / facility_total if facility_total > 0 else None,
        "operational_carbon_kg": operational,
        "embodied_carbon_kg": embodied,
        "carbon_kg": operational + embodied,
    }
    if run.dry_bulb_c is not None:
        block["outside_dry_bulb_c"] = {"mean": float(run.dry_bulb_c.mean()), "max": float(run.dry_bulb_c.max()),
                                       "min": float(run.dry_bulb_c.min())}
    top = {"facility_energy_kwh": facility_total, "energy_cost_usd": cost, "carbon_kg": operational, "pue": pue,
           "peak_facility_power_kw": peak_it_w * float(run.pue.max() if len(run.pue) else pue) / 1e3}
    return {"facility": block, **top}


def monthly_columns(run: FacilityRun, it_kw: np.ndarray, edges_s: np.ndarray, month_edges_s: np.ndarray
                    ) -> pd.DataFrame:
    """Per month: ``it_energy_kwh``, ``pue`` (facility ÷ IT energy), ``outside_dry_bulb_c`` (time mean),
    ``embodied_carbon_kg``."""
    hours = np.diff(edges_s) / 3600.0
    month_it = per_month(it_kw * hours, edges_s, month_edges_s)
    month_facility = per_month(run.facility_kw * hours, edges_s, month_edges_s)
    data = {"it_energy_kwh": month_it,
            "pue": np.divide(month_facility, month_it, out=np.full(len(month_it), np.nan), where=month_it > 0)}
    if run.dry_bulb_c is not None:
        data["outside_dry_bulb_c"] = (per_month(run.dry_bulb_c * hours, edges_s, month_edges_s)
                                      / (np.diff(month_edges_s) / 3600.0))
    data["embodied_carbon_kg"] = per_month(run.embodied_kg, edges_s, month_edges_s)
    return pd.DataFrame(data)


def plant_fields(model: FacilityModel, fleet, start, horizon_s: float, power_events: dict | None,
                 site_schedule: tuple, plant_schedule: tuple) -> dict:
    """``facility.plant`` of the summary (``site.cooling_plant_mw``): the rating [MW] and design dry-bulb [°C];
    ``limited_hours``, hours of the run in which the plant could not cool the fleet at full load (its derated
    capacity below the fleet's full-load IT power); ``min_it_capacity_kw``; ``cap_changes``, the entries of the
    dated cap it gave training; ``heat_throttled_chip_hours``, chip-hours training ran below full clock while the
    plant's cap was the lower of the two caps (from the capping policy's clock changes, ``power_events``)."""
    hours = plant_it_cap_hours(model, start, horizon_s)
    design = design_it_w(fleet)
    widths = np.minimum(np.arange(1, len(hours) + 1) * 3600.0, horizon_s) - np.arange(len(hours)) * 3600.0
    return {
        "cooling_plant_mw": model.plant_w / 1e6,
        "design_dry_bulb_c": model.design_c if model.design_c is not None else plant_value("plant_design_dry_bulb_c"),
        "limited_hours": float(widths[hours < design].sum() / 3600.0),
        "min_it_capacity_kw": float(hours.min() / 1e3),
        "cap_changes": len(plant_schedule),
        "heat_throttled_chip_hours": _heat_throttled_chip_s(power_events, site_schedule, fleet.site.power_cap_w,
                                                           plant_schedule, horizon_s) / 3600.0,
    }


def _heat_throttled_chip_s(power_events, site_schedule, site_cap_w, plant_schedule, horizon_s: float) -> float:
    """∫ chips below full clock × [the plant's cap < the site's cap] dt over the run [chip·s]."""
    if not power_events or not plant_schedule:
        return 0.0
    times = np.concatenate([e[0] for e in power_events.values()])
    changes = np.concatenate([e[2] for e in power_events.values()])
    order = np.argsort(times, kind="stable")
    times, chips = times[order], np.cumsum(changes[order])
    site_t = np.array([0.0] + [t for t, _ in site_schedule if t > 0])
    site_w = [np.inf if site_cap_w is None else site_cap_w] + [w for t, w in site_schedule if t > 0]
    for t, w in site_schedule:
        if t <= 0:
            site_w[0] = w
    plant_t = np.array([t for t, _ in plant_schedule])
    plant_w = np.array([w for _, w in plant_schedule])
    edges = np.union1d(np.union1d(site_t, plant_t), np.append(times, [0.0, horizon_s]))
    edges = edges[(edges >= 0) & (edges <= horizon_s)]
    left = edges[:-1]
    binds = (plant_w[np.searchsorted(plant_t, left, side="right") - 1]
             < np.array(site_w)[np.searchsorted(site_t, left, side="right") - 1])
    k = np.searchsorted(times, left, side="right") - 1
    level = np.where(k >= 0, chips[np.maximum(k, 0)], 0.0)
    return float((level * binds * np.diff(edges)).sum())


def heat_throttled_pools(fleet) -> dict:
    """``heat_throttled_pools`` of the summary (``site.cooling_over_capacity: throttle``): per pool whose rack at
    TDP would draw more than its cooling removes, the clock fraction its chips run at, their power limit [W],
    the rack's power at that limit [kW] and the cooling per rack [kW]."""
    out = {}
    for p in fleet.pools:
        if p.heat_power_limit_w is None:
            continue
        out[p.name] = {"clock_frac": p.heat_clock_frac, "power_limit_w": p.heat_power_limit_w,
                       "rack_kw": p.rack_power_w / 1e3,
                       "cooling_kw_per_rack": fleet.site.cooling_kw_per_rack[p.cooling]}
    return out
