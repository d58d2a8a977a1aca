"""Run one scenario end to end: build the fleet and jobs, run the engine, compute the results."""

from __future__ import annotations

import dataclasses
import gc
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sim import facility, kernels
from sim.catalog.efficiency import port_costs, ports_at
from sim.fleet import build_fleet
from sim.fleet.procurement import ORDER_COLUMNS, order_rows, procurement_summary
from sim.money import build_ledger, job_costs_usd, job_energy_kwh, money_summary, monthly_table
from sim.policies.capping import COUNTED_AS_DRAWN, lowest_busy_power_frac
from sim.progress import Progress, kernels_need_compiling
from sim.results import compute, perf_per_watt
from sim.results import failures as failure_results
from sim.results import shifting as shifting_results
from sim.results.burst import burst_summary, realise_burst
from sim.results.capping import budget_series, capping_rows, capping_summary
from sim.results.checkpoints import checkpoint_dips
from sim.results.manifest import build_manifest
from sim.results.results import Results
from sim.results.series import bin_edges
from sim.rng import streams
from sim.scenario.loader import source_of
from sim.scenario.schema import Scenario
from sim.serving import FAMILIES
from sim.serving.failures import ServingFailures
from sim.serving.family import ServingContext
from sim.serving.stage import serve_all
from sim.serving.throttle import replica_clocks as replica_clocks_for
from sim.training import prepare_jobs, simulate_training
from sim.training.failures import resolve_failures
from sim.training.power import job_activity, phase_activities
from sim.training.shifting import Shifting, threshold_value
from sim.validation.checks import scenario_catalog
from sim.workload import input_files, job_priorities, training_jobs


def run(scenario: Scenario, progress: bool = False) -> Results:
    """Simulate ``scenario`` and return its ``Results``; writes no file (call ``results.save(dir)``).
    ``progress`` prints each long phase on standard error (the CLI asks for it on a terminal only).

    Python's cyclic garbage collector is paused during the run: the engine allocates millions of small
    tuples that never form cycles, and repeated full collections over them made wall time grow faster
    than the number of jobs. Reference counting still frees everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _run(scenario, Progress(progress))
    finally:
        if was_enabled:
            gc.enable()


def _engineer_week_usd(scenario: Scenario, catalog) -> float:
    """``site.engineer_week_usd``, else the catalog's default (an estimate, sim/catalog/data/site.yaml)."""
    given = scenario.site.engineer_week_usd
    return float(given) if given is not None else catalog.site_defaults["engineer_week_usd"]


