"""dcsim: a discrete-event simulator of AI data centers built from heterogeneous accelerators.

Scripting API::

    import sim
    scenario = sim.load("scenarios/classroom-hetero.yaml")
    bigger = scenario.with_overrides({"site.power_cap_mw": 0.2, "fleet.gpu-h100.count": 128})
    results = sim.run(bigger)          # writes nothing; sim.run("scenarios/x.yaml") loads the file first
    results.summary["jct_s"]["p50"]; results.jobs; results.timeseries
    results.save("outputs/bigger")
"""

from __future__ import annotations

from pathlib import Path

from sim import runner as _runner
from sim import validation  # noqa: F401  (installs the semantic checks in the scenario loader)
from sim.results.results import Results
from sim.scenario import Scenario, ScenarioError, load, load_text

__version__ = "0.1.0"
__all__ = ["Results", "Scenario", "ScenarioError", "load", "load_text", "run"]


def run(scenario: Scenario | str | Path, progress: bool = False) -> Results:
    """Simulate a scenario, given as a ``Scenario`` or as the path of its YAML file, and return its
    ``Results``; writes no file (call ``results.save(dir)``). ``progress`` prints each long phase on stderr."""
    if isinstance(scenario, (str, Path)):
        scenario = load(scenario)
    elif not isinstance(scenario, Scenario):
        raise TypeError(f"sim.run expects a Scenario or the path of a scenario file, got {type(scenario).__name__}")
    return _runner.run(scenario, progress=progress)
