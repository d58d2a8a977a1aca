"""Energy price and grid carbon intensity over the year, hour by hour.

A number is constant; a profile (``PriceProfile``/``CarbonProfile``) gives hour ``h`` of a day in month
``m`` the value ``mean × daily[h] × monthly[m]``, its factors scaled so the daily ones average 1 and the
monthly ones average 1 weighted by the days of a 365-day year (``mean`` is then the yearly mean); an
hourly CSV (``hour,value``, hours consecutive from 0 after 1 January 00:00) gives each hour its own
value. A run maps its calendar time onto the year cyclically, as the weather does. Hours are the site's
local time: the scenario's clock."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.facility.weather import number_cell
from sim.workload.errors import TraceError
from sim.workload.files import csv_header, csv_records, display, open_data_file, quote

HOURS_PER_YEAR = 8760
MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
LIMITS = {"electricity_usd_per_kwh": (100.0, "USD/kWh"), "carbon_g_per_kwh": (2_000.0, "gCO2e/kWh")}


def hourly_values(value, field: str, base_dir: Path | str | None = None) -> np.ndarray:
    """The field's value for every hour of a typical year (a CSV: as many hours as it has rows)."""
    if hasattr(value, "csv"):
        return read_hourly_csv(value.csv, field, base_dir)
    if hasattr(value, "mean"):
        return profile_values(value.mean, value.daily, value.monthly)
    return np.full(HOURS_PER_YEAR, float(value))


def profile_values(mean: float, daily, monthly) -> np.ndarray:
    """``mean × daily[hour] × monthly[month]`` for each hour of a 365-day year, factors scaled to mean 1."""
    daily = np.asarray(daily, dtype=np.float64)
    monthly = np.asarray(monthly, dtype=np.float64)
    daily = daily / daily.mean()
    monthly = monthly / (monthly * MONTH_DAYS).sum() * MONTH_DAYS.sum()
    month_of_day = np.repeat(np.arange(12), MONTH_DAYS)
    return mean * (monthly[month_of_day][:, None] * daily[None, :]).ravel()


def read_hourly_csv(path: str, field: str, base_dir: Path | str | None = None) -> np.ndarray:
    """Hourly values from a CSV with columns ``hour,value``; a gap, a non-numeric or out-of-range value is
    a ``TraceError`` naming the file and row."""
    full = Path(base_dir or ".") / path
    label = display(full)
    limit, unit = LIMITS[field]
    values: list[float] = []
    with open_data_file(full) as handle:
        records = csv_records(handle, label)
        header = csv_header(records, label, ("hour", "value"))
        for line, fields in records:
            header.check_width(line, fields)
            hour, value = (number_cell(fields[header.positions[c]], label, line, c) for c in ("hour", "value"))
            if hour != len(values):
                raise TraceError(f"{label}:{line}: hour {quote(fields[header.positions['hour']])}; expected "
                                 f"{len(values)} (hours consecutive from 0, no gaps)")
            if not 0.0 <= value <= limit:
                raise TraceError(f"{label}:{line}: value {value:g}; accepted: 0 to {limit:g} {unit} ({field})")
            values.append(value)
            if len(values) > HOURS_PER_YEAR + 24:
                raise TraceError(f"{label}:{line}: more than {HOURS_PER_YEAR + 24} hours; accepted: one year")
    if len(values) < 24:
        raise TraceError(f"{label}: {len(values)} hourly rows; accepted: 24 to {HOURS_PER_YEAR + 24}")
    return np.array(values)
