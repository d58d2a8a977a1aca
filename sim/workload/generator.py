"""Synthetic training jobs: Poisson arrivals and mixes of gang size, model, stack and work."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sim.rng import streams
from sim.workload.distributions import sample
from sim.workload.growth import growth_curve
from sim.workload.jobs import layout_text, make_job_table

if TYPE_CHECKING:  # the scenario layer validates with this package, so it is not imported at run time
    from sim.scenario.schema import JobGenerator


def generate_jobs(spec: "JobGenerator", seed: int, base_dir: Path | None = None,
                  start: dt.date | None = None) -> pd.DataFrame:
    """A job table of ``spec.jobs`` jobs; identical for the same spec and seed.

    Arrivals are a Poisson process of rate ``arrival_rate_per_hour`` starting at t=0. Work is either a
    run time measured on ``reference_accelerator`` (scaled to other chips by the performance kernel) or
    a number of samples (tokens, images) that the kernel turns into a run time on each chip.

    With ``growth`` the arrivals are a non-homogeneous Poisson process of rate ``arrival_rate_per_hour`` × m(t)
    (``sim.workload.growth``; ``start`` dates its points), by inversion of the cumulative rate: the steady
    process's arrival times s (the same draws) are moved to the t with ∫₀ᵗ m = s. A shrinking demand whose
    cumulative rate stops short of s never submits that job: its arrival is infinite (after any horizon).
    """
    rng = streams(seed)
    n = spec.jobs
    gaps = rng["arrivals"].exponential(3600.0 / spec.arrival_rate_per_hour, n)
    models = _choose(spec.models, n, rng["models"])
    chips = _choose(spec.chips, n, rng["sizes"]).astype(np.int64)
    for model, mix in spec.chips_by_model.items():
        rows = np.flatnonzero(models == model)
        chips[rows] = _choose(mix, len(rows), rng["sizes"]).astype(np.int64)
    columns = {
        "job_id": [f"gen-{i:07d}" for i in range(n)],
        "arrival_s": _grown(np.cumsum(gaps) - gaps[0], spec, start),
        "chips": chips,
        "model": models,
        "stack": _choose(spec.frameworks or spec.stacks, n, rng["stacks"]),  # a framework job: its framework
        "note": "generated",
    }
    layout = getattr(spec, "layout", "auto")
    columns["layout"] = "" if layout == "auto" else _layout_texts(layout, chips)
    if getattr(spec, "global_batch", None):
        columns["global_batch"] = _choose(spec.global_batch, n, rng["batches"]).astype(np.float64)
    if getattr(spec, "seq_len", None):
        columns["seq_len"] = _choose(spec.seq_len, n, rng["batches"]).astype(np.float64)
    if spec.duration_s is not None:
        columns["duration_s"] = sample(spec.duration_s, n, rng["service"], base_dir)
        columns["reference_accelerator"] = spec.reference_accelerator or ""
    else:
        columns["samples"] = sample(spec.samples, n, rng["service"], base_dir)
    return make_job_table(columns)


def _layout_texts(spec, chips: np.ndarray) -> np.ndarray:
    """The job-table ``layout`` string of a given layout, per gang size (dp from the gang when not given)."""
    texts = {}
    for c in np.unique(chips).tolist():
        dp = spec.dp if spec.dp is not None else c // (spec.tp * spec.pp * spec.cp)
        texts[c] = layout_text(spec.tp, spec.pp, dp, spec.cp, spec.ep, spec.zero, spec.micro_batch, spec.recompute,
                               spec.vp)
    return np.array([texts[int(c)] for c in chips], dtype=object)


def _choose(mix: dict, n: int, rng: np.random.Generator) -> np.ndarray:
    keys = list(mix)
    weights = np.asarray([mix[k] for k in keys], dtype=float)
    picks = rng.choice(len(keys), size=n, p=weights / weights.sum())
    return np.asarray(keys, dtype=object)[picks]


def _grown(arrival: np.ndarray, spec, start: dt.date | None) -> np.ndarray:
    """Steady arrival times [s] moved by the inverse cumulative growth (unchanged without ``growth``)."""
    curve = growth_curve(getattr(spec, "growth", None), start)
    return arrival if curve is None else curve.inverse(arrival)
