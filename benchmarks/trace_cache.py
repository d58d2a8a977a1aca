"""Trace cache benchmark: N runs of a trace scenario in one process, with and without the per-process trace
cache (``sim/workload/cache.py``), as a sweep worker runs its points.

Usage:  python benchmarks/trace_cache.py [--runs 5] [--scenario scenarios/llm-serving-azure.yaml]

Each run is load (validation reads the trace) + ``sim.run`` (the run reads it, the manifest hashes it).
Figures printed (JSON):
* ``cached_s``, ``uncached_s``: wall time of the N runs with the cache and with it turned off;
* ``saved_per_run_s``: ``(uncached_s - cached_s) / runs``;
* ``opens_per_run_*``: data files opened per run (audit hook on ``open``), first run and the rest;
* ``parse_s``: one parse of the scenario's first trace, for scale.
The summaries of every run are checked to be identical with and without the cache. Numba's kernels are
compiled (cached) before timing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sim  # noqa: E402
from sim.workload import cache  # noqa: E402

TRACES = str(REPO / "sim" / "workload" / "traces")
OPENS = {"count": 0}


def _count_opens(event: str, args) -> None:
    if event == "open" and isinstance(args[0], (str, Path)) and str(args[0]).startswith(TRACES):
        OPENS["count"] += 1


def _runs(path: Path, runs: int) -> tuple[float, list[str], list[int]]:
    """Wall time of ``runs`` load+run, each run's summary (YAML) and data files opened by each run."""
    summaries, opens = [], []
    start = time.perf_counter()
    for _ in range(runs):
        before = OPENS["count"]
        summaries.append(yaml.safe_dump(sim.run(sim.load(path)).summary))
        opens.append(OPENS["count"] - before)
    return time.perf_counter() - start, summaries, opens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scenario", type=Path, default=REPO / "scenarios" / "llm-serving-azure.yaml")
    args = parser.parse_args()
    sys.addaudithook(_count_opens)
    sim.run(sim.load(args.scenario))  # compile (or load) the kernels
    cache.set_enabled(True)
    cached_s, cached, cached_opens = _runs(args.scenario, args.runs)
    cache.set_enabled(False)
    uncached_s, uncached, uncached_opens = _runs(args.scenario, args.runs)
    cache.set_enabled(True)
    if cached != uncached:
        raise SystemExit("the summaries differ with and without the cache")
    scenario = sim.load(args.scenario)
    traces = [s.traffic.trace for s in scenario.workloads.inference if s.traffic.trace is not None]
    if scenario.workloads.training is not None and scenario.workloads.training.trace is not None:
        traces.append(scenario.workloads.training.trace)
    parse_s = None
    if traces:
        from sim.workload import read_trace

        cache.set_enabled(False)
        start = time.perf_counter()
        read_trace(traces[0], args.scenario.parent)
        parse_s = time.perf_counter() - start
        cache.set_enabled(True)
    print(json.dumps({
        "scenario": args.scenario.stem, "runs": args.runs,
        "cached_s": round(cached_s, 3), "uncached_s": round(uncached_s, 3),
        "saved_per_run_s": round((uncached_s - cached_s) / args.runs, 3),
        "opens_per_run_cached_first": cached_opens[0], "opens_per_run_cached_rest": cached_opens[1:],
        "opens_per_run_uncached": uncached_opens,
        "parse_s": None if parse_s is None else round(parse_s, 3),
        "identical_summaries": True,
    }, indent=1))


if __name__ == "__main__":
    main()
