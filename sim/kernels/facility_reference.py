"""Reference twins of the facility kernels (``sim.kernels.facility_compiled``): the cooling plant's power
per unit of IT heat for each hour of the weather year (at full-load chiller efficiency, and its chiller and
economizer terms), facility power per bin with the chillers at part load and the fixed overheads, and
time-weighted bin means of hourly values."""

from __future__ import annotations

import numpy as np

KELVIN = 273.15
# plant parameter order (``sim.facility.cooling.plant_array``)
(P_CARNOT, P_MAX_COP, P_TOWER, P_RANGE, P_HX, P_EVAP, P_COND, P_PUMP, P_PLR_A, P_PLR_B, P_PLR_C, P_MIN_UNLOAD,
 P_PROPORTIONAL, P_AIR_SUPPLY, P_AIR_RISE) = range(15)
# class parameter order (``sim.facility.cooling.class_array``)
C_SUPPLY, C_RISE, C_FAN, C_LIQUID = range(4)


def cooling_factor(wet_bulb_c, classes, plant):
    """Cooling power per unit of IT heat [kW/kW] for each cooling class (rows of ``classes``) and hour
    (``wet_bulb_c`` [°C]).

    For a heat path whose water is supplied at ``S`` [°C] and returns ``R`` K warmer: a cooling tower
    with a plate heat exchanger gives water at ``T = wb + tower_approach + hx_approach``; the chiller
    carries the share ``clip((T − S) / R, 0, 1)`` of the heat (an integrated economizer pre-cools the
    return water; 0 = free cooling), at ``COP = min(max_cop, carnot_fraction × (S − evap) / lift)`` in
    kelvin, with lift from the evaporator (``S − evap_approach``) to the condenser (``wb + tower_approach +
    condenser_range + cond_approach``). A class's factor is its fan share, plus pumps and tower fans, plus
    its liquid share of the heat at its own supply temperature and the rest at the air path's."""
    wb = np.asarray(wet_bulb_c, dtype=np.float64)
    out = np.empty((classes.shape[0], wb.shape[0]))
    for c in range(classes.shape[0]):
        liquid = classes[c, C_LIQUID]
        chiller = (liquid * _chiller_share(wb, classes[c, C_SUPPLY], classes[c, C_RISE], plant)
                   + (1.0 - liquid) * _chiller_share(wb, plant[P_AIR_SUPPLY], plant[P_AIR_RISE], plant))
        out[c] = classes[c, C_FAN] + plant[P_PUMP] + chiller
    return out


def _mechanical(wb, supply_c, rise_k, plant):
    """Share of the heat on a path supplied at ``supply_c`` [°C] with ``rise_k`` [K] that the chillers carry."""
    tower_c = wb + plant[P_TOWER] + plant[P_HX]
    return np.clip((tower_c - supply_c) / rise_k, 0.0, 1.0)


def _chiller_share(wb, supply_c, rise_k, plant):
    """Chiller power per unit of heat on a path supplied at ``supply_c`` [°C] with ``rise_k`` [K]."""
    mechanical = _mechanical(wb, supply_c, rise_k, plant)
    evap_k = supply_c - plant[P_EVAP] + KELVIN
    lift = wb + plant[P_TOWER] + plant[P_RANGE] + plant[P_COND] + KELVIN - evap_k
    cop = np.where(lift > 0.0, plant[P_CARNOT] * evap_k / np.maximum(lift, 1e-9), plant[P_MAX_COP])
    return mechanical / np.minimum(cop, plant[P_MAX_COP])


