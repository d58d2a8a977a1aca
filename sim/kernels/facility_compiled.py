"""Numba versions of ``sim.kernels.facility_reference`` (same signatures, same results to rounding)."""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.kernels.facility_reference import (
    C_FAN,
    C_LIQUID,
    C_RISE,
    C_SUPPLY,
    KELVIN,
    P_AIR_RISE,
    P_AIR_SUPPLY,
    P_CARNOT,
    P_COND,
    P_EVAP,
    P_HX,
    P_MAX_COP,
    P_MIN_UNLOAD,
    P_PLR_A,
    P_PLR_B,
    P_PLR_C,
    P_PROPORTIONAL,
    P_PUMP,
    P_RANGE,
    P_TOWER,
)


@njit(cache=True)
def _mechanical(wb, supply_c, rise_k, plant):
    tower_c = wb + plant[P_TOWER] + plant[P_HX]
    return min(max((tower_c - supply_c) / rise_k, 0.0), 1.0)


@njit(cache=True)
def _chiller_share(wb, supply_c, rise_k, plant):
    mechanical = _mechanical(wb, supply_c, rise_k, plant)
    evap_k = supply_c - plant[P_EVAP] + KELVIN
    lift = wb + plant[P_TOWER] + plant[P_RANGE] + plant[P_COND] + KELVIN - evap_k
    cop = plant[P_CARNOT] * evap_k / max(lift, 1e-9) if lift > 0.0 else plant[P_MAX_COP]
    return mechanical / min(cop, plant[P_MAX_COP])


@njit(cache=True)
def cooling_factor(wet_bulb_c, classes, plant):
    n_classes, hours = classes.shape[0], wet_bulb_c.shape[0]
    out = np.empty((n_classes, hours))
    for c in range(n_classes):
        liquid = classes[c, C_LIQUID]
        for h in range(hours):
            wb = wet_bulb_c[h]
            out[c, h] = (classes[c, C_FAN] + plant[P_PUMP]
                         + liquid * _chiller_share(wb, classes[c, C_SUPPLY], classes[c, C_RISE], plant)
                         + (1.0 - liquid) * _chiller_share(wb, plant[P_AIR_SUPPLY], plant[P_AIR_RISE], plant))
    return out


@njit(cache=True)
def chiller_terms(wet_bulb_c, classes, plant):
    n, hours = classes.shape[0], wet_bulb_c.shape[0]
    out = np.empty((2 * n, hours))
    air_supply, air_rise = plant[P_AIR_SUPPLY], plant[P_AIR_RISE]
    for c in range(n):
        liquid = classes[c, C_LIQUID]
        for h in range(hours):
            wb = wet_bulb_c[h]
            out[c, h] = (liquid * _chiller_share(wb, classes[c, C_SUPPLY], classes[c, C_RISE], plant)
                         + (1.0 - liquid) * _chiller_share(wb, air_supply, air_rise, plant))
            out[n + c, h] = (liquid * _mechanical(wb, classes[c, C_SUPPLY], classes[c, C_RISE], plant)
                             + (1.0 - liquid) * _mechanical(wb, air_supply, air_rise, plant))
    return out


@njit(cache=True)
def _multiplier(plr, plant):
    if plr <= 0.0:
        return 1.0
    at = max(min(plr, 1.0), plant[P_MIN_UNLOAD])
    return (plant[P_PLR_A] + plant[P_PLR_B] * at + plant[P_PLR_C] * at * at) / at


def part_load_multiplier(plr, plant):
    plr = np.asarray(plr, dtype=np.float64)
    flat = plr.ravel()
    out = np.empty(flat.shape[0])
    _multipliers(flat, plant, out)
    return out.reshape(plr.shape)


@njit(cache=True)
def _multipliers(plr, plant, out):
    for i in range(plr.shape[0]):
        out[i] = _multiplier(plr[i], plant)


@njit(cache=True)
def facility_power(it_by_class, chiller, mechanical, capacity_kw, fixed_kw, classes, plant):
    n_classes, n = it_by_class.shape[0], it_by_class.shape[1]
    out = np.empty(n)
    for i in range(n):
        heat = 0.0
        it = 0.0
        for c in range(n_classes):
            heat += it_by_class[c, i] * mechanical[c, i]
            it += it_by_class[c, i]
        plr = heat / capacity_kw[i] if capacity_kw[i] > 0.0 else 1.0
        multiplier = _multiplier(plr, plant)
        total = 0.0
        for c in range(n_classes):
            total += it_by_class[c, i] * (1.0 + plant[P_PROPORTIONAL] + classes[c, C_FAN] + plant[P_PUMP]
                                          + chiller[c, i] * multiplier)
        out[i] = total + (fixed_kw if it > 0.0 else 0.0)
    return out


@njit(cache=True)
def hourly_bin_means(values, offset_s, edges_s):
    rows, hours = values.shape[0], values.shape[1]
    n = edges_s.shape[0] - 1
    out = np.zeros((rows, n))
    total = np.zeros(rows)
    for r in range(rows):
        for h in range(hours):
            total[r] += values[r, h]
    integral = np.empty((rows, n + 1))
    # integral from 0 to each edge [value-hours], walking the hours once
    h_prev = 0
    acc = np.zeros(rows)
    for i in range(n + 1):
        t = (edges_s[i] + offset_s) / 3600.0
        whole = np.floor(t)
        cycles = np.floor(whole / hours)
        index = int(whole - cycles * hours)
        if i == 0 or index < h_prev:
            h_prev = 0
            acc[:] = 0.0
        while h_prev < index:
            for r in range(rows):
                acc[r] += values[r, h_prev]
            h_prev += 1
        for r in range(rows):
            integral[r, i] = cycles * total[r] + acc[r] + (t - whole) * values[r, index]
    for i in range(n):
        width = (edges_s[i + 1] - edges_s[i]) / 3600.0
        for r in range(rows):
            out[r, i] = (integral[r, i + 1] - integral[r, i]) / (width if width > 0 else 1.0)
    return out