def _run(scenario: Scenario, progress: Progress) -> Results:
    """The stages in order: build, serve (inference has priority), train, then results."""
    wall_start = time.perf_counter()
    catalog = scenario_catalog(scenario)
    rngs = streams(scenario.seed)
    fleet = build_fleet(scenario, catalog, rngs["supply"])  # orders draw their lead times from the supply stream
    _, origin = source_of(scenario)
    plant = None
    if facility.active(scenario.site):  # weather-driven PUE, time-varying price or carbon
        plant = facility.facility_model(scenario.site, fleet.site, origin.directory)
        fleet = facility.planning_site(plant, fleet)
    cap_config = scenario.policy.power_cap
    counted = cap_config.kind in COUNTED_AS_DRAWN and fleet.site.power_cap_w is not None  # inference as it draws
    horizon = float(scenario.duration)
    plant_schedule = facility.plant_cap_schedule(plant, fleet, scenario.start, horizon) if plant is not None else ()
    with progress.phase("reading traces and preparing jobs"):
        jobs = training_jobs(scenario, origin.directory)
        prepared = prepare_jobs(jobs, fleet, catalog, scenario.porting, scenario.start, horizon,
                                busy_power_frac=lowest_busy_power_frac(scenario.policy.power_cap),
                                floor_w=fleet.idle_facility_w if counted else None,
                                spare_chips=_spare_chips(scenario, fleet),
                                highest_cap_w=max(w for t, w in _cap_schedule(fleet, scenario.start, plant_schedule)
                                                  if t < horizon) if plant_schedule else None)
    priorities = job_priorities(scenario, len(jobs), rngs["priorities"])
    replica_clocks = None
    if counted:  # slowed inference replicas under the cap (sim.serving.throttle)
        windows = _cap_windows(fleet, scenario.start, horizon)
        replica_clocks = replica_clocks_for(scenario.workloads.inference, fleet, windows,
                                            int(priorities.max()) if len(priorities) else None,
                                            cap_config.min_clock_frac)
    # serving uses the ports in force at the run's start (a port starting later is refused by validation)
    failures = resolve_failures(scenario, catalog, fleet, jobs)  # training's and replicas' (``_serving_failures``)
    context = ServingContext(fleet=fleet, catalog=catalog, porting=ports_at(scenario.porting, 0.0, scenario.start),
                             horizon_s=horizon,
                             bin_width_s=float(scenario.outputs.timeseries_interval), base_dir=origin.directory,
                             rng=rngs["inference"], ranking_rng=rngs["ranking"], start=scenario.start,
                             failures=_serving_failures(failures),
                             failure_rng=rngs["serving_failures"], replica_clocks=replica_clocks)
    compiling = (" (first run: compiling the kernels)"
                 if kernels_need_compiling([kernels.serve_llm, kernels.serve_ranking]) else "")
    serving = serve_all(scenario.workloads.inference, FAMILIES, context, _autoscale_configs(scenario),
                        phase=lambda name: progress.phase(f"serving {name}{compiling}"))
    shift = _shifting(scenario, fleet, plant, origin.directory)
    with progress.simulated_days(horizon) as update:
        cluster = simulate_training(fleet, prepared, horizon, scenario.policy.scheduler, progress=update,
                                    scaling_schedule=serving.scaling.schedule,
                                    checkpoint_interval_s=scenario.policy.preemption.checkpoint_interval,
                                    burst_policies=_burst_policies(scenario, fleet), failures=failures,
                                    failure_rng=rngs["failures"], power_cap_config=scenario.policy.power_cap,
                                    cap_schedule=_cap_schedule(fleet, scenario.start, plant_schedule),
                                    priorities=priorities.tolist() if priorities.any() else None,
                                    inference_power=_inference_power(serving, fleet, horizon,
                                                                     scenario.outputs.timeseries_interval)
                                    if counted else None,
                                    shifting=shift[0] if shift is not None else None)
    fleet, serving_burst_pools = _serving_burst(fleet, serving)
    burst_events = None
    if cluster.burst is not None:  # the burst pools' realised rentals feed everything that integrates online chips
        fleet, burst_events = realise_burst(fleet, cluster.burst.events, horizon, scenario.start)
    capping_table = None
    with progress.phase("computing results"):
        outcome = cluster.outcome()  # before the capping's outcome, which clears the runs' clocks it reads
        capping_out = cluster.capping.outcome(horizon) if cluster.capping is not None else None
        power_events = capping_out["power_events"] if capping_out is not None else None
        if replica_clocks:  # what slowed replicas save, with what slowed training saves
            edges = bin_edges(horizon, scenario.outputs.timeseries_interval)
            power_events = _merge_events(power_events, serving.throttled_power(fleet, edges))
        cap_events = (_cap_events(fleet, scenario.start, plant_schedule)
                      if capping_out is not None and (fleet.site.power_cap_w or plant_schedule) else None)
        jobs_out = compute.jobs_table(jobs, outcome, fleet, prepared.steps)
        if priorities.any():  # jobs.csv names each job's power-cap priority when any is not the default 0
            jobs_out = jobs_out.assign(priority=priorities)
        if failures is not None:
            jobs_out = failure_results.add_job_columns(jobs_out, outcome["failures"])
        inference_chips = compute.inference_chip_events(fleet, serving.scaled_groups, serving.scaling.switches)
        activity = job_activity(prepared)
        dips = None
        job_it_j = np.zeros(len(jobs))  # IT energy throttled clocks and checkpoint dips took off each job [J]
        if capping_out is not None:
            job_it_j = job_it_j + capping_out["job_it_correction_j"]
        if failures is not None:
            dips = checkpoint_dips(outcome, outcome["failures"], prepared.busy_chips, activity, fleet.pools,
                                   phase_activities(catalog)[2], horizon, float(scenario.outputs.timeseries_interval),
                                   capping_out["job_clocks"] if capping_out is not None else None)
            job_it_j = job_it_j + dips["job_it_j"]
        series = compute.timeseries(jobs, outcome, fleet, horizon, scenario.outputs.timeseries_interval,
                                    scenario.start, serving.busy_chip_seconds_by_pool(), inference_chips,
                                    power_events, cap_events,
                                    inference_energy_chip_s=serving.energy_chip_seconds_by_pool(), activity=activity,
                                    dip_events=[dips["resolved"], dips["averaged"]] if dips else None)
        if failures is not None:
            series = series.assign(**failure_results.series_columns(
                outcome["failures"], fleet, np.append(series["time_s"].to_numpy(), horizon)))
        peak_w = compute.peak_it_power_w(jobs, outcome, fleet, horizon, inference_chips, power_events,
                                         (bin_edges(horizon, scenario.outputs.timeseries_interval),
                                          serving.energy_chip_seconds_by_pool()) if counted else None,
                                         activity=activity, dip_events=[dips["resolved"]] if dips else None)
        edges = np.append(series["time_s"].to_numpy(), horizon)
        if cluster.budgets is not None:  # the busiest rack and row of each pool with budgets, per bin
            loads = cluster.budgets
            series = series.assign(**budget_series(
                loads.layout.names, loads.layout.kinds, loads.layout.limit_w, loads.trace_s, loads.trace_budget,
                loads.trace_util, edges))
        plant_run = None
        if plant is not None:
            plant_run = facility.evaluate(plant, fleet, edges,
                                          {p.name: series[f"it_power_kw.{p.name}"].to_numpy() for p in fleet.pools},
                                          scenario.start, horizon)
            series = series.assign(**facility.series_columns(plant_run))
        summary = compute.summary(jobs_out, series, fleet, horizon, peak_w, outcome,
                                  warmup_s=scenario.outputs.warmup)
        summary["inference"] = serving.summaries()
        per_watt = perf_per_watt.summary(jobs_out, outcome, series, fleet.pools, summary["inference"], horizon)
        if per_watt:
            summary["perf_per_watt"] = per_watt
        if failures is not None:
            summary["failures"] = failure_results.summary(jobs_out, outcome["failures"], fleet, horizon,
                                                          scenario.failures.profile)
        summary["scenario"] = {"name": scenario.name, "description": scenario.description.strip()}
        if capping_out is not None:
            summary["power_capping"] = capping_summary(capping_out, scenario.policy.power_cap.kind,
                                                       serving.throttled_chip_hours() if counted else None)
            capping_table = capping_rows(capping_out["rows"])
        if shift is not None:
            summary["shifting"] = shifting_results.summary(
                scenario.policy.shifting, shift[0].threshold, shift[0].outcome(), jobs_out, outcome, fleet.pools,
                fleet.site, *shift[1:], facility.model.year_offset_s(scenario.start), horizon)
        if burst_events is not None:
            summary["burst"] = burst_summary(burst_events, fleet, horizon, serving_burst_pools)
        requests = serving.requests_table()
        ledger = build_ledger(fleet.pools, fleet.site, scenario.start, horizon, edges,
                              series["facility_power_kw"].to_numpy(),
                              {p.name: series[f"it_power_kw.{p.name}"].to_numpy() for p in fleet.pools},
                              port_costs(scenario.porting, scenario.start, _engineer_week_usd(scenario, catalog)),
                              *((plant_run.price_usd_per_kwh, plant_run.carbon_g_per_kwh) if plant_run else ()))
        if plant_run is not None:
            summary.update(facility.summary_fields(plant, plant_run, series["it_power_kw"].to_numpy(), edges,
                                                   ledger.month_edges_s, ledger.months, peak_w))
            if plant.plant_w is not None:
                summary["facility"]["plant"] = facility.plant_fields(
                    plant, fleet, scenario.start, horizon, power_events,
                    _cap_schedule(fleet, scenario.start), plant_schedule)
        heat = facility.heat_throttled_pools(fleet)
        if heat:
            summary["heat_throttled_pools"] = heat
        # mean power over the run [kW]: energy ÷ horizon (with a facility model, its energies)
        summary["mean_it_power_kw"] = summary["it_energy_kwh"] / (horizon / 3600.0)
        summary["mean_facility_power_kw"] = summary["facility_energy_kwh"] / (horizon / 3600.0)
        chip_usd, energy_usd = job_costs_usd(jobs_out, outcome, fleet.pools, fleet.site, horizon, activity, job_it_j)
        summary["money"] = money_summary(ledger, jobs_out, chip_usd, energy_usd)
        by_chip = compute.training_by_accelerator(jobs_out, job_energy_kwh(jobs_out, outcome, fleet.pools, fleet.site,
                                                                           horizon, activity, job_it_j))
        if by_chip:
            summary["training_by_accelerator"] = by_chip
        request_level = [(s.name, s.family, s.slo) for s in scenario.workloads.inference if s.fidelity == "request"]
        service_costs = {name: (edges, *cost) for name, cost in serving.cost_per_bin(edges).items()}
        monthly = monthly_table(ledger, fleet.pools, jobs_out, requests, request_level, serving.slo_per_bin(),
                                service_costs)
        if plant_run is not None:
            extra = facility.monthly_columns(plant_run, series["it_power_kw"].to_numpy(), edges, ledger.month_edges_s)
            monthly = pd.concat([monthly, extra.set_index(monthly.index)], axis=1)
        procurement = None
        if scenario.procurement.orders:
            summary["procurement"] = procurement_summary(fleet.orders)
            procurement = pd.DataFrame(order_rows(fleet.orders, scenario.procurement.orders, scenario.supply.shocks,
                                                  scenario.start), columns=ORDER_COLUMNS)
    manifest = build_manifest(scenario, kernels.NUMBA_ENABLED, time.perf_counter() - wall_start, cluster.events,
                              input_files(scenario, origin.directory))
    return Results(summary=summary, jobs=jobs_out, timeseries=series, manifest=manifest, scenario=scenario,
                   fluid_load=serving.load_per_bin(), requests=requests, ledger=ledger, monthly=monthly,
                   procurement=procurement, burst=burst_events, capping=capping_table)


