"""Engine behaviour: accounting, capacity, exact single-job time, determinism, policies, power cap."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim
from sim.catalog import builtin_catalog
from sim.engine.prepare import prepare_jobs
from sim.fleet import build_fleet
from sim.workload import training_jobs
from tests.conftest import scenario_from

STATES = ("completed", "running", "queued", "rejected")


def assert_accounted(results) -> None:
    jobs = results.summary["jobs"]
    assert sum(jobs[s] for s in STATES) == jobs["submitted"]
    assert jobs["submitted"] + jobs["beyond_horizon"] == jobs["in_input"] == len(results.jobs)
    assert set(results.jobs["state"]) <= set(STATES) | {"beyond-horizon"}
    rejected = results.jobs[results.jobs["state"] == "rejected"]
    assert (rejected["reason"] != "").all()


def max_allocated_by_pool(jobs) -> dict[str, float]:
    """Peak chips held at once per pool, from the jobs table (a sweep over start/end events)."""
    started = jobs[~jobs["start_s"].isna()]
    peaks = {}
    for pool, group in started.groupby("pool"):
        whole = group["chip_share"] >= 1
        weight = np.where(whole, group["chips"], group["chip_share"])
        ends = group["end_s"].fillna(np.inf).to_numpy()
        times = np.concatenate((group["start_s"].to_numpy(), ends))
        delta = np.concatenate((weight, -weight))
        order = np.lexsort((delta, times))  # at equal times, releases (negative) first
        peaks[pool] = float(np.cumsum(delta[order]).max())
    return peaks


def test_every_job_accounted_for(base, tmp_path):
    results = sim.run(scenario_from(base, tmp_path))
    assert_accounted(results)
    assert results.summary["jobs"]["completed"] > 0


def test_same_seed_gives_identical_outputs(base, tmp_path):
    scenario = scenario_from(base, tmp_path)
    a = sim.run(scenario).save(tmp_path / "a", plots=False)
    b = sim.run(scenario).save(tmp_path / "b", plots=False)
    for name in ("summary.json", "jobs.csv", "timeseries.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    other = sim.run(scenario.with_overrides({"seed": 2})).summary
    assert other != sim.run(scenario).summary


def test_single_job_on_idle_fleet_takes_the_kernel_time(base, tmp_path):
    gen = base["workloads"]["training"]["generator"]
    gen.update(jobs=1, chips={8: 1.0}, models={"bert-large": 1.0}, stacks={"cuda": 1.0})
    del gen["duration_s"], gen["reference_accelerator"]
    gen["samples"] = {"fixed": 2e11}
    scenario = scenario_from(base, tmp_path)
    results = sim.run(scenario)
    job = results.jobs.iloc[0]
    assert job["state"] == "completed" and job["pool"] == "gpu"
    # the kernel's own prediction, and the roofline by hand: compute-bound on 8 H100 at cuda efficiency
    catalog = builtin_catalog()
    fleet = build_fleet(scenario, catalog)
    predicted = prepare_jobs(training_jobs(scenario, tmp_path), fleet, catalog).duration_s[0, 0]
    assert job["end_s"] - job["start_s"] == predicted
    model, h100 = catalog.models["bert-large"], catalog.accelerators["h100-sxm"]
    by_hand = 2e11 * model.train_flop_per_sample / (8 * h100.peak_flops * h100.stacks["cuda"])
    assert predicted == pytest.approx(by_hand, rel=1e-9)
    assert job["start_s"] == job["arrival_s"]


def test_job_larger_than_every_pool_is_rejected_with_reason(base, tmp_path):
    base["workloads"]["training"]["generator"].update(jobs=5, chips={64: 1.0}, stacks={"portable": 1.0})
    results = sim.run(scenario_from(base, tmp_path))
    assert (results.jobs["state"] == "rejected").all()
    assert results.jobs["reason"].str.contains("gpu: gang-larger-than-pool, tpu: gang-larger-than-pool").all()
    assert_accounted(results)


def test_stack_decides_where_a_job_may_run(base, tmp_path):
    base["workloads"]["training"]["generator"].update(stacks={"cuda": 0.5, "xla": 0.5})
    jobs = sim.run(scenario_from(base, tmp_path)).jobs
    placed = jobs[jobs["pool"] != ""]
    assert (placed.loc[placed["stack"] == "cuda", "pool"] == "gpu").all()
    assert (placed.loc[placed["stack"] == "xla", "pool"] == "tpu").all()


def test_porting_grants_a_foreign_stack(base, tmp_path):
    base["fleet"] = [base["fleet"][1]]
    base["workloads"]["training"]["generator"].update(stacks={"cuda": 1.0})
    assert (sim.run(scenario_from(base, tmp_path)).jobs["state"] == "rejected").all()
    base["porting"] = [{"from_stack": "cuda", "accelerator": "tpu-v6e", "efficiency_frac": 0.5}]
    assert sim.run(scenario_from(base, tmp_path, "ported.yaml")).summary["jobs"]["completed"] > 0


def test_pool_offline_until_its_date(base, tmp_path):
    base["fleet"][1]["online_from"] = "2026-01-02"
    base["workloads"]["training"]["generator"].update(stacks={"xla": 1.0})
    jobs = sim.run(scenario_from(base, tmp_path)).jobs
    assert (jobs.loc[jobs["pool"] == "tpu", "start_s"] >= 86400).all()
    assert (jobs["pool"] == "tpu").any()


def test_power_cap_is_never_exceeded(base, tmp_path):
    base["workloads"]["training"]["generator"].update(jobs=200, arrival_rate_per_hour=30)
    uncapped = sim.run(scenario_from(base, tmp_path))
    peak_kw = uncapped.summary["peak_facility_power_kw"]
    cap_mw = 0.6 * peak_kw / 1e3
    capped = sim.run(scenario_from(base, tmp_path).with_overrides({"site.power_cap_mw": cap_mw}))
    assert capped.timeseries["facility_power_kw"].max() <= cap_mw * 1e3 * (1 + 1e-9)
    assert capped.summary["queue_wait_s"]["mean"] > uncapped.summary["queue_wait_s"]["mean"]
    assert_accounted(capped)


def test_fifo_blocks_behind_the_head_and_backfill_does_not(base, tmp_path):
    gen = base["workloads"]["training"]["generator"]
    gen.update(jobs=300, arrival_rate_per_hour=40, chips={1: 0.7, 16: 0.3}, stacks={"cuda": 1.0})
    fifo = sim.run(scenario_from(base, tmp_path).with_overrides({"policy.scheduler.kind": "fifo"}))
    backfill = sim.run(scenario_from(base, tmp_path))
    assert backfill.summary["queue_wait_s"]["p50"] <= fifo.summary["queue_wait_s"]["p50"]
    started = fifo.jobs.dropna(subset=["start_s"]).sort_values("arrival_s")
    assert started["start_s"].is_monotonic_increasing  # fifo starts jobs in arrival order


def test_hetero_aware_prefers_the_faster_pool(base, tmp_path):
    base["workloads"]["training"]["generator"].update(
        jobs=3, arrival_rate_per_hour=0.1, chips={1: 1.0}, stacks={"portable": 1.0})
    base["fleet"][0]["accelerator"] = "v100-16gb"
    base["policy"]["scheduler"] = {"kind": "hetero-aware", "objective": "earliest-finish"}
    jobs = sim.run(scenario_from(base, tmp_path)).jobs
    assert (jobs["pool"] == "tpu").all()  # TPU v6e is far faster than V100 for these models
    base["policy"]["scheduler"] = {"kind": "fifo"}
    assert (sim.run(scenario_from(base, tmp_path, "f.yaml")).jobs["pool"] == "gpu").all()  # fleet order


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), rate=st.floats(1, 60), kind=st.sampled_from(["fifo", "fifo-backfill", "hetero-aware"]),
       big=st.floats(0, 0.5))
def test_allocated_never_exceeds_capacity(base, tmp_path, seed, rate, kind, big):
    gen = base["workloads"]["training"]["generator"]
    gen.update(jobs=150, arrival_rate_per_hour=rate, chips={1: 1 - big, 8: big / 2, 16: big / 2})
    base.update(seed=seed)
    base["policy"]["scheduler"] = {"kind": kind}
    results = sim.run(scenario_from(base, tmp_path))
    capacity = {"gpu": 16, "tpu": 16}
    for pool, peak in max_allocated_by_pool(results.jobs).items():
        assert peak <= capacity[pool]
    assert_accounted(results)
    assert (results.timeseries["queue_length"] >= 0).all()
    busy = [c for c in results.timeseries.columns if c.startswith("utilization.")]
    assert (results.timeseries[busy] <= 1 + 1e-9).all().all()


def test_energy_is_power_integrated_over_time(base, tmp_path):
    results = sim.run(scenario_from(base, tmp_path))
    ts = results.timeseries
    widths = np.diff(np.append(ts["time_s"].to_numpy(), results.summary["horizon_s"]))
    assert results.summary["it_energy_kwh"] == pytest.approx((ts["it_power_kw"] * widths).sum() / 3600)
    assert results.summary["facility_energy_kwh"] == pytest.approx(results.summary["it_energy_kwh"] * 1.2)
    # idle floor: every online chip draws at least its idle power
    fleet = build_fleet(results.scenario, builtin_catalog())
    idle_kw = sum(p.count * p.idle_w_with_server for p in fleet.pools) / 1e3
    assert (ts["it_power_kw"] >= idle_kw - 1e-9).all()


def test_run_writes_nothing_until_saved(base, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scenario = scenario_from(base, tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    results = sim.run(scenario)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    out = results.save(tmp_path / "out")
    for name in ("summary.json", "jobs.csv", "timeseries.csv", "manifest.json",
                 "utilization.png", "queue.png", "jct.png", "power.png"):
        assert (out / name).stat().st_size > 0, name
