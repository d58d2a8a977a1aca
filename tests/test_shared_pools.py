"""Shared pools: inference autoscales on chips that training uses in between, and preempts it.

Oracles by hand on a hand-made reservation schedule (the cluster alone), the autoscaler on synthetic
load, and an end-to-end run on a written request trace whose burst time is known."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

import sim
from sim.catalog import builtin_catalog
from sim.fleet import build_fleet
from sim.serving import autoscale
from sim.training.prepare import prepare_jobs
from sim.training.simulate import simulate_training
from sim.workload import training_jobs
from tests.conftest import BASE, scenario_from

HOUR = 3600.0
STATES = ("completed", "running", "queued", "rejected")


def shared_scenario(gpu_chips: int = 16, jobs: int = 2, chips: int = 8, count: int = 2, traffic=None) -> dict:
    """An H100 pool shared with a Llama 3 70B group (8 chips a replica, one held, up to ``count``); CUDA
    training jobs of ``chips`` chips that run 10 h on an H100 (so only the H100 pool takes them)."""
    data = copy.deepcopy(BASE)
    data["fleet"][0].update(count=gpu_chips, sharing="shared")
    data["workloads"]["training"]["generator"].update(
        jobs=jobs, chips={chips: 1.0}, models={"bert-large": 1.0}, stacks={"cuda": 1.0},
        duration_s={"fixed": 36000.0})
    data["workloads"]["inference"] = [{
        "name": "chat", "model": "llama3-70b",
        "replicas": [{"pool": "gpu", "count": count, "chips_per_replica": 8,
                      "autoscale": {"min_count": 1, "interval": "5min", "target_utilization_frac": 0.7}}],
        "traffic": traffic or {"generator": {"rate_per_s": 0.01, "prompt_tokens": {"fixed": 2000},
                                             "output_tokens": {"fixed": 500}}}}]
    return data


def run_cluster(scenario, arrivals, schedule, checkpoint_s=HOUR, horizon_s=2 * 86400.0, chips=None):
    """The cluster alone on ``scenario``'s fleet and jobs, with arrivals and a reservation schedule by hand."""
    catalog = builtin_catalog()
    fleet = build_fleet(scenario, catalog)
    jobs = training_jobs(scenario, None)
    if chips is not None:
        jobs["chips"] = chips
    prepared = prepare_jobs(jobs, fleet, catalog, scenario.porting)
    prepared.arrival_s = np.asarray(arrivals, dtype=np.float64)
    cluster = simulate_training(fleet, prepared, horizon_s, scenario.policy.scheduler,
                                scaling_schedule=schedule, checkpoint_interval_s=checkpoint_s)
    return cluster.outcome()


def test_scale_up_preempts_and_the_job_restarts_from_its_checkpoint_when_inference_scales_down(tmp_path):
    scenario = scenario_from(shared_scenario(), tmp_path)
    # one replica is held all run (domain 1); the second domain is lent until 2.5 h, back at 4 h
    out = run_cluster(scenario, [0.0, 3 * HOUR], [(2.5 * HOUR, 0, 0, 8, +1), (4 * HOUR, 0, 0, 8, -1)])
    seg = out["segments"]
    assert seg["job"].tolist() == [0] and seg["start_s"].tolist() == [0.0] and seg["end_s"].tolist() == [2.5 * HOUR]
    # checkpoints at 1 h and 2 h: 0.5 h of 8 chips is lost, 8 h of the 10 h are left
    assert seg["lost_chip_s"].tolist() == [0.5 * HOUR * 8]
    assert out["run_start_s"][0] == 4 * HOUR  # the waiting job starts the instant the chips come back
    assert out["end_s"][0] == 4 * HOUR + 8 * HOUR
    assert out["start_s"][0] == 0.0  # the first start is kept
    # job 1 arrived while inference held both domains; the older, preempted job went first
    assert out["start_s"][1] == 12 * HOUR and out["end_s"][1] == 22 * HOUR
    assert out["state"].tolist() == ["completed", "completed"]
    assert not out["deferred"].any()  # the scale-up needed a preemption: it took no free chips