def _serving_burst(fleet, serving):
    """The fleet with each serving-burst pool's online chips (its group's rental windows, ``sim.serving.burst``),
    and those pools' indices."""
    rentals = [rental for run in serving.services for rental in run.burst_rentals()]
    if not rentals:
        return fleet, frozenset()
    pools = list(fleet.pools)
    for pool, steps in rentals:
        pools[pool] = pools[pool].with_realised_steps(*steps)
    return dataclasses.replace(fleet, pools=pools), frozenset(pool for pool, _ in rentals)


def _burst_policies(scenario: Scenario, fleet) -> list:
    """``(pool index, policy.burst entry)`` pairs for the cluster."""
    index = {p.name: p.index for p in fleet.pools}
    return [(index[b.pool], b) for b in scenario.policy.burst]


def _serving_failures(config) -> ServingFailures | None:
    """The failure model of inference replicas (``sim.serving.failures``): training's rates, repairs, spares."""
    if config is None:
        return None
    return ServingFailures(config.rates_per_chip_s, config.repair_s, config.weibull_shape, config.spare_chips)


def _spare_chips(scenario: Scenario, fleet) -> tuple[int, ...] | None:
    """Hot spares per pool [chips] (``failures.hot_spares``), or None without any."""
    if scenario.failures is None or not scenario.failures.hot_spares:
        return None
    index = {p.name: p.index for p in fleet.pools}
    spares = [0] * len(fleet.pools)
    for name, chips in scenario.failures.hot_spares.items():
        spares[index[name]] = chips
    return tuple(spares)


