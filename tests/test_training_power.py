"""Training power that follows the work (``sim.training.power``, ``sim.results.checkpoints``): the activity factor
from the step phases, checkpoint and restart dips, throttled per-job energy, switch power, and energy that adds up."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.catalog import builtin_catalog
from sim.fleet import build_fleet
from sim.kernels import step_compiled, step_reference
from sim.policies.capping import clock_for_power, power_frac
from sim.training.power import activity_factor, phase_activities
from sim.validation.checks import scenario_catalog
from tests.conftest import scenario_from
from tests.test_step_model import _random_kernel_inputs

CATALOG = builtin_catalog()
MEMORY, COMMUNICATION, CHECKPOINT = phase_activities(CATALOG)


def _llm(base, chips=8, samples=2e9, interval_s=None):
    """One Llama 3 8B pre-training job of ``chips`` H100 (step-time path) on a 16-chip pool, 1-minute bins."""
    base["fleet"] = [{"name": "gpu", "accelerator": "h100-sxm", "count": 16, "chips_per_server": 8,
                      "servers_per_rack": 2}]
    base["workloads"]["training"]["generator"] = {
        "jobs": 1, "arrival_rate_per_hour": 60, "chips": {chips: 1.0}, "models": {"llama3-8b": 1.0},
        "stacks": {"cuda": 1.0}, "samples": {"fixed": samples}}
    base["outputs"] = {"timeseries_interval": 60, "plots": False}
    return base


def test_phase_shares_add_up_and_kernel_and_twin_agree():
    args = _random_kernel_inputs(np.random.default_rng(11))
    twin = step_reference.step_time_s(**args)
    compiled = step_compiled.step_time_s(**args)
    assert len(twin) == len(compiled) == 7
    for a, b in zip(twin[5:], compiled[5:]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-15)
    ok = np.isfinite(twin[0])
    compute, memory = twin[5][ok], twin[6][ok]
    assert ((compute >= 0) & (memory >= 0) & (compute + memory <= 1 + 1e-12)).all()
    assert (compute + memory < 0.9).any() and (memory > 0).any()  # some steps wait, some have memory-bound time
    neck = twin[2][ok]  # the bottleneck's share is the compute (memory) term's where that term bounds the step
    np.testing.assert_allclose(twin[3][ok][neck == 0], compute[neck == 0], rtol=1e-12)
    np.testing.assert_allclose(twin[3][ok][neck == 1], memory[neck == 1], rtol=1e-12)


def test_a_memory_bound_step_draws_less_than_a_compute_bound_one():
    assert 0 < COMMUNICATION < MEMORY < 1 and 0 <= CHECKPOINT < COMMUNICATION
    a = activity_factor(np.array([1.0, 0.2, 0.2, 0.0]), np.array([0.0, 0.8, 0.0, 0.0]), MEMORY, COMMUNICATION)
    assert a.tolist() == pytest.approx([1.0, 0.2 + 0.8 * MEMORY, 0.2 + 0.8 * COMMUNICATION, 1.0])
    assert a[0] > a[1] > a[2]  # compute-bound > memory-bound > waiting on the network; nothing runs: 1


def test_a_memory_bound_job_draws_less_power_than_a_compute_bound_one(base, tmp_path):
    """The same job on a chip whose HBM is 100× slower (memory-bound there) draws a smaller share of its dynamic power,
    and the pool's IT power in a bin where it runs alone is idle + that share of the increment."""
    runs = {}
    for name, scale in (("fast", 1.0), ("slow", 0.01)):
        data = _llm(base, samples=2e8)
        spec = CATALOG.accelerators["h100-sxm"].model_dump(mode="json", exclude_none=True)
        spec.update(id=f"h100-{name}", memory_bandwidth_tbps=spec["memory_bandwidth_tbps"] * scale)
        data["fleet"][0]["accelerator"] = spec
        runs[name] = sim.run(scenario_from(data, tmp_path, f"{name}.yaml"))
    fast, slow = (runs[k].jobs.iloc[0] for k in ("fast", "slow"))
    assert fast["bottleneck"] == "compute" and slow["bottleneck"] == "memory"
    assert slow["activity"] < fast["activity"] <= 1.0
    for key, job in (("fast", fast), ("slow", slow)):
        series = runs[key].timeseries
        pool = build_fleet(runs[key].scenario, scenario_catalog(runs[key].scenario)).pools[0]
        inside = (series["time_s"] >= job["start_s"] + 60) & (series["time_s"] + 60 <= job["end_s"])
        expected = 16 * pool.idle_w_with_server + 8 * (pool.busy_w_with_server - pool.idle_w_with_server) * job[
            "activity"]
        assert series.loc[inside, "it_power_kw"].to_numpy() == pytest.approx(expected / 1e3, rel=1e-9)