def test_most_recently_started_job_is_preempted_first(tmp_path):
    scenario = scenario_from(shared_scenario(gpu_chips=24, count=3), tmp_path)
    out = run_cluster(scenario, [0.0, HOUR], [(2.5 * HOUR, 0, 0, 8, +1)])
    seg = out["segments"]
    assert seg["job"].tolist() == [1]  # started at 1 h, after job 0
    assert seg["lost_chip_s"].tolist() == [0.5 * HOUR * 8]  # ran 1.5 h, checkpoint at 1 h
    assert out["end_s"][0] == 10 * HOUR  # job 0 untouched
    assert out["run_start_s"][1] == 10 * HOUR and out["end_s"][1] == 10 * HOUR + 9 * HOUR


def test_scale_up_into_free_chips_defers_the_jobs_waiting_for_that_pool(tmp_path):
    scenario = scenario_from(shared_scenario(gpu_chips=24, count=3), tmp_path)
    # job 0 (8 chips) runs; job 1 (16 chips, two whole domains) waits: one domain is free, one held
    out = run_cluster(scenario, [0.0, 0.5 * HOUR], [(HOUR, 0, 0, 8, +1), (5 * HOUR, 0, 0, 8, -1)],
                      chips=[8, 16])
    assert len(out["segments"]["job"]) == 0
    assert out["deferred"].tolist() == [False, True]
    assert out["start_s"][1] == 10 * HOUR  # needs both lent domains: job 0's and the replica's


def test_autoscaler_follows_a_step_in_load_one_interval_late():
    interval, per_request_s = 300.0, 1.0
    # 100 requests per interval (≈ 0.48 replicas at 0.7), then 500 from interval 6 on (≈ 2.4 → 3)
    arrivals = np.concatenate([k * interval + np.linspace(0, interval, n, endpoint=False)
                               for k, n in enumerate([100] * 6 + [500] * 6)])
    counts = autoscale.active_counts(arrivals, np.full(len(arrivals), per_request_s), 12 * interval, interval,
                                     min_count=1, max_count=4, target_utilization_frac=0.7)
    assert counts.tolist() == [1] * 7 + [3] * 5
    capped = autoscale.active_counts(arrivals, np.full(len(arrivals), 10.0), 12 * interval, interval, 1, 4, 0.7)
    assert capped.max() == 4 and capped[0] == 1
    switches = autoscale.switches_from_counts(np.array([2, 2, 4, 1]), interval)
    assert switches.switch_s.tolist() == [0, 0, 600, 600, 900, 900, 900]
    assert switches.switch_replica.tolist() == [0, 1, 2, 3, 3, 2, 1]
    assert switches.switch_on.tolist() == [True, True, True, True, False, False, False]
    assert switches.replica_seconds(0.0, 1200.0) == 2 * 600 + 4 * 300 + 1 * 300


def write_trace(path, burst_from_s: float, burst_to_s: float, per_interval: int) -> None:
    """An Azure-format trace: one request a minute, and ``per_interval`` per 5 min inside the burst."""
    quiet = np.arange(0.0, 6 * HOUR, 60.0)
    burst = np.arange(burst_from_s, burst_to_s, 300.0 / per_interval)
    seconds = np.sort(np.concatenate((quiet, burst)))
    stamps = pd.Timestamp("2023-11-16 00:00:00") + pd.to_timedelta(seconds, unit="s")
    pd.DataFrame({"TIMESTAMP": stamps.strftime("%Y-%m-%d %H:%M:%S.%f") + "0", "ContextTokens": 2000,
                  "GeneratedTokens": 500}).to_csv(path, index=False)


@pytest.fixture
def burst_run(tmp_path):
    write_trace(tmp_path / "burst.csv", 2 * HOUR + 60, 3 * HOUR, per_interval=2500)
    data = shared_scenario(jobs=1, traffic={"trace": {"format": "azure-llm-2023", "path": "burst.csv"}})
    data["workloads"]["training"]["generator"]["arrival_rate_per_hour"] = 100.0
    data["duration"] = "1d"
    scenario = scenario_from(data, tmp_path)
    return scenario, sim.run(scenario)


