"""Scenario schema, YAML loading with file:line errors, overrides and unit conventions."""

from sim.scenario.errors import Problem, ScenarioError
from sim.scenario.loader import load, load_text, with_overrides
from sim.scenario.schema import Scenario

__all__ = ["Problem", "Scenario", "ScenarioError", "load", "load_text", "with_overrides"]
