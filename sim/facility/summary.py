"""The facility's figures of a run: time-series columns, summary fields and monthly columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.facility.model import FacilityModel, FacilityRun, per_month


def series_columns(run: FacilityRun) -> dict[str, np.ndarray]:
    """Columns added to (or replacing in) the time series: ``facility_power_kw``, ``pue``,
    ``outside_dry_bulb_c`` and ``outside_wet_bulb_c`` (with weather), ``electricity_usd_per_kwh``,
    ``carbon_g_per_kwh``, ``embodied_carbon_kg`` (per bin)."""
    out = {"facility_power_kw": run.facility_kw, "pue": run.pue}
    if run.dry_bulb_c is not None:
        out["outside_dry_bulb_c"] = run.dry_bulb_c
        out["outside_wet_bulb_c"] = run.wet_bulb_c
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