def chiller_terms(wet_bulb_c, classes, plant):
    """Per class (rows of ``classes``) and hour: its chiller power per unit of IT heat at full-load chiller
    efficiency (rows ``0..C-1``) and the share of its heat on the chillers (rows ``C..2C-1``), each its liquid
    share at its own supply temperature plus the rest at the air path's (``cooling_factor`` without fans and
    pumps)."""
    wb = np.asarray(wet_bulb_c, dtype=np.float64)
    n = classes.shape[0]
    out = np.empty((2 * n, wb.shape[0]))
    air_supply, air_rise = plant[P_AIR_SUPPLY], plant[P_AIR_RISE]
    for c in range(n):
        liquid = classes[c, C_LIQUID]
        out[c] = (liquid * _chiller_share(wb, classes[c, C_SUPPLY], classes[c, C_RISE], plant)
                  + (1.0 - liquid) * _chiller_share(wb, air_supply, air_rise, plant))
        out[n + c] = (liquid * _mechanical(wb, classes[c, C_SUPPLY], classes[c, C_RISE], plant)
                      + (1.0 - liquid) * _mechanical(wb, air_supply, air_rise, plant))
    return out


def part_load_multiplier(plr, plant):
    """Chiller power per unit of heat at part-load ratio ``plr`` relative to full load [-]: ``EIR(PLR) / PLR``
    with the quadratic ``EIR(PLR) = a + b·PLR + c·PLR²`` (1 at full load), ``plr`` clipped to 1 (the plant's
    capacity limit is applied to IT power, not here); below the minimum unloading ratio the chiller cycles, so
    the multiplier stays at its value there. 1 where no heat is on the chillers."""
    plr = np.minimum(np.asarray(plr, dtype=np.float64), 1.0)
    at = np.maximum(plr, plant[P_MIN_UNLOAD])
    eir = plant[P_PLR_A] + plant[P_PLR_B] * at + plant[P_PLR_C] * at * at
    return np.where(plr > 0.0, eir / at, 1.0)


def facility_power(it_by_class, chiller, mechanical, capacity_kw, fixed_kw, classes, plant):
    """Facility power per bin [kW] from the IT power of each class per bin (``it_by_class`` [kW], C×n) and
    the bin means of ``chiller_terms`` (``chiller``, ``mechanical``: C×n).

    The chillers of the whole plant carry ``H = Σ IT_c × mechanical_c`` [kW] of heat at part-load ratio
    ``H / capacity_kw`` (the plant's capacity in that bin), and their power per unit of heat is the full-load
    value × ``part_load_multiplier``. Per class: IT × (1 + proportional distribution losses + fans + pumps
    and towers + chiller × multiplier); plus ``fixed_kw`` (the no-load distribution losses and lighting) in
    every bin with IT power. A bin's part-load ratio uses its mean IT power and mean terms (exact for bins of
    an hour or less aligned to hours)."""
    it_by_class = np.asarray(it_by_class, dtype=np.float64)
    heat_on_chillers = (it_by_class * mechanical).sum(axis=0)
    plr = np.divide(heat_on_chillers, capacity_kw, out=np.ones_like(heat_on_chillers), where=capacity_kw > 0)
    multiplier = part_load_multiplier(plr, plant)
    per_kw = 1.0 + plant[P_PROPORTIONAL] + classes[:, C_FAN, None] + plant[P_PUMP] + chiller * multiplier
    it = it_by_class.sum(axis=0)
    return (it_by_class * per_kw).sum(axis=0) + np.where(it > 0.0, fixed_kw, 0.0)


def hourly_bin_means(values, offset_s, edges_s):
    """Time-weighted mean of hourly values (rows of ``values``, one column per hour of a cyclic year)
    over each bin ``[edges_s[i], edges_s[i+1])`` [s]; simulated time ``t`` falls in hour
    ``floor((t + offset_s) / 3600) mod H``."""
    values = np.asarray(values, dtype=np.float64)
    hours = values.shape[1]
    prefix = np.concatenate((np.zeros((values.shape[0], 1)), np.cumsum(values, axis=1)), axis=1)
    edges = np.asarray(edges_s, dtype=np.float64) + offset_s
    h = edges / 3600.0
    whole = np.floor(h)
    cycles = np.floor(whole / hours)
    index = (whole - cycles * hours).astype(np.int64)
    # integral from 0 to each edge, in value-hours
    integral = cycles * prefix[:, hours:hours + 1] + prefix[:, index] + (h - whole) * values[:, index]
    widths_h = np.diff(h)
    return np.diff(integral, axis=1) / np.where(widths_h > 0, widths_h, 1.0)