def test_checkpoint_saves_show_as_dips_of_the_right_depth_and_duration(base, tmp_path):
    """With failures (none drawn: zero rates) a job saves every ``C`` of run time for ``s``: its power drops by
    busy chips × increment × (activity − checkpoint activity) during each save, and its energy by that × saves."""
    data = _llm(base, samples=4e9)
    data["site"]["checkpoint_storage_gb_per_s"] = 1.0  # a slow store: saves of minutes
    data["failures"] = {"rates_per_1000_chip_days": {c: 0.0 for c in ("gpu", "memory", "network", "host",
                                                                       "software", "maintenance")},
                        "checkpoint_interval": "20min"}
    with_saves = sim.run(scenario_from(data, tmp_path, "c.yaml"))
    del data["failures"]
    without = sim.run(scenario_from(data, tmp_path, "n.yaml"))
    job, plain = with_saves.jobs.iloc[0], without.jobs.iloc[0]
    model = CATALOG.models["llama3-8b"]
    save, interval = model.params * model.train_bytes_per_param / 1e9, 1200.0
    pool = build_fleet(with_saves.scenario, CATALOG).pools[0]
    depth_kw = 8 * (pool.busy_w_with_server - pool.idle_w_with_server) * (job["activity"] - CHECKPOINT) / 1e3
    assert job["end_s"] - job["start_s"] == pytest.approx((plain["end_s"] - plain["start_s"]) * (1 + save / interval))
    series = with_saves.timeseries
    t, kw = series["time_s"].to_numpy(), series["it_power_kw"].to_numpy()
    high = plain_kw = without.timeseries["it_power_kw"].to_numpy()[(t >= plain["start_s"] + 60)
                                                                   & (t + 60 <= plain["end_s"])][0]
    offset = (t - job["start_s"]) % (interval + save)
    computing = (t >= job["start_s"]) & (t + 60 <= job["end_s"]) & (offset + 60 <= interval)
    saving = (t >= job["start_s"]) & (t + 60 <= job["end_s"]) & (offset >= interval) & (offset + 60 <= interval + save)
    assert computing.sum() > 10 and saving.sum() >= 3
    assert kw[computing] == pytest.approx(high, rel=1e-9)
    assert kw[saving] == pytest.approx(high - depth_kw, rel=1e-9)
    # the dips last the save time: the energy below the plain level is depth × total save time
    saves = np.floor((job["end_s"] - job["start_s"]) / (interval + save))
    below_kwh = ((high - kw) * 60 / 3600)[(t >= job["start_s"]) & (t + 60 <= job["end_s"])].sum()
    assert below_kwh == pytest.approx(depth_kw * saves * save / 3600, rel=0.02)
    assert plain_kw == high
    # the job's own energy counts the dips: its (longer) run at full activity less them
    full = with_saves.summary["training_by_accelerator"]["h100-sxm"]["energy_mwh"] * 1e3
    pue = with_saves.summary["pue"]
    run_h = (job["end_s"] - job["start_s"]) / 3600
    busy_kw = 8 * (pool.idle_w_with_server + (pool.busy_w_with_server - pool.idle_w_with_server) * job["activity"])
    assert full == pytest.approx((busy_kw / 1e3 * run_h - depth_kw * saves * save / 3600) * pue, rel=1e-6)


def test_restart_after_a_failure_is_a_dip_as_long_as_restart_and_restore(base, tmp_path):
    """A job interrupted by a failure restarts after the restart delay and the restore: its power stays at the
    checkpoint level that long, then returns to the job's level."""
    data = _llm(base, samples=4e9)
    data["fleet"][0]["count"] = 8
    data["failures"] = {"rates_per_1000_chip_days": {"software": 300.0}, "restart_delay": "10min",
                        "checkpoint_interval": "30min"}
    results = sim.run(scenario_from(data, tmp_path, "r.yaml"))
    job = results.jobs.iloc[0]
    assert job["interruptions"] >= 1
    pool = build_fleet(results.scenario, CATALOG).pools[0]
    series = results.timeseries
    low = (8 * pool.idle_w_with_server + 8 * (pool.busy_w_with_server - pool.idle_w_with_server) * CHECKPOINT) / 1e3
    minutes = int(np.isclose(series["it_power_kw"].to_numpy(), low, rtol=1e-9).sum())
    model = CATALOG.models["llama3-8b"]
    restore_min = model.params * model.train_bytes_per_param / 2000e9 / 60
    assert minutes >= job["interruptions"] * int(10 + restore_min - 1)


