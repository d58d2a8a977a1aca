"""The facility around the IT: weather, the cooling plant and PUE, energy price and grid carbon over time,
embodied carbon (``sim.facility.model`` ties them to a run)."""

from sim.facility.model import (
    FacilityModel,
    FacilityRun,
    active,
    evaluate,
    facility_model,
    planning_site,
    plant_cap_schedule,
)
from sim.facility.summary import heat_throttled_pools, monthly_columns, plant_fields, series_columns, summary_fields
from sim.facility.weather import LOCATIONS, builtin_weather, read_weather_csv, wet_bulb_c

__all__ = ["FacilityModel", "FacilityRun", "active", "evaluate", "facility_model", "planning_site",
           "plant_cap_schedule", "heat_throttled_pools", "plant_fields", "monthly_columns", "series_columns",
           "summary_fields", "LOCATIONS", "builtin_weather",
           "read_weather_csv", "wet_bulb_c"]
