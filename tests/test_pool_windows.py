"""Pools that leave (``fleet[].online_until``): retirement of owned pools, end of rental contracts."""

from __future__ import annotations

import math

import numpy as np
import pytest

import sim
from sim.catalog import builtin_catalog
from sim.fleet import build_fleet
from tests.conftest import scenario_from
from tests.test_engine import assert_accounted
from tests.test_inference import with_service

DAY = 86400.0


def leaving(base: dict, jobs: int = 200, rate: float = 10.0, **tpu) -> dict:
    """The base fleet with the TPU pool leaving after one day of the two-day run."""
    base["fleet"][1].update(online_until="2026-01-02", **tpu)
    base["workloads"]["training"]["generator"].update(jobs=jobs, arrival_rate_per_hour=rate)
    return base


@pytest.mark.parametrize("kind", ["fifo", "fifo-backfill", "hetero-aware"])
def test_no_job_runs_on_a_pool_after_it_leaves(base, tmp_path, kind):
    base = leaving(base)
    base["policy"]["scheduler"] = {"kind": kind}
    results = sim.run(scenario_from(base, tmp_path))
    jobs = results.jobs
    on_tpu = jobs[jobs["pool"] == "tpu"]
    assert (on_tpu["start_s"].dropna() < DAY).all()
    assert (on_tpu["end_s"].dropna() <= DAY).all()  # a current run there ended by the leave
    assert not ((jobs["state"] == "running") & (jobs["pool"] == "tpu")).any()
    assert ((on_tpu["state"] == "completed") | (on_tpu["preemptions"] > 0)).all()
    assert (jobs.loc[jobs["state"] == "completed", "end_s"] <= results.summary["horizon_s"]).all()
    assert_accounted(results)
    series = results.timeseries
    after = series["time_s"].to_numpy() >= DAY
    assert after.any() and (series.loc[after, "busy_chips.tpu-v6e"] == 0).all()


def test_a_pool_leaving_at_the_end_of_the_run_changes_nothing(base, tmp_path):
    base["workloads"]["training"]["generator"].update(
        jobs=200, arrival_rate_per_hour=10, duration_s={"lognormal": {"median": 6 * 3600, "sigma": 0.5}})
    stays = sim.run(scenario_from(base, tmp_path))
    base["fleet"][1]["online_until"] = "2026-01-03"  # the end of the two-day run
    leaves = sim.run(scenario_from(base, tmp_path, "ends.yaml"))
    assert leaves.summary == stays.summary  # no preemption at the horizon: running jobs stay running
    assert stays.summary["jobs"]["running"] > 0


def test_running_jobs_are_preempted_with_checkpoints_and_requeued(base, tmp_path):
    base = leaving(base, jobs=120, rate=30)
    base["workloads"]["training"]["generator"]["duration_s"] = {"lognormal": {"median": 6 * 3600, "sigma": 0.5}}
    results = sim.run(scenario_from(base, tmp_path))
    preempted = results.jobs[results.jobs["preemptions"] > 0]
    assert len(preempted) > 0 and results.summary["training"]["preempted_jobs"] == len(preempted)
    assert (preempted["lost_chip_s"] < 3600 * preempted["chips"] + 1e-6).all()  # at most one checkpoint interval
    # portable jobs preempted on the TPU may run again on the GPU pool; none is lost
    line = next(x for x in results.table().splitlines() if x.startswith("preempted"))  # no shared pool needed
    assert f"preemptions {results.summary['training']['preemptions']}" in line and "lent" not in line
    assert set(preempted["state"]) <= {"completed", "running", "queued", "rejected"}
    assert_accounted(results)


def test_jobs_whose_pools_have_all_left_are_rejected_with_a_reason(base, tmp_path):
    base = leaving(base, jobs=150, rate=5)
    base["workloads"]["training"]["generator"]["stacks"] = {"xla": 0.5, "cuda": 0.5}  # xla runs on the TPU only
    base["policy"]["scheduler"] = {"kind": "fifo"}  # a stranded head must not block the queue forever
    results = sim.run(scenario_from(base, tmp_path))
    jobs = results.jobs
    xla = jobs[jobs["software_stack"] == "xla"]
    late = xla[xla["arrival_s"] >= DAY]
    assert len(late) > 0 and (late["state"] == "rejected").all()
    assert (late["reason"] == "every pool it may use has left (online_until)").all()
    assert results.summary["jobs"]["rejected_by_reason"]["every pool it may use has left"] == \
        int((jobs["state"] == "rejected").sum())
    assert not (xla["state"] == "queued").any()
    assert_accounted(results)
    cuda = jobs[jobs["software_stack"] == "cuda"]
    assert (cuda.loc[cuda["arrival_s"] >= DAY, "state"] == "completed").any()  # the FIFO queue moved on


def test_a_rented_pool_costs_only_its_contract_hours(base, tmp_path):
    base["duration"] = "3d"
    base["fleet"][0].update(owner="rented", rental_usd_per_chip_hour=3.0)
    base["fleet"][1].update(owner="rented", rental_usd_per_chip_hour=2.5,
                            online_from="2026-01-02", online_until="2026-01-03")
    results = sim.run(scenario_from(base, tmp_path))
    assert results.summary["fleet_cost_usd"] == pytest.approx(16 * 72 * 3.0 + 16 * 24 * 2.5, rel=1e-12)
    on_tpu = results.jobs[results.jobs["pool"] == "tpu"]
    assert len(on_tpu) > 0 and (on_tpu["start_s"] >= DAY).all() and (on_tpu["end_s"].dropna() <= 2 * DAY).all()


