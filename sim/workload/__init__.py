"""Workloads: trace readers (real public formats) and synthetic generators; nothing here knows the engine."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from sim.workload import cache
from sim.workload.alibaba import parse_alibaba_pods, read_alibaba_pods
from sim.workload.errors import TraceError
from sim.workload.files import display, path_exists, quote
from sim.workload.generator import generate_jobs
from sim.workload.jobs import JOB_COLUMNS, make_job_table
from sim.workload.requests import parse_azure_llm, parse_mooncake, read_azure_llm, read_mooncake, scale_requests

PACKAGED_TRACES = resources.files("sim.workload").joinpath("traces")


def resolve_trace_path(path: str, base_dir: Path) -> Path:
    """A trace path relative to the scenario's folder, else to the packaged ``traces/`` folder.

    ``FileNotFoundError`` when it is in neither; ``TraceError`` when the path cannot be looked up (too long)."""
    candidate = base_dir / path
    if path_exists(candidate):
        return candidate
    packaged = Path(str(PACKAGED_TRACES.joinpath(path)))
    if path_exists(packaged):
        return packaged
    raise FileNotFoundError(f"trace file {quote(path)} not found in {display(base_dir)} nor in the packaged traces")


def read_trace(trace, base_dir: Path) -> pd.DataFrame:
    """The table of a scenario's trace: a request table (``azure-llm-2023``, ``mooncake``) or a job table
    (``alibaba-gpu-2023``), read with the scenario's limit (and map and time scale); ``TraceError`` or
    ``FileNotFoundError`` when it cannot be. Validation calls this, so a bad trace fails before a run.

    The table comes from the process's trace cache (``sim.workload.cache``): a file is parsed once per
    process for the same parameters while it is unchanged; each call gets a copy of its own."""
    path = resolve_trace_path(trace.path, base_dir)
    if trace.format == "alibaba-gpu-2023":
        mapping = trace.accelerator_map
        params = (trace.format, trace.limit, trace.time_scale, tuple(sorted((mapping or {}).items())))
        return cache.load(path, params, lambda handle, label: parse_alibaba_pods(handle, label, mapping, trace.limit,
                                                                                 trace.time_scale))
    parse = parse_azure_llm if trace.format == "azure-llm-2023" else parse_mooncake
    return cache.load(path, (trace.format, trace.limit), lambda handle, label: parse(handle, label, trace.limit))


def input_files(scenario, base_dir: Path) -> list[Path]:
    """Every data file a scenario's workloads read (traces, empirical distributions), for the manifest."""
    training = scenario.workloads.training
    files: list[Path] = [resolve_trace_path(s.traffic.trace.path, base_dir)
                         for s in scenario.workloads.inference if s.traffic.trace is not None]
    dists = []
    for service in scenario.workloads.inference:
        gen = service.traffic.generator
        if gen is not None:
            dists += [getattr(gen, name, None) for name in ("prompt_tokens", "output_tokens", "items_per_request")]
    if training is not None and training.trace is not None:
        files.append(resolve_trace_path(training.trace.path, base_dir))
    if training is not None and training.generator is not None:
        dists += [training.generator.duration_s, training.generator.samples]
    return files + [_empirical_file(d.empirical, base_dir) for d in dists if d is not None and d.empirical is not None]


def _empirical_file(name: str, base_dir: Path) -> Path:
    """Where an empirical distribution's values come from: a packaged file, or one next to the scenario."""
    from sim.workload.distributions import BUILTIN_EMPIRICAL

    if name in BUILTIN_EMPIRICAL:
        folder, file = BUILTIN_EMPIRICAL[name]
        return Path(str(PACKAGED_TRACES.joinpath(folder, file)))
    return base_dir / name


def training_jobs(scenario, base_dir: Path) -> pd.DataFrame:
    """The scenario's training jobs as a job table (empty when the scenario has none)."""
    training = scenario.workloads.training
    if training is None:
        return make_job_table({"job_id": [], "arrival_s": [], "chips": []})
    if training.generator is not None:
        return generate_jobs(training.generator, scenario.seed, base_dir, scenario.start)
    return read_trace(training.trace, base_dir)


def job_priorities(scenario, n: int, rng):
    """Power-cap priority of each of the ``n`` training jobs (``sim.policies.capping``): the generator's or trace's
    ``priority``, or drawn from the generator's priority mix with ``rng`` (the run's ``priorities`` stream, used
    only by a mix, so runs without one draw nothing more)."""
    import numpy as np

    training = scenario.workloads.training
    source = None if training is None else (training.generator or training.trace)
    value = 0 if source is None else source.priority
    if not isinstance(value, dict):
        return np.full(n, value, dtype=np.int64)
    keys = np.asarray(list(value), dtype=np.int64)
    weights = np.asarray(list(value.values()), dtype=np.float64)
    return keys[rng.choice(len(keys), size=n, p=weights / weights.sum())]


__all__ = ["JOB_COLUMNS", "TraceError", "generate_jobs", "input_files", "job_priorities", "make_job_table",
           "read_alibaba_pods", "read_azure_llm", "read_mooncake", "read_trace", "resolve_trace_path", "scale_requests",
           "training_jobs"]
