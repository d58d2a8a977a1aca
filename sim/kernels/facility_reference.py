"""Reference twins of the facility kernels (``sim.kernels.facility_compiled``): the cooling plant's power
per unit of IT heat for each hour of the weather year, and time-weighted bin means of hourly values."""

from __future__ import annotations

import numpy as np

KELVIN = 273.15
# plant parameter order (``sim.facility.cooling.plant_array``)
(P_CARNOT, P_MAX_COP, P_TOWER, P_RANGE, P_HX, P_EVAP, P_COND, P_PUMP, P_AIR_SUPPLY, P_AIR_RISE) = range(10)
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


def _chiller_share(wb, supply_c, rise_k, plant):
    """Chiller power per unit of heat on a path supplied at ``supply_c`` [°C] with ``rise_k`` [K]."""
    tower_c = wb + plant[P_TOWER] + plant[P_HX]
    mechanical = np.clip((tower_c - supply_c) / rise_k, 0.0, 1.0)
    evap_k = supply_c - plant[P_EVAP] + KELVIN
    lift = wb + plant[P_TOWER] + plant[P_RANGE] + plant[P_COND] + KELVIN - evap_k
    cop = np.where(lift > 0.0, plant[P_CARNOT] * evap_k / np.maximum(lift, 1e-9), plant[P_MAX_COP])
    return mechanical / np.minimum(cop, plant[P_MAX_COP])


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