def test_utilization_and_energy_count_only_the_online_window(base, tmp_path):
    base = leaving(base)
    results = sim.run(scenario_from(base, tmp_path))
    series, summary = results.timeseries, results.summary
    widths = np.diff(np.append(series["time_s"].to_numpy(), summary["horizon_s"]))
    busy_chip_s = float((series["busy_chips.tpu-v6e"] * widths).sum())
    assert busy_chip_s > 0
    assert summary["utilization_by_accelerator"]["tpu-v6e"] == pytest.approx(busy_chip_s / (16 * DAY), rel=1e-12)
    after = series["time_s"].to_numpy() >= DAY
    assert (series.loc[after, "utilization.tpu-v6e"] == 0).all()
    # IT energy: idle of each pool over its window + busy increments (the series' busy chips)
    fleet = build_fleet(results.scenario, builtin_catalog())
    joules = 0.0
    for pool in fleet.pools:
        busy = float((series[f"busy_chips.{pool.accelerator.id}"] * widths).sum())
        joules += pool.count * pool.idle_w_with_server * pool.online_seconds(summary["horizon_s"])
        joules += busy * (pool.busy_w_with_server - pool.idle_w_with_server)
    assert fleet.pools[1].online_window(summary["horizon_s"]) == (0.0, DAY)
    assert summary["it_energy_kwh"] == pytest.approx(joules / 3.6e6, rel=1e-9)
    # after the leave, IT power is at most the GPU pool at full load
    gpu = fleet.pools[0]
    assert (series.loc[after, "it_power_kw"] <= gpu.count * gpu.busy_w_with_server / 1e3 + 1e-9).all()


def test_a_leaving_pool_releases_its_idle_power_floor_under_a_cap(base, tmp_path):
    """Under a cap that leaves room for four busy GPU chips beside both pools' idle floors, a fifth (and as many
    more as the TPU's idle floor, switches included, pays for) runs only after the TPU pool has left and its idle
    power is no longer reserved."""
    base = leaving(base, jobs=300, rate=8)
    base["workloads"]["training"]["generator"].update(chips={1: 1.0}, stacks={"cuda": 1.0})
    fleet = build_fleet(scenario_from(base, tmp_path), builtin_catalog())
    chip_w = fleet.busy_increment_facility_w(0)
    tpu_idle_w = 16 * fleet.pools[1].idle_w_with_server * fleet.site.pue
    more = math.floor(0.5 + tpu_idle_w / chip_w)  # busy GPU chips the TPU's idle floor pays for, beyond 4.5
    assert more >= 1
    base["site"]["power_cap_mw"] = (fleet.committed_floor_w + 4.5 * chip_w) / 1e6
    results = sim.run(scenario_from(base, tmp_path, "capped.yaml"))
    series = results.timeseries
    before = series["time_s"].to_numpy() < DAY
    assert (series.loc[before, "busy_chips.h100-sxm"] <= 4 + 1e-9).all()
    assert series.loc[~before, "busy_chips.h100-sxm"].max() > 4.5
    assert (series["busy_chips.h100-sxm"] <= 4 + more + 1e-9).all()
    assert results.summary["peak_facility_power_kw"] <= results.summary["power_cap_kw"] * (1 + 1e-9)
    assert_accounted(results)


@pytest.mark.parametrize(("fleet_update", "field", "message"), [
    ({"owner": "rented", "online_from": "2026-01-02", "online_until": "2026-01-02"}, "fleet[1].online_until",
     "found 2026-01-02: a contract that ends on or before it comes online (2026-01-02)"),
    ({"online_until": "2026-01-01"}, "fleet[1].online_until",
     "found 2026-01-01: the pool would leave on or before the scenario start 2026-01-01"),
    ({"online_from": "2026-01-05"}, "fleet[1].online_from",
     "found 2026-01-05: the pool would come online at or after the end of the run (2026-01-03 00:00)"),
])
def test_windows_outside_the_run_are_refused(base, tmp_path, fleet_update, field, message):
    base["fleet"][1].update(fleet_update)
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(base, tmp_path, "w.yaml")
    text = str(info.value)
    assert "w.yaml:" in text and field in text and message in text


def test_window_errors_are_reported_together(base, tmp_path):
    base["fleet"][0].update(online_until="2025-12-01")
    base["fleet"][1].update(online_from="2026-02-01", online_until="2026-01-15")
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(base, tmp_path, "w.yaml")
    text = str(info.value)
    assert "fleet[0].online_until" in text and "fleet[1].online_from" in text and "fleet[1].online_until" in text


def test_replicas_on_a_pool_that_leaves_within_the_run_stop_taking_requests_then(tmp_path):
    data = with_service(duration="2d")
    data["workloads"]["inference"][0]["traffic"]["generator"]["rate_per_s"] = 0.02
    data["fleet"][0]["online_until"] = "2026-01-02"  # the group is active until its pool leaves
    requests = sim.run(scenario_from(data, tmp_path, "r.yaml")).requests
    after = requests["arrival_s"] >= 86400.0
    assert (requests.loc[after, "state"] == "rejected").all() and after.any()  # no replica active then
    assert (requests.loc[~after, "state"] == "completed").mean() > 0.99
    data["workloads"]["inference"][0]["replicas"][0]["active_until"] = "2026-01-03"  # beyond the pool: clipped
    scenario_from(data, tmp_path, "fine.yaml")