def test_end_to_end_preemption_at_the_scale_up_and_completion_by_hand(burst_run):
    scenario, results = burst_run
    # the burst starts at 2 h 1 min: the autoscaler sees it in [2 h, 2 h 5 min) and acts at 2 h 5 min;
    # it ends at 3 h, so the last busy interval is [2 h 55, 3 h) and the replica goes at 3 h 5 min
    up, down = 2 * HOUR + 300, 3 * HOUR + 300
    job = results.jobs.iloc[0]
    assert job["preemptions"] == 1 and job["state"] == "completed"
    saved = np.floor((up - job["start_s"]) / HOUR) * HOUR
    assert job["lost_chip_s"] == pytest.approx((up - job["start_s"] - saved) * 8, rel=1e-12)
    assert job["end_s"] == pytest.approx(down + 36000.0 - saved, rel=1e-12)
    training = results.summary["training"]
    assert training == {"preempted_jobs": 1, "preemptions": 1, "lost_chip_hours": pytest.approx(
        job["lost_chip_s"] / 3600), "deferred_jobs": 0}
    # the replica series: 8 chips, 16 during the burst; lent = 16 chips × 1 d − active
    chat = results.summary["inference"]["chat"]
    assert chat["replica_hours"] == pytest.approx(24 + 1.0)
    pool = results.summary["shared_pools"]["gpu"]
    assert pool["inference_chip_hours"] == pytest.approx(8 * 25.0)
    assert pool["chip_hours_lent_to_training"] == pytest.approx(16 * 24 - 8 * 25.0)
    assert (results.timeseries["utilization.h100-sxm"] <= 1 + 1e-9).all()  # training + active replicas
    series = results.timeseries.set_index("time_s")["inference_chips.gpu"]
    assert series[HOUR] == 8 and series[2 * HOUR] == pytest.approx(8 + 8 * 55 / 60) and series[4 * HOUR] == 8
    jobs = results.summary["jobs"]
    assert sum(jobs[s] for s in STATES) == jobs["submitted"]


def test_shared_runs_are_deterministic(burst_run, tmp_path):
    scenario, results = burst_run
    again = sim.run(scenario)
    assert again.summary == results.summary
    pd.testing.assert_frame_equal(again.jobs, results.jobs)
    pd.testing.assert_frame_equal(again.timeseries, results.timeseries)


def test_sharing_without_autoscale_changes_nothing_for_training(tmp_path):
    dedicated = copy.deepcopy(BASE)
    dedicated["workloads"]["inference"] = [{
        "name": "chat", "model": "llama3-8b", "replicas": [{"pool": "gpu", "count": 1, "chips_per_replica": 8}],
        "traffic": {"generator": {"rate_per_s": 1.0, "prompt_tokens": {"fixed": 500},
                                  "output_tokens": {"fixed": 100}}}}]
    shared = copy.deepcopy(dedicated)
    shared["fleet"][0]["sharing"] = "shared"
    a = sim.run(scenario_from(dedicated, tmp_path, "a.yaml"))
    b = sim.run(scenario_from(shared, tmp_path, "b.yaml"))
    pd.testing.assert_frame_equal(a.jobs, b.jobs)
    assert b.summary["training"] == {"preempted_jobs": 0, "preemptions": 0, "lost_chip_hours": 0.0,
                                     "deferred_jobs": 0}
    assert b.summary["shared_pools"]["gpu"]["chip_hours_lent_to_training"] == 0.0
    same = {k: v for k, v in b.summary.items() if k not in ("training", "shared_pools")}
    same["inference"]["chat"].pop("replica_hours")
    assert same == a.summary