def test_a_throttled_jobs_energy_follows_its_clock(base, tmp_path):
    """One job alone under a cap that leaves it 60 % of its busy power: its own energy counts the lower clock (idle
    for longer, dynamic at power_frac(f)), below the same job's unthrottled energy."""
    base["fleet"] = base["fleet"][:1]
    base["workloads"]["training"]["generator"].update(jobs=1, chips={8: 1.0}, stacks={"cuda": 1.0},
                                                      models={"resnet50": 1.0})
    free = sim.run(scenario_from(base, tmp_path, "f.yaml"))
    fleet = build_fleet(free.scenario, CATALOG)
    cap_w = fleet.committed_floor_w + 0.6 * 8 * fleet.busy_increment_facility_w(0)
    capped = dict(base, site={**base["site"], "power_cap_mw": cap_w / 1e6},
                  policy={**base["policy"], "power_cap": {"kind": "throttle"}})
    throttled = sim.run(scenario_from(capped, tmp_path, "t.yaml"))
    energy = {k: r.summary["money"]["cost_per_completed_job_usd"]["h100-sxm"]["mean_energy_usd"]
              for k, r in (("free", free), ("throttled", throttled))}
    assert energy["throttled"] < energy["free"]
    p, job = fleet.pools[0], throttled.jobs.iloc[0]
    hours = (job["end_s"] - job["start_s"]) / 3600
    f = clock_for_power(0.6)
    kwh = 8 * hours * (p.idle_w_with_server + (p.busy_w_with_server - p.idle_w_with_server) * power_frac(f)) / 1e3
    price = CATALOG.site_defaults["electricity_usd_per_kwh"]
    assert energy["throttled"] == pytest.approx(kwh * 1.2 * price, rel=1e-6)


def test_energy_adds_up_devices_servers_and_network(base, tmp_path):
    """IT energy = the accelerators' own + their servers' overhead + the switches'; each part from its own rule:
    switches per online chip, servers a fixed share of the chips', chips idle plus each job's increment × activity;
    facility energy = ∫ IT power × PUE."""
    data = _llm(base, chips=4)
    data["workloads"]["training"]["generator"].update(jobs=3, chips={4: 1.0})
    results = sim.run(scenario_from(data, tmp_path, "e.yaml"))
    summary, jobs = results.summary, results.jobs
    pool = build_fleet(results.scenario, CATALOG).pools[0]
    spec = pool.accelerator
    horizon_h = summary["horizon_s"] / 3600
    run_h = ((np.minimum(jobs["end_s"].fillna(summary["horizon_s"]), summary["horizon_s"]) - jobs["start_s"])
             .fillna(0.0) / 3600).to_numpy()
    chips_kwh = (16 * spec.idle_w * horizon_h
                 + (jobs["chips"].to_numpy() * run_h * (spec.tdp_w - spec.idle_w) * jobs["activity"].fillna(0)).sum()
                 ) / 1e3
    parts = summary["it_energy_by_part_kwh"]
    assert parts["network"] == pytest.approx(16 * pool.network_w_per_chip * horizon_h / 1e3, rel=1e-9)
    assert pool.network_w_per_chip > 0
    assert parts["accelerators"] == pytest.approx(chips_kwh, rel=1e-6)
    assert parts["servers"] == pytest.approx(chips_kwh * pool.server_power_overhead_frac, rel=1e-6)
    assert sum(parts.values()) == pytest.approx(summary["it_energy_kwh"], rel=1e-12)
    series = results.timeseries
    widths = np.diff(np.append(series["time_s"].to_numpy(), summary["horizon_s"]))
    assert summary["facility_energy_kwh"] == pytest.approx(
        (series["it_power_kw"] * summary["pue"] * widths).sum() / 3600, rel=1e-12)
    assert series["network_power_kw"].to_numpy() == pytest.approx(16 * pool.network_w_per_chip / 1e3, rel=1e-12)


