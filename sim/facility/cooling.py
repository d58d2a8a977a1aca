"""The cooling plant: what removing a kilowatt of IT heat costs in power, hour by hour, per cooling class.

Classes (``fleet[].cooling``): ``air`` (computer-room air handlers on chilled water), ``rear-door`` (a
heat exchanger on the rack's exhaust, on warmer water) and ``liquid`` (cold plates on warm facility
water, ASHRAE W32, the rest of the heat by the air path). Each hour, a cooling tower gives water at the
wet-bulb temperature plus its approach; where that is cold enough the heat goes out without chillers
(free cooling), otherwise a chiller lifts it at a COP that falls as the wet-bulb rises (a fixed fraction
of the Carnot COP, fitted to ASHRAE 90.1's rated chiller). Fans, pumps and tower fans take fixed shares
of the heat; power distribution losses and lighting a fixed share of IT power. The formulas are in
``sim.kernels.facility_reference.cooling_factor``; every constant, with its source, in
``sim/facility/data/cooling.yaml``.

Simplifications: all heat is rejected by evaporative towers (no dry coolers, so dry-bulb plays no part);
the plant has no capacity limit and no part-load curve (fans, pumps and COP do not change with load);
the heat of a rack is its IT power (every watt ends as heat in the hall)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
import yaml

from sim import kernels

CLASSES = ("air", "rear-door", "liquid")
PLANT_KEYS = ("chiller_carnot_fraction", "max_cop", "tower_approach_k", "condenser_range_k",
              "economizer_hx_approach_k", "evaporator_approach_k", "condenser_approach_k", "pump_and_tower_frac",
              "part_load_a", "part_load_b", "part_load_c", "min_unloading_ratio", "power_distribution_loss_frac")
CLASS_KEYS = ("supply_c", "loop_rise_k", "fan_frac", "liquid_heat_frac")


@lru_cache(maxsize=1)
def constants() -> dict:
    """``cooling.yaml`` as read: ``{"plant": {key: {value, source}}, "classes": {class: {key: ...}}}``."""
    text = resources.files("sim.facility").joinpath("data", "cooling.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def plant_array() -> np.ndarray:
    """The plant constants in the kernel's order, then the air path's supply and rise."""
    data = constants()
    air = data["classes"]["air"]
    return np.array([float(data["plant"][k]["value"]) for k in PLANT_KEYS]
                    + [float(air["supply_c"]["value"]), float(air["loop_rise_k"]["value"])])


def class_array(classes=CLASSES) -> np.ndarray:
    """One row per class: supply [°C], loop rise [K], fan share, liquid share of the heat."""
    data = constants()["classes"]
    return np.array([[float(data[c][k]["value"]) for k in CLASS_KEYS] for c in classes])


def plant_value(key: str) -> float:
    """One plant constant of ``cooling.yaml``."""
    return float(constants()["plant"][key]["value"])


def fixed_frac() -> float:
    """Overheads drawn at any load, per unit of the hall's design IT power [-]: the no-load power
    distribution losses and lighting."""
    return plant_value("power_distribution_fixed_frac") + plant_value("lighting_and_other_frac")


def plant_capacity_frac(dry_bulb_c: np.ndarray, design_c: float | None = None) -> np.ndarray:
    """The plant's heat-rejection capacity as a share of its rating [-]: 1 up to the design dry-bulb
    (``design_c``, default ``plant_design_dry_bulb_c``), then less by ``plant_derate_per_k`` per K, not below 0."""
    design = plant_value("plant_design_dry_bulb_c") if design_c is None else float(design_c)
    excess = np.maximum(np.asarray(dry_bulb_c, dtype=np.float64) - design, 0.0)
    return np.maximum(1.0 - plant_value("plant_derate_per_k") * excess, 0.0)


def hourly_pue(wet_bulb_c: np.ndarray, classes=CLASSES, load_frac: float = 1.0) -> np.ndarray:
    """PUE of a hall of each class alone at each hour, its IT at ``load_frac`` of its design power and its
    plant sized to that design power: ``facility power ÷ IT power`` (``sim.kernels.facility_power``)."""
    wet = np.ascontiguousarray(wet_bulb_c, dtype=np.float64)
    table, plant = class_array(classes), plant_array()
    terms = kernels.chiller_terms(wet, table, plant)
    n, hours = len(classes), len(wet)
    out = np.empty((n, hours))
    capacity = np.ones(hours)
    for c in range(n):
        it = np.zeros((n, hours))
        it[c] = load_frac
        out[c] = kernels.facility_power(it, terms[:n], terms[n:], capacity, fixed_frac(), table, plant) / load_frac
    return out
