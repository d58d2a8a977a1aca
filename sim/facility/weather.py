"""Outside air over a typical year: hourly dry-bulb temperature and relative humidity, and the wet-bulb
temperature a cooling tower or evaporative economizer sees.

Built in: typical-meteorological-year (TMY) weather of a few places (``LOCATIONS``; data and licence in
``sim/facility/data/tmy-weather/SOURCE.md``), or a scenario's own CSV (``site.weather: {csv: path}``) with
the same columns: ``hour`` (0, 1, 2, … consecutive, the hour from ``hour`` to ``hour + 1`` after 1 January
00:00), ``dry_bulb_c`` [°C] and ``relative_humidity_pct`` [%]. A run maps its calendar time onto the year
cyclically (hour of the year modulo the rows), so a leap day or a multi-year run reuses the typical year.

Simplification: wet-bulb comes from dry-bulb and humidity by Stull's (2011) empirical fit at sea-level
pressure (``wet_bulb_c``), accurate to about ±1 °C for 5–99 % humidity and −20 to 50 °C; humidity outside
that range is clamped into it and the result never exceeds the dry-bulb temperature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from sim.workload.errors import TraceError
from sim.workload.files import csv_header, csv_records, display, open_data_file, quote

# name -> (station, climate, file); see data/tmy-weather/SOURCE.md
LOCATIONS = {
    "miami": ("Miami International Airport, FL (TMY2, WBAN 12839)", "hot and humid", "miami.csv"),
    "greensboro": ("Greensboro Piedmont Triad International, NC (TMY3, USAF 723170)", "temperate", "greensboro.csv"),
    "sand-point": ("Sand Point, AK (TMY3, USAF 703165)", "cold", "sand-point.csv"),
}
COLUMNS = ("hour", "dry_bulb_c", "relative_humidity_pct")
MIN_HOURS = 24  # a file shorter than a day is not a weather year
MAX_HOURS = 8_784  # a leap year


@dataclass(frozen=True)
class Weather:
    """Hourly outside air: ``dry_bulb_c`` and ``wet_bulb_c`` [°C], one value per hour of the year."""

    name: str
    dry_bulb_c: np.ndarray
    relative_humidity_pct: np.ndarray

    @property
    def wet_bulb_c(self) -> np.ndarray:
        return wet_bulb_c(self.dry_bulb_c, self.relative_humidity_pct)

    @property
    def hours(self) -> int:
        return len(self.dry_bulb_c)


def wet_bulb_c(dry_bulb_c, relative_humidity_pct) -> np.ndarray:
    """Wet-bulb temperature [°C] from dry-bulb [°C] and relative humidity [%] (Stull 2011, J. Appl. Meteor.
    Climatol. 50, 2267–2269, eq. 1): ``Tw = T·atan(0.151977·(RH + 8.313659)^½) + atan(T + RH) − atan(RH −
    1.676331) + 0.00391838·RH^1.5·atan(0.023101·RH) − 4.686035``, RH clamped to 5–99 %, Tw ≤ T."""
    t = np.asarray(dry_bulb_c, dtype=np.float64)
    rh = np.clip(np.asarray(relative_humidity_pct, dtype=np.float64), 5.0, 99.0)
    tw = (t * np.arctan(0.151977 * np.sqrt(rh + 8.313659)) + np.arctan(t + rh) - np.arctan(rh - 1.676331)
          + 0.00391838 * rh ** 1.5 * np.arctan(0.023101 * rh) - 4.686035)
    return np.minimum(tw, t)


def builtin_weather(name: str) -> Weather:
    """The built-in typical year of a named location; an unknown name is a ``ValueError`` listing them."""
    if name not in LOCATIONS:
        raise ValueError(f"unknown location {quote(name)}; accepted: {', '.join(sorted(LOCATIONS))}")
    return _builtin(name)


@lru_cache(maxsize=None)
def _builtin(name: str) -> Weather:
    path = resources.files("sim.facility").joinpath("data", "tmy-weather", LOCATIONS[name][2])
    with path.open("rb") as handle:
        return _parse(handle, f"built-in weather {name}", name)


def read_weather_csv(path: str, base_dir: Path | str | None = None) -> Weather:
    """A scenario's own hourly weather (columns ``COLUMNS``), ``path`` relative to ``base_dir``. Gaps in the
    hours, non-numeric or implausible values are a ``TraceError`` naming the file and row."""
    full = Path(base_dir or ".") / path
    with open_data_file(full) as handle:
        return _parse(handle, display(full), str(path))


def _parse(handle, label: str, name: str) -> Weather:
    records = csv_records(handle, label)
    header = csv_header(records, label, COLUMNS)
    dry, rh = [], []
    for line, fields in records:
        header.check_width(line, fields)
        hour = number_cell(fields[header.positions["hour"]], label, line, "hour")
        if hour != len(dry):
            raise TraceError(f"{label}:{line}: hour {quote(fields[header.positions['hour']])}; expected "
                             f"{len(dry)} (hours consecutive from 0, no gaps)")
        t = number_cell(fields[header.positions["dry_bulb_c"]], label, line, "dry_bulb_c")
        h = number_cell(fields[header.positions["relative_humidity_pct"]], label, line, "relative_humidity_pct")
        if not -90.0 <= t <= 60.0:
            raise TraceError(f"{label}:{line}: dry_bulb_c {t:g}; accepted: -90 to 60 (°C, outside air on Earth)")
        if not 0.0 <= h <= 100.0:
            raise TraceError(f"{label}:{line}: relative_humidity_pct {h:g}; accepted: 0 to 100")
        dry.append(t)
        rh.append(h)
        if len(dry) > MAX_HOURS:
            raise TraceError(f"{label}:{line}: more than {MAX_HOURS} hours; accepted: one year of hourly rows")
    if len(dry) < MIN_HOURS:
        raise TraceError(f"{label}: {len(dry)} hourly rows; accepted: {MIN_HOURS} to {MAX_HOURS} (a typical year "
                         "has 8760)")
    return Weather(name, np.array(dry), np.array(rh))


def number_cell(text: str, label: str, line: int, column: str) -> float:
    """A finite number from one CSV cell, or a ``TraceError`` naming the file, row and column."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise TraceError(f"{label}:{line}: {column} {quote(text)}: not a number")
    return value
