"""Scenario schema, YAML loading with file:line errors, overrides and unit conventions."""

from sim.scenario.errors import Problem, ScenarioError
from sim.scenario.loader import load, load_text, with_overrides
from sim.scenario.schema import Scenario

# ``scenario.with_overrides({...})``: the loader's implementation, shared with ``--set``, as a method
Scenario.with_overrides = with_overrides

__all__ = ["Problem", "Scenario", "ScenarioError", "load", "load_text", "with_overrides"]
