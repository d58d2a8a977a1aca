"""dcsim: a discrete-event simulator of AI data centers built from heterogeneous accelerators.

Scripting API::

    import sim
    scenario = sim.load("scenarios/classroom-hetero.yaml")
    bigger = scenario.with_overrides({"site.power_cap_mw": 0.2, "fleet.gpu-h100.count": 128})
    results = sim.run(bigger)          # writes nothing
    results.summary["jct_s"]["p50"]; results.jobs; results.timeseries
    results.save("outputs/bigger")
"""

from sim import validation  # noqa: F401  (installs the semantic checks in the scenario loader)
from sim.results.results import Results
from sim.runner import run
from sim.scenario import Scenario, ScenarioError, load, load_text

__version__ = "0.1.0"
__all__ = ["Results", "Scenario", "ScenarioError", "load", "load_text", "run"]
