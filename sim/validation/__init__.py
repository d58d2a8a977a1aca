"""Checks of a scenario beyond its schema: catalog names, rack layout and cooling, power against the
site cap, replica placement, data files. They sit above the fleet, workload and serving packages they
consult; importing this package installs them in the scenario loader (``sim.scenario.loader``)."""

from sim.scenario.loader import SemanticChecks, register_checks
from sim.validation.checks import check_raw_names, check_scenario, scenario_catalog

register_checks(SemanticChecks(raw_names=check_raw_names, scenario=check_scenario))

__all__ = ["scenario_catalog"]
