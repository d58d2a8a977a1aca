"""Pools of identical chips, racks, scale-up domains and the topology graph."""

from sim.fleet.build import Fleet, FleetError, ResolvedPool, ResolvedSite, build_fleet, resolve_pools, resolve_site

__all__ = ["Fleet", "FleetError", "ResolvedPool", "ResolvedSite", "build_fleet", "resolve_pools", "resolve_site"]
