"""The request table of a request-level LLM service: a scaled real trace, or synthetic arrivals."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from sim.serving.traffic import expected_requests, poisson_arrivals
from sim.workload import read_trace
from sim.workload.distributions import sample
from sim.workload.growth import growth_curve
from sim.workload.memory import ensure_requests_fit
from sim.workload.requests import MAX_TOKENS, scale_requests


def service_requests(service, base_dir: Path, horizon_s: float, rng: np.random.Generator,
                     start: dt.date | None = None) -> pd.DataFrame:
    """The service's request table: a scaled, offset trace, or Poisson arrivals over the horizon
    (``arrival_s`` [s], ``prompt_tokens``, ``output_tokens``, ``source_row``, ``copy``); either grown by its
    ``growth`` (``start`` is the scenario's start date, which growth points are counted from)."""
    traffic = service.traffic
    if traffic.trace is not None:
        trace = traffic.trace
        rows = read_trace(trace, base_dir)  # parsed once per process (the trace cache); this call's own copy
        grown = trace.growth.mean(start, horizon_s) if trace.growth is not None and start is not None else 1.0
        ensure_requests_fit(len(rows) * trace.scale * grown, f"service {service.name!r}")
        requests = scale_requests(rows, trace.scale, rng, growth_curve(trace.growth, start), trace.start_offset)
        requests["arrival_s"] = requests["arrival_s"] + trace.start_offset
        return requests
    gen = traffic.generator
    ensure_requests_fit(expected_requests(gen, horizon_s, start), f"service {service.name!r}")
    arrival = poisson_arrivals(gen, horizon_s, rng, start)
    n = len(arrival)
    return pd.DataFrame({
        "arrival_s": arrival,
        "prompt_tokens": token_counts(sample(gen.prompt_tokens, n, rng, base_dir)),
        "output_tokens": token_counts(sample(gen.output_tokens, n, rng, base_dir)),
        "source_row": np.arange(1, n + 1), "copy": np.zeros(n, dtype=np.int64)}, copy=False)


def token_counts(drawn: np.ndarray) -> np.ndarray:
    """Drawn lengths as whole token counts from 1 to ``MAX_TOKENS`` (the bound traces are held to): a
    far tail draw of a wide distribution is clipped rather than overflowing int64."""
    return np.clip(np.ceil(drawn), 1, MAX_TOKENS).astype(np.int64)
