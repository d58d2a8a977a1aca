"""Unit conventions for scenarios: durations, dates and sizes.

Everything inside the simulator is SI: seconds, watts, bytes, FLOP. Scenario fields carry their unit in
their name (``power_cap_mw``, ``lead_time_days``); the few fields that accept a human-friendly string
(``duration: 90d``) are converted here, once, at load time.
"""

from __future__ import annotations

import datetime as dt
import math
import re

from sim.scenario.errors import shown

SECONDS_PER_UNIT = {
    "s": 1.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
    "y": 365 * 86400.0,  # a simulated year is 365 days; leap days are ignored
}

MAX_DURATION_S = 20 * SECONDS_PER_UNIT["y"]  # a data center's life; every duration field is at most this

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|min|h|d|w|y)\s*$")


def parse_duration_s(value: object) -> float:
    """Return a duration in seconds from ``3600``, ``"90d"``, ``"2y"``, ``"1.5h"`` or ``"30min"``.

    Raises ``ValueError`` naming the accepted forms when the value is not understood, and for durations
    that are not finite, negative, or above ``MAX_DURATION_S`` (20 years).
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int):
        seconds = float(max(-10**300, min(value, 10**300)))  # a huge int would overflow float()
    elif isinstance(value, float):
        seconds = value
    elif isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match is None:
            raise ValueError(
                f"cannot read duration {shown(value, 40)}; accepted: seconds as a number, or a number followed by "
                f"one of {', '.join(SECONDS_PER_UNIT)} (e.g. '90d', '2y', '12h')"
            )
        seconds = float(match.group(1)) * SECONDS_PER_UNIT[match.group(2)]
    else:
        raise ValueError(f"expected a duration like '90d' or seconds, got {type(value).__name__}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"duration must be finite and not negative, got {shown(value, 40)}")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"too long; accepted: durations up to 20y ({MAX_DURATION_S:,.0f} s, a data center's life)")
    return seconds


def date_at(start: dt.date, t_s: float) -> dt.datetime:
    """The calendar time ``t_s`` seconds after the scenario start."""
    return dt.datetime.combine(start, dt.time()) + dt.timedelta(seconds=float(t_s))
