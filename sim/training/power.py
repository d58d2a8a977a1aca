"""Power a training job draws while it runs: an activity factor per (job, pool) from its step phases.

A running job's chips draw ``idle + a · (TDP − idle)`` (each with its server share, ``ResolvedPool``): ``a`` is the
step-time-weighted mean of the dynamic power each phase of the step draws (``sim.kernels.step_time_s`` splits
the step into its compute term, its memory term and the rest: communication and pipeline-bubble waits):

    a = compute_share · 1 + memory_share · m + (1 − compute_share − memory_share) · w

with ``m`` (``memory_bound_activity``) and ``w`` (``communication_activity``) from ``sim/catalog/data/site.yaml``
(estimates, sourced there). Jobs without a step plan (roofline path) and pools where the job cannot run keep
``a = 1`` (full load, as before). While a job saves a checkpoint, restarts or restores its state, it draws
``checkpoint_activity`` of the dynamic power instead, times its clock's power share under a throttling cap
(``sim.results.checkpoints``).

Simplifications: one constant per phase for every chip type; the phases of a step alternate within
milliseconds to seconds, so the time series and energies carry their step-time-weighted mean, not the swings
within a step; admission control under a site cap still reserves full load (``sim.training.cluster``), a
conservative bound on what the job draws.
"""

from __future__ import annotations

import numpy as np


def phase_activities(catalog) -> tuple[float, float, float]:
    """(memory-bound, communication, checkpoint) activity: shares of the dynamic power drawn in each [-]."""
    d = catalog.site_defaults
    return (float(d.get("memory_bound_activity", 1.0)), float(d.get("communication_activity", 1.0)),
            float(d.get("checkpoint_activity", 1.0)))


def activity_factor(compute_share: np.ndarray, memory_share: np.ndarray, memory_activity: float,
                    communication_activity: float) -> np.ndarray:
    """``a`` of each (job, pool) from the step's compute and memory shares (module docstring); 1 where both
    shares are 0 (nothing runs there)."""
    compute_share = np.asarray(compute_share, dtype=np.float64)
    memory_share = np.asarray(memory_share, dtype=np.float64)
    rest = np.clip(1.0 - compute_share - memory_share, 0.0, 1.0)
    a = compute_share + memory_activity * memory_share + communication_activity * rest
    return np.where((compute_share + memory_share) > 0.0, np.clip(a, 0.0, 1.0), 1.0)


def job_activity(prepared) -> np.ndarray:
    """N×P activity factor of ``sim.training.prepare.PreparedJobs`` (all ones without a step plan)."""
    steps = prepared.steps
    if steps is None or steps.activity is None:
        return np.ones(prepared.duration_s.shape)
    return np.where(steps.applies[:, None], steps.activity, 1.0)
