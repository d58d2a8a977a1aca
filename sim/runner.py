"""Run one scenario end to end: build the fleet and jobs, run the engine, compute the results."""

from __future__ import annotations

import gc
import time
from pathlib import Path

from sim import kernels
from sim.engine import autoscale, inference, ranking
from sim.engine.prepare import prepare_jobs
from sim.engine.simulate import simulate_training
from sim.fleet import build_fleet
from sim.results import compute
from sim.results import ranking as ranking_results
from sim.results.inference import requests_table, service_summaries
from sim.results.manifest import build_manifest
from sim.results.results import Results
from sim.rng import streams
from sim.scenario.checks import scenario_catalog
from sim.scenario.loader import source_of
from sim.scenario.schema import Scenario
from sim.workload import input_files, training_jobs


def run(scenario: Scenario, progress: bool = False) -> Results:
    """Simulate ``scenario`` and return its ``Results``; writes no file (call ``results.save(dir)``).

    Python's cyclic garbage collector is paused during the run: the engine allocates millions of small
    tuples that never form cycles, and repeated full collections over them made wall time grow faster
    than the number of jobs. Reference counting still frees everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _run(scenario, progress)
    finally:
        if was_enabled:
            gc.enable()


def _run(scenario: Scenario, progress: bool) -> Results:
    wall_start = time.perf_counter()
    catalog = scenario_catalog(scenario)
    fleet = build_fleet(scenario, catalog)
    _, origin = source_of(scenario)
    jobs = training_jobs(scenario, origin.directory)
    prepared = prepare_jobs(jobs, fleet, catalog, scenario.porting)
    horizon = float(scenario.duration)
    plans = inference.plan_groups(scenario, fleet, catalog)
    rng = streams(scenario.seed)["inference"]
    requests_by_service = inference.build_requests(scenario, origin.directory, rng)
    scaling = autoscale.plan_scaling(scenario, fleet, plans, requests_by_service)
    served = inference.serve(scenario, fleet, plans, requests_by_service, origin.directory, rng,
                             switches=scaling.switches)
    ranking_plans = ranking.plan_services(scenario, fleet, catalog)
    ranked = ranking.serve(scenario, ranking_plans, streams(scenario.seed)["ranking"])
    with _progress_bar(progress, horizon) as update:
        cluster = simulate_training(fleet, prepared, horizon, scenario.policy.scheduler, progress=update,
                                    scaling_schedule=scaling.schedule,
                                    checkpoint_interval_s=scenario.policy.preemption.checkpoint_interval)
    outcome = cluster.outcome()
    jobs_out = compute.jobs_table(jobs, outcome, fleet)
    inference_chips = compute.inference_chip_events(fleet, plans, scaling.switches)
    busy_by_pool = ranking.add_busy_chip_seconds(inference.busy_chip_seconds_by_pool(plans, served), ranking_plans,
                                                 ranked)
    series = compute.timeseries(jobs, outcome, fleet, horizon, scenario.outputs.timeseries_interval, scenario.start,
                                busy_by_pool, inference_chips)
    peak_w = compute.peak_it_power_w(jobs, outcome, fleet, horizon, inference_chips)
    summary = compute.summary(jobs_out, series, fleet, horizon, peak_w, outcome)
    summary["inference"] = service_summaries(scenario, fleet, plans, served)
    summary["inference"].update(ranking_results.service_summaries(scenario, fleet, ranking_plans, ranked))
    requests = ranking_results.with_ranking_rows(requests_table(scenario, fleet, plans, served),
                                                 ranking_results.requests_table(scenario, fleet, ranking_plans, ranked))
    manifest = build_manifest(scenario, kernels.NUMBA_ENABLED, time.perf_counter() - wall_start, cluster.events,
                              input_files(scenario, origin.directory))
    fluid_load = {service.name: (result["edges"], result["offered_per_bin"], result["served_per_bin"])
                  for service, result in zip(scenario.workloads.inference, served)
                  if result is not None and result.get("fidelity") == "fluid"}
    return Results(summary=summary, jobs=jobs_out, timeseries=series, manifest=manifest, scenario=scenario,
                   fluid_load=fluid_load,
                   requests=requests)


class _progress_bar:
    """A tqdm bar over simulated time, shown only when asked (the CLI on a terminal)."""

    def __init__(self, enabled: bool, horizon_s: float):
        self.enabled, self.horizon_s, self.bar = enabled, horizon_s, None

    def __enter__(self):
        if not self.enabled:
            return None
        from tqdm import tqdm

        self.bar = tqdm(total=round(self.horizon_s / 86400, 1), unit="sim-day", leave=False)

        def update(t_s: float) -> None:
            self.bar.n = round(t_s / 86400, 1)
            self.bar.refresh()

        return update

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False


def default_output_dir(scenario: Scenario) -> Path:
    return Path("outputs") / scenario.name
