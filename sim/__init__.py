"""dcsim: a discrete-event simulator of AI data centers built from heterogeneous accelerators.

Scripting API::

    import sim
    scenario = sim.load("scenarios/classroom-hetero.yaml")
    bigger = scenario.with_overrides({"site.power_cap_mw": 0.2, "fleet.gpu-h100.count": 128})
    results = sim.run(bigger)          # writes nothing; sim.run("scenarios/x.yaml") loads the file first
    results.summary["jct_s"]["p50"]; results.jobs; results.timeseries
    results.save("outputs/bigger")
    replicas = sim.run(bigger, replicas=5)   # 5 spawned seeds: replicas.summary has mean and 95 % interval
    table = sim.sweep(bigger, grid={"site.power_cap_mw": [0.08, 0.1]}, replicas=3, workers=2)  # pandas
"""

from __future__ import annotations

from pathlib import Path

from sim import runner as _runner
from sim import sweep as _sweep  # imported before ``def sweep`` below, which then stays ``sim.sweep``
from sim import validation  # noqa: F401  (installs the semantic checks in the scenario loader)
from sim.results.results import Results
from sim.scenario import Scenario, ScenarioError, load, load_text

__version__ = "0.1.0"
__all__ = ["Replicas", "Results", "Scenario", "ScenarioError", "load", "load_text", "run", "sweep"]
Replicas = _sweep.Replicas


def run(scenario: Scenario | str | Path, progress: bool = False, replicas: int | None = None
        ) -> Results | Replicas:
    """Simulate a scenario, given as a ``Scenario`` or as the path of its YAML file, and return its
    ``Results``; writes no file (call ``results.save(dir)``). ``progress`` prints each long phase on stderr.

    ``replicas=N``: run it with ``N`` seeds spawned from its seed and return a ``Replicas`` (every run's
    ``Results``, and ``summary``: each figure's mean and 95 % interval)."""
    scenario = _scenario(scenario, "sim.run")
    if replicas is not None:
        return _sweep.run_replicas(scenario, replicas, progress=progress)
    return _runner.run(scenario, progress=progress)


def sweep(scenario: Scenario | str | Path, grid: dict | None = None, **options):
    """Run a scenario at every point of a design and return a pandas DataFrame, one row per (point,
    replica): ``point, replica, seed``, the parameters, ``error`` and every summary figure (dotted keys).

    ``grid``: dotted path (as ``--set``) -> values; ``design="zip"`` pairs them instead of crossing them,
    ``design="lhs", samples=N`` draws a Latin hypercube over ``(low, high)`` ranges. ``replicas=k``,
    ``workers=N`` (local processes) or ``executor=`` a ``concurrent.futures`` executor or a
    ``dask.distributed.Client``; ``out=`` a folder to write ``sweep.parquet`` as rows finish, ``resume=True``
    to compute only the rows missing there. See ``sim.sweep.execute.run_sweep``."""
    return _sweep.sweep(_scenario(scenario, "sim.sweep"), grid, **options)


def _scenario(scenario, caller: str) -> Scenario:
    if isinstance(scenario, (str, Path)):
        return load(scenario)
    if not isinstance(scenario, Scenario):
        raise TypeError(f"{caller} expects a Scenario or the path of a scenario file, got {type(scenario).__name__}")
    return scenario