def _shifting(scenario: Scenario, fleet, plant, base_dir) -> tuple | None:
    """``(Shifting, hourly price, hourly carbon)`` when the training jobs are deferrable (``policy.shifting``), else
    None: the signal is the site's hourly price or carbon (``sim.facility.tariff``), its threshold a value or a
    quantile of the year's hourly values."""
    config, training = scenario.policy.shifting, scenario.workloads.training
    if config is None or training is None or not training.deferrable:
        return None
    model = plant if plant is not None else facility.facility_model(scenario.site, fleet.site, base_dir)
    price, carbon = model.price_usd_per_kwh, model.carbon_g_per_kwh
    signal = price if config.signal == "price" else carbon
    threshold = threshold_value(signal, config.threshold)
    held = Shifting(signal, facility.model.year_offset_s(scenario.start), threshold, config.max_delay_h * 3600.0)
    return held, price, carbon


def _cap_schedule(fleet, start, plant: tuple = ()) -> tuple:
    """The site cap's dated values as ``((t [s], cap [W]), ...)`` from the scenario's start (``site.power_cap_mw``);
    with the cooling plant's limit (``plant``: ``sim.facility.plant_cap_schedule``, facility terms) the lower of
    the two at every change of either, from t = 0."""
    site = tuple(((d - start).days * 86400.0, w) for d, w in fleet.site.power_cap_dates)
    if not plant:
        return site
    site_t = np.array([0.0] + [t for t, _ in site if t > 0])
    site_w = [math.inf if fleet.site.power_cap_w is None else fleet.site.power_cap_w] + [w for t, w in site if t > 0]
    for t, w in site:  # dates up to the start: the latest one holds from t = 0
        if t <= 0:
            site_w[0] = w
    plant_t = np.array([t for t, _ in plant])
    times = np.union1d(site_t, plant_t)
    site_at = np.array(site_w)[np.searchsorted(site_t, times, side="right") - 1]
    plant_at = np.array([w for _, w in plant])[np.searchsorted(plant_t, times, side="right") - 1]
    merged = np.minimum(site_at, plant_at)
    keep = np.concatenate(([True], np.diff(merged) != 0))
    return tuple((float(t), float(w)) for t, w in zip(times[keep], merged[keep]))


