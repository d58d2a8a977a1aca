"""No numpy warning reaches a user: inputs that once made one (a zero-length job on a chip its stack does
not run on, a free chip under the ``cheapest`` objective, a fluid service far past its capacity) run clean
with every warning turned into an error."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.fleet import build_fleet
from sim.training.prepare import pool_orders, prepare_jobs
from sim.validation.checks import scenario_catalog
from sim.workload.jobs import make_job_table
from tests.conftest import scenario_from
from tests.test_inference import SERVICE, with_service

pytestmark = pytest.mark.filterwarnings("error")


def test_a_zero_length_job_runs_in_no_time_where_its_stack_runs(base, tmp_path):
    """Philly has jobs of 0 s. Scaled from the reference chip to a pool its stack does not run on, 0 s × an
    infinite throughput ratio made a NaN (and a RuntimeWarning); such a pool never runs the job."""
    scenario = scenario_from(base, tmp_path)
    catalog = scenario_catalog(scenario)
    fleet = build_fleet(scenario, catalog)
    jobs = make_job_table({"job_id": ["xla-0s", "cuda-0s", "xla-1h"], "arrival_s": [0.0, 0.0, 0.0], "chips": 1,
                           "model": "resnet50", "stack": ["xla", "cuda", "xla"], "duration_s": [0.0, 0.0, 3600.0],
                           "reference_accelerator": "h100-sxm"})
    prepared = prepare_jobs(jobs, fleet, catalog)
    gpu, tpu = (p.index for p in fleet.pools)
    assert not np.isnan(prepared.duration_s).any()
    assert prepared.duration_s[0, gpu] == np.inf and prepared.duration_s[0, tpu] == 0.0
    assert prepared.duration_s[1, gpu] == 0.0 and prepared.duration_s[1, tpu] == np.inf
    assert prepared.eligible == [(tpu,), (gpu,), (tpu,)]


def test_zero_length_jobs_complete_at_their_start(base, tmp_path):
    base["workloads"]["training"]["generator"].update(stacks={"xla": 0.5, "cuda": 0.5}, duration_s={"fixed": 0})
    jobs = sim.run(scenario_from(base, tmp_path)).jobs
    assert (jobs["state"] == "completed").all()
    assert (jobs["end_s"] == jobs["start_s"]).all()
    assert set(jobs.loc[jobs["software_stack"] == "xla", "pool"]) == {"tpu"}


def test_a_free_pool_orders_first_without_multiplying_infinity_by_zero():
    run_time_s = np.array([[np.inf, 10.0, 20.0], [5.0, np.inf, 1.0]])
    eligible = np.isfinite(run_time_s)
    free = np.array([0.0, 1.0, 0.5])
    assert pool_orders(run_time_s, eligible, free) == [(1, 2), (0, 2)]


def test_a_fluid_service_far_past_its_capacity(tmp_path):
    """About 100× what one replica serves, for two days: the backlog passes 1.8e8 requests, where dividing
    it by a floor of 1e-300 s⁻¹ of spare capacity used to overflow."""
    service = {"fidelity": "fluid", "replicas": [{"pool": "gpu", "count": 1}],
               "traffic": {"generator": {**SERVICE["traffic"]["generator"], "rate_per_s": 1500.0}}}
    data = with_service(service, duration="2d")
    data["workloads"].pop("training")
    chat = sim.run(scenario_from(data, tmp_path)).summary["inference"]["chat"]
    r = chat["requests"]
    assert r["unfinished"] > 2e8 and r["completed"] < r["offered"] / 50
    assert chat["utilization"] == pytest.approx(1.0, abs=0.01) and chat["slo_attainment"] < 0.05