@pytest.mark.parametrize("change, expected", [
    ({"min_count": 3}, "autoscale.min_count: found 3: more than the group's count 2"),
    ({"interval": 0}, "autoscale.interval"),
    ({"target_utilization_frac": 1.5}, "autoscale.target_utilization_frac"),
])
def test_autoscale_mistakes_are_reported_with_file_and_line(tmp_path, change, expected):
    data = shared_scenario()
    data["workloads"]["inference"][0]["replicas"][0]["autoscale"].update(change)
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(data, tmp_path)
    assert "s.yaml:" in str(info.value) and expected in str(info.value)


def test_autoscale_on_a_dedicated_pool_is_refused(tmp_path):
    data = shared_scenario()
    data["fleet"][0]["sharing"] = "dedicated"
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(data, tmp_path)
    text = str(info.value)
    assert "s.yaml:" in text and "workloads.inference[0].replicas[0].autoscale: pool 'gpu' is dedicated" in text


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_scaling_conserves_work_and_never_overfills_the_pool(tmp_path, seed):
    """Random scale-ups and -downs over a busy shared pool: every completed job did exactly its work
    (checkpointed progress of its preempted runs + its last run), lost work is what ran past the last
    checkpoint, and training + active replicas never hold more chips than the pool has."""
    rng = np.random.default_rng(seed)
    data = shared_scenario(gpu_chips=32, jobs=40, count=4)
    data["workloads"]["training"]["generator"].update(chips={1: 0.3, 2: 0.3, 4: 0.2, 8: 0.2},
                                                      duration_s={"lognormal": {"median": 3 * HOUR, "sigma": 0.7}})
    data["policy"] = {"scheduler": {"kind": ["fifo", "fifo-backfill", "hetero-aware"][seed % 3]}}
    scenario = scenario_from(data, tmp_path)
    arrivals = np.sort(rng.uniform(0, 10 * HOUR, 40))
    active, schedule = 0, []  # replicas beyond the held one: 0..3
    for t in np.sort(rng.uniform(0, 20 * HOUR, 12)).round(0):
        target = int(rng.integers(0, 4))
        if target != active:
            schedule.append((float(t), 0, 0, 8, target - active))
            active = target
    checkpoint = 1800.0
    out = run_cluster(scenario, arrivals, schedule, checkpoint_s=checkpoint, horizon_s=3 * 86400.0)
    catalog = builtin_catalog()
    fleet = build_fleet(scenario, catalog)
    jobs = training_jobs(scenario, None)
    duration = prepare_jobs(jobs, fleet, catalog).duration_s
    chips = jobs["chips"].to_numpy()
    seg = out["segments"]
    assert len(seg["job"]) > 0, "the schedule should preempt something"
    ran_s = seg["end_s"] - seg["start_s"]
    saved = np.floor(ran_s / checkpoint) * checkpoint
    assert np.allclose(seg["lost_chip_s"], (ran_s - saved) * chips[seg["job"]])
    for job in np.flatnonzero(out["state"] == "completed"):
        mine = seg["job"] == job
        done = (saved[mine] / duration[job, seg["pool"][mine]]).sum()
        last = (out["end_s"][job] - out["run_start_s"][job]) / duration[job, out["pool"][job]]
        assert done + last == pytest.approx(1.0, rel=1e-9)
    # chips held over time on the GPU pool: training runs (preempted and current) + replicas
    on_gpu = (out["pool"] == 0) & ~np.isnan(out["run_start_s"])
    starts = np.concatenate((out["run_start_s"][on_gpu], seg["start_s"][seg["pool"] == 0]))
    ends = np.concatenate((out["end_s"][on_gpu], seg["end_s"][seg["pool"] == 0]))
    held = np.concatenate((chips[on_gpu], chips[seg["job"][seg["pool"] == 0]]))
    times = np.concatenate((starts, ends, [t for t, *_ in schedule]))
    deltas = np.concatenate((held, -held, [8 * d for *_, d in schedule]))
    order = np.lexsort((deltas, times))  # at one instant, releases first
    assert 8 + np.cumsum(deltas[order]).max() <= 32
    assert set(out["state"]) <= {"completed", "running", "queued"}
