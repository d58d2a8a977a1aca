"""Pools of identical chips, racks, scale-up domains and the topology graph."""

from sim.fleet.build import (
    Fleet,
    FleetError,
    ResolvedPool,
    ResolvedSite,
    build_fleet,
    idle_facility_w,
    resolve_pools,
    resolve_site,
    within_cap,
)

__all__ = ["Fleet", "FleetError", "ResolvedPool", "ResolvedSite", "build_fleet", "idle_facility_w",
           "resolve_pools", "resolve_site", "within_cap"]