def test_saves_a_bin_cannot_resolve_are_spread_over_the_run_at_the_same_energy(base, tmp_path):
    """With hourly bins a 20-minute save period is not resolved: the dips become one constant dip per run (no event
    per save), and the run's IT energy and the job's own energy equal the 1-minute run's."""
    data = _llm(base, samples=4e9)
    data["site"]["checkpoint_storage_gb_per_s"] = 1.0
    data["failures"] = {"rates_per_1000_chip_days": {"gpu": 0.0}, "checkpoint_interval": "20min"}
    fine = sim.run(scenario_from(data, tmp_path, "fine.yaml"))
    data["outputs"]["timeseries_interval"] = 3600
    coarse = sim.run(scenario_from(data, tmp_path, "coarse.yaml"))
    for key in ("it_energy_kwh", "facility_energy_kwh"):
        assert coarse.summary[key] == pytest.approx(fine.summary[key], rel=1e-9)
    energy = [r.summary["training_by_accelerator"]["h100-sxm"]["energy_mwh"] for r in (fine, coarse)]
    assert energy[0] == energy[1]
    job = coarse.jobs.iloc[0]
    series = coarse.timeseries
    inside = (series["time_s"] >= job["start_s"] + 3600) & (series["time_s"] + 3600 <= job["end_s"])
    assert inside.sum() >= 2 and np.ptp(series.loc[inside, "it_power_kw"].to_numpy()) < 1e-9  # one level
    assert coarse.summary["peak_it_power_kw"] > series["it_power_kw"].max()  # the peak between saves


def _dip_at(dips: dict, at: np.ndarray) -> np.ndarray:
    """The dips' IT power change [W] at each time of ``at`` (their events summed up to it)."""
    times = np.concatenate([t for t, _ in dips.values()])
    watts = np.concatenate([w for _, w in dips.values()])
    order = np.argsort(times, kind="stable")
    level = np.concatenate(([0.0], np.cumsum(watts[order])))
    return level[np.searchsorted(times[order], at, side="right")]


def test_dips_follow_the_jobs_clock_per_segment():
    """A job's restart and save dips are its depth × the ``power_frac`` of the clock it runs at, changing where the
    clock changes inside a dip (at a dip's start too); the energy they take off is that depth × ∫ power_frac. Saves
    a bin cannot resolve become one dip over the run at the same clock-weighted energy."""
    from types import SimpleNamespace

    from sim.results.checkpoints import checkpoint_dips

    pools = [SimpleNamespace(busy_w_with_server=1000.0, idle_w_with_server=100.0)]
    outcome = {"segments": {"job": np.array([0]), "pool": np.array([0]), "start_s": np.array([0.0]),
                            "end_s": np.array([1500.0])},  # preempted at 1500 s, restarted at 2000 s
               "run_start_s": np.array([2000.0]), "pool": np.array([0]), "end_s": np.array([7000.0])}
    failures = {"save_s": np.array([100.0]), "interval_s": np.array([[900.0]]), "restart_s": 200.0}
    clocks = {"time_s": np.array([950.0, 1500.0, 2100.0, 4250.0, 5200.0]), "job": np.zeros(5, dtype=np.int64),
              "power_frac": np.array([0.5, 1.0, 0.25, 1.0, 0.5])}
    args = (outcome, failures, np.array([8.0]), np.array([[0.8]]), pools, 0.1, 8000.0)
    depth = 8 * 900 * (0.8 - 0.1)
    # (start, end, power_frac) of each dip segment: the first run's save, the restart + restore, four saves
    expected = [(900, 950, 1.0), (950, 1000, 0.5), (2000, 2100, 1.0), (2100, 2300, 0.25), (3200, 3300, 0.25),
                (4200, 4250, 0.25), (4250, 4300, 1.0), (5200, 5300, 0.5), (6200, 6300, 0.5)]
    grid = np.arange(0.5, 8000.0, 1.0)
    want = np.zeros(len(grid))
    for a, b, frac in expected:
        want[(grid > a) & (grid < b)] = -depth * frac
    dips = checkpoint_dips(*args, 60.0, clocks)
    assert not dips["averaged"]
    assert _dip_at(dips["resolved"], grid) == pytest.approx(want, abs=1e-9)
    assert dips["job_it_j"][0] == pytest.approx(-depth * sum((b - a) * f for a, b, f in expected), rel=1e-12)
    full = checkpoint_dips(*args, 60.0)  # without clock changes: full depth throughout
    assert full["job_it_j"][0] == pytest.approx(-depth * sum(b - a for a, b, _ in expected), rel=1e-12)
    # hourly bins: the saves become one dip per run (saved time / run time of the depth), scaled by the clock
    coarse = checkpoint_dips(*args, 3600.0, clocks)
    first, second = depth * 100 / 1500, depth * 400 / 4700
    assert _dip_at(coarse["averaged"], np.array([100.0, 1200.0, 3000.0, 4500.0, 6000.0])) == pytest.approx(
        [-first, -first * 0.5, -second * 0.25, -second, -second * 0.5], rel=1e-12)
    assert coarse["job_it_j"][0] == pytest.approx(
        -(first * (950 + 550 * 0.5) + depth * (100 + 200 * 0.25) + second * (1950 * 0.25 + 950 + 1800 * 0.5)),
        rel=1e-12)