def _cap_windows(fleet, start, horizon_s: float) -> list[tuple[float, float, float | None]]:
    """``(from_s, until_s, cap_w)`` of constant site cap over the run (``site.power_cap_mw``)."""
    times, changes = _cap_events(fleet, start)
    caps = np.cumsum(changes)
    ends = list(times[1:]) + [horizon_s]
    return [(float(a), float(min(b, horizon_s)), float(w)) for a, b, w in zip(times, ends, caps) if a < horizon_s]


def _inference_power(serving, fleet, horizon_s: float, interval_s: float) -> tuple:
    """``(bin starts [s], inference facility power per bin [W], its full-load reservation [W])`` for the cluster
    (``sim.training.capping``): each pool's busy chip-seconds per bin (slowed replicas at their clock's share,
    ``ServingOutcome.drawn_chip_seconds_by_pool``) / bin width × its chips' busy increment × PUE."""
    edges = bin_edges(horizon_s, interval_s)
    widths = np.diff(edges)
    watts = np.zeros(len(widths))
    for pool, busy in serving.drawn_chip_seconds_by_pool().items():
        watts = watts + np.asarray(busy, dtype=np.float64)[: len(widths)] / widths * fleet.busy_increment_facility_w(
            pool)
    reserved = fleet.committed_floor_w - fleet.idle_facility_w
    return edges[:-1], watts, reserved


def _merge_events(events: dict | None, more: dict) -> dict:
    """Per pool ``(times, IT power changes, throttled chip changes)`` of both, concatenated."""
    out = dict(events or {})
    for pool, parts in more.items():
        out[pool] = tuple(np.concatenate((a, b)) for a, b in zip(out[pool], parts)) if pool in out else parts
    return out


def _cap_events(fleet, start, plant: tuple = ()) -> tuple[np.ndarray, np.ndarray]:
    """The facility cap as step-change events ``(times [s], changes [W])`` from t = 0 (``site.power_cap_mw``, with
    the cooling plant's limit: ``_cap_schedule``)."""
    schedule = _cap_schedule(fleet, start, plant)
    values = [fleet.site.power_cap_w] + [w for t, w in schedule if t > 0]
    times = [0.0] + [t for t, _ in schedule if t > 0]
    for t, w in schedule:  # dates up to the start: the latest one holds from t = 0
        if t <= 0:
            values[0] = w
    return np.array(times), np.diff(np.array([0.0] + values))


def _autoscale_configs(scenario: Scenario) -> dict:
    """``(service, group)`` -> the group's ``autoscale`` section, for groups that have one."""
    return {(s, g): group.autoscale for s, service in enumerate(scenario.workloads.inference)
            for g, group in enumerate(service.replicas) if group.autoscale is not None}


def default_output_dir(scenario: Scenario, overrides: tuple[str, ...] | list[str] = ()) -> Path:
    """``outputs/<name>``, or ``outputs/<name>--<slug of the overrides>`` for a run with ``--set`` overrides."""
    from sim.results.output_folder import default_folder

    return default_folder(scenario.name, overrides)
