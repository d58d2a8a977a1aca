"""What a worker runs for one (point, replica): the scenario, already built and validated by the parent.

A task returns ``{"figures": {...}}`` or, when the simulation raises, ``{"error": "<type>: <message>"}``: a
failing point is a result to record, not a reason to stop the sweep. Failures of the executor itself (a
worker process killed, a lost Dask worker) surface as exceptions from the future instead, and the sweep
leaves those rows missing for ``--resume``.
"""

from __future__ import annotations

import signal

from sim import runner
from sim.sweep.figures import summary_figures


def run_task(scenario) -> dict:
    """Simulate ``scenario`` (one point and replica) and return its figures or its error."""
    try:
        results = runner.run(scenario)
    except Exception as exc:  # noqa: BLE001 - any failure of one point is recorded with its message
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"figures": summary_figures(results.summary)}


def run_tasks(scenarios) -> list[dict]:
    """``run_task`` over a batch of (point, replica) scenarios, in order: one executor task for several points,
    so a scheduler's per-task cost (a Dask task's round trip, the scenario's shipping) is paid once per batch."""
    return [run_task(scenario) for scenario in scenarios]


def init_worker() -> None:
    """Start of a local worker process: Ctrl-C is the parent's to handle (it stops the sweep and keeps the
    table), so workers ignore SIGINT instead of printing tracebacks; the simulator is imported once here."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