def throttled_with_failures(data: dict, tmp_path):
    """``data`` with software failures (restarts of 10 min, checkpoints every 20 min) under a throttling site cap
    that holds the 8-chip job at 60 % of its full-load increment; returns (results, fleet)."""
    data["failures"] = {"rates_per_1000_chip_days": {"software": 300.0}, "restart_delay": "10min",
                        "checkpoint_interval": "20min"}
    fleet = build_fleet(scenario_from(data, tmp_path, "f.yaml"), CATALOG)
    data["site"]["power_cap_mw"] = (fleet.committed_floor_w + 0.6 * 8 * fleet.busy_increment_facility_w(0)) / 1e6
    data["policy"]["power_cap"] = {"kind": "throttle"}
    return sim.run(scenario_from(data, tmp_path, "t.yaml")), fleet


def test_a_throttled_job_with_failures_counts_its_work_once_as_useful(base, tmp_path):
    """Under a throttling cap, a preempted run's useful chip-time is the work it kept at its slower clock, not its
    wall time (it counted the periods' wall seconds before, overstating the work): a completed job's useful
    chip-time over all its runs is its whole work once, the run time alone at full clock × its chips."""
    data = _llm(base, samples=4e9)
    data["site"]["checkpoint_storage_gb_per_s"] = 1.0
    alone = sim.run(scenario_from(data, tmp_path, "alone.yaml")).jobs.iloc[0]
    work = (alone["end_s"] - alone["start_s"]) * alone["chips"]  # full clock, no failure, no cap [chip-s]
    results, _ = throttled_with_failures(data, tmp_path)
    job = results.jobs.iloc[0]
    assert job["state"] == "completed" and job["interruptions"] >= 2
    assert (results.capping["action"] == "throttle").any()
    assert job["useful_chip_s"] == pytest.approx(work, rel=1e-9)
    assert job["useful_chip_s"] < job["held_chip_s"]


def test_a_throttled_jobs_dips_stay_above_the_idle_floor(base, tmp_path):
    """Under a throttling cap with failures, a job's saves and restarts draw ``checkpoint_activity`` of its throttled
    dynamic power: no bin of the pool's IT power falls below its idle floor, the dips bottom out at the throttled
    checkpoint level (the throttled power × (a − checkpoint activity) / a below the job's level), and the job's own
    energy still adds up to the pool's."""
    data = _llm(base, samples=4e9)
    data["site"]["checkpoint_storage_gb_per_s"] = 1.0  # saves of minutes
    results, fleet = throttled_with_failures(data, tmp_path)
    job, pool = results.jobs.iloc[0], fleet.pools[0]
    assert job["state"] == "completed" and job["interruptions"] >= 1
    clock = results.capping.loc[results.capping["action"] == "throttle", "clock_frac"].unique()
    assert len(clock) == 1 and clock[0] < 0.9  # one clock, every run of the job throttled to it
    frac, increment = power_frac(float(clock[0])), pool.busy_w_with_server - pool.idle_w_with_server
    floor = 16 * pool.idle_w_with_server / 1e3
    stepping = floor + 8 * increment * job["activity"] * frac / 1e3
    saving = floor + 8 * increment * CHECKPOINT * frac / 1e3
    kw = results.timeseries["it_power_kw.gpu"].to_numpy()
    assert kw.min() >= floor * (1 - 1e-12)
    t = results.timeseries["time_s"].to_numpy()
    running = (t >= job["start_s"]) & (t + 60 <= job["end_s"])
    assert ((kw[running] >= saving * (1 - 1e-9)) & (kw[running] <= stepping * (1 + 1e-9))).all()
    assert np.isclose(kw, saving, rtol=1e-9).sum() >= 10 * job["interruptions"] + 3  # restarts and whole saves
    assert np.isclose(kw, stepping, rtol=1e-9).sum() > 100
    # the job's own energy (its chips idle over its runs + its increment, throttled and dipped) is the pool's less
    # the idle chips' and its chips' idle outside its runs
    summary = results.summary
    horizon_h, run_h = summary["horizon_s"] / 3600, (job["end_s"] - job["start_s"]) / 3600
    pool_kwh = (kw * 60).sum() / 3600
    job_kwh = summary["training_by_accelerator"]["h100-sxm"]["energy_mwh"] * 1e3 / summary["pue"]
    assert job_kwh == pytest.approx(pool_kwh - floor * horizon_h + 8 * pool.idle_w_with_server / 1e3 * run_h, rel=1e-9)
