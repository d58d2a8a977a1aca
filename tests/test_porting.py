"""Porting as a project (``porting[]`` with start, cost and ramp) and frameworks (sim/catalog/efficiency.py,
sim/training/ramps.py): jobs move as efficiency rises, the cost is booked once, old scenarios are unchanged."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

import sim
from sim.catalog import builtin_catalog
from sim.catalog.efficiency import add_months, port_epochs, ports_at, stack_efficiency
from sim.fleet import build_fleet
from sim.training.prepare import prepare_jobs
from sim.training.simulate import simulate_training
from sim.workload import make_job_table
from tests.conftest import SCENARIOS, load_text, scenario_from

DAY = 86400.0
TPU_ONLY = """\
schema_version: 1
name: ramp
start: 2026-01-01
duration: 120d
fleet:
  - {name: tpu, accelerator: tpu-v6e, count: 8, chips_per_server: 8, servers_per_rack: 1, cooling: liquid}
porting:
  - {from_stack: cuda, accelerator: tpu-v6e, to_stack: xla, start: 2026-01-11, engineer_weeks: 10,
     cost_usd: 5000, ramp: {initial_frac: 0.4, final_frac: 0.8, months: 2}}
"""


def _ramp_run(tmp_path):
    """Four bert-large cuda jobs of 8 chips on the 8 TPU v6e: ``early`` arrives before the port's start, ``a``
    just after it and holds the chips for about five weeks, ``b`` arrives with ``a`` but starts after it (in
    the ramp's second month), ``c`` arrives once the ramp is over."""
    scenario = load_text(tmp_path, TPU_ONLY)
    catalog = builtin_catalog()
    fleet = build_fleet(scenario, catalog)
    jobs = make_job_table({"job_id": ["early", "a", "b", "c"], "arrival_s": [5 * DAY, 10.5 * DAY, 10.6 * DAY,
                                                                             80 * DAY],
                           "chips": 8, "model": "bert-large", "stack": "cuda", "samples": [1e9, 2e12, 2e12, 2e12]})
    prepared = prepare_jobs(jobs, fleet, catalog, scenario.porting, scenario.start, float(scenario.duration))
    cluster = simulate_training(fleet, prepared, float(scenario.duration), scenario.policy.scheduler)
    return prepared, cluster


def test_months_add_on_the_calendar():
    assert add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)
    assert add_months(dt.date(2026, 11, 15), 3) == dt.date(2027, 2, 15)


def test_ramp_steps_monthly_and_nothing_runs_before_the_start(tmp_path):
    scenario = load_text(tmp_path, TPU_ONLY)
    tpu = builtin_catalog().accelerators["tpu-v6e"]
    start = scenario.start
    assert port_epochs(scenario.porting, start, 120 * DAY) == [10 * DAY, 41 * DAY, 69 * DAY]  # Jan 11, Feb 11, Mar 11
    at = [stack_efficiency(tpu, "cuda", ports_at(scenario.porting, t * DAY, start)) for t in (9.9, 10, 41, 69, 100)]
    xla = tpu.stacks["xla"]
    assert at == pytest.approx([0.0, 0.4 * xla, 0.6 * xla, 0.8 * xla, 0.8 * xla])


def test_a_job_starting_later_in_the_ramp_runs_faster(tmp_path):
    prepared, cluster = _ramp_run(tmp_path)
    run = [cluster.end_s[j] - cluster.start_s[j] for j in (1, 2, 3)]
    # before the start the stack does not run there: the early job has no pool
    assert "no-eligible-pool" in cluster.reject_reason[0] and np.isnan(cluster.start_s[0])
    a, b, c = run
    assert cluster.start_s[2] >= cluster.end_s[1] > 41 * DAY  # b waited for a into the second month
    assert b < a and c < b
    # compute-bound: the run time follows 1 / efficiency of the epoch the job starts in
    assert a / c == pytest.approx(0.8 / 0.4, rel=1e-6)
    assert b == pytest.approx(a * 0.4 / 0.6, rel=1e-6)
    assert b == pytest.approx(prepared.ramps.full_time_s(2, 0, cluster.start_s[2], prepared.duration_s), rel=1e-12)


def test_port_cost_is_booked_once_on_its_start(tmp_path):
    results = sim.run(load_text(tmp_path, TPU_ONLY))
    rows = results.ledger.entries[results.ledger.entries["category"] == "porting"]
    assert len(rows) == 1
    row = rows.iloc[0]
    week = builtin_catalog().site_defaults["engineer_week_usd"]
    assert row["time_s"] == 10 * DAY and row["month"] == "2026-01" and row["pool"] == ""
    assert row["usd"] == pytest.approx(5000 + 10 * week)
    money = results.summary["money"]
    assert money["by_category_usd"]["porting"] == pytest.approx(5000 + 10 * week)
    assert results.monthly["porting_usd"].tolist() == pytest.approx([5000 + 10 * week, 0, 0, 0])


def test_site_sets_the_engineer_week(tmp_path):
    text = TPU_ONLY.replace("duration: 120d\n", "duration: 120d\nsite: {engineer_week_usd: 1000}\n")
    assert sim.run(load_text(tmp_path, text)).summary["money"]["by_category_usd"]["porting"] == 15000


def test_undated_ports_keep_their_fixed_fraction(base, tmp_path):
    """An old-style port (no start, no ramp) is one epoch: no per-epoch tables, the same run times as a
    fixed grant, and no porting cost."""
    base["porting"] = [{"from_stack": "cuda", "accelerator": "tpu-v6e", "efficiency_frac": 0.5}]
    scenario = scenario_from(base, tmp_path)
    catalog = builtin_catalog()
    fleet = build_fleet(scenario, catalog)
    from sim.workload import training_jobs
    jobs = training_jobs(scenario, tmp_path)
    prepared = prepare_jobs(jobs, fleet, catalog, scenario.porting, scenario.start, float(scenario.duration))
    assert prepared.ramps is None
    assert np.array_equal(prepared.duration_s, prepare_jobs(jobs, fleet, catalog, scenario.porting).duration_s)
    tpu = catalog.accelerators["tpu-v6e"]
    assert stack_efficiency(tpu, "cuda", ports_at(scenario.porting, 0.0, scenario.start)) == 0.5 * max(
        tpu.stacks.values())
    results = sim.run(scenario)
    assert results.summary["money"]["by_category_usd"]["porting"] == 0.0
    assert (results.jobs["software_stack"] == "cuda").any() and (results.jobs["pool"] == "tpu").any()


def test_frameworks_run_on_every_stack_they_support(base, tmp_path):
    catalog = builtin_catalog()
    h100, tpu, mi300 = (catalog.accelerators[a] for a in ("h100-sxm", "tpu-v6e", "mi300x"))
    assert stack_efficiency(h100, "pytorch") == h100.stacks["cuda"]
    assert stack_efficiency(tpu, "pytorch") == pytest.approx(0.8 * tpu.stacks["xla"])
    assert stack_efficiency(tpu, "jax") == tpu.stacks["xla"]
    assert stack_efficiency(mi300, "jax") == pytest.approx(0.8 * mi300.stacks["rocm"])
    gen = base["workloads"]["training"]["generator"]
    del gen["stacks"]
    gen["frameworks"] = {"pytorch": 0.5, "jax": 0.5}
    jobs = sim.run(scenario_from(base, tmp_path)).jobs
    placed = jobs[jobs["pool"] != ""]
    assert set(jobs["software_stack"]) == {"pytorch", "jax"}
    for framework in ("pytorch", "jax"):  # unlike a cuda or xla job, a framework job uses both pools
        assert set(placed.loc[placed["software_stack"] == framework, "pool"]) == {"gpu", "tpu"}


def test_port_or_stay_moves_cuda_jobs_to_the_tpus_after_the_start():
    scenario = sim.load(SCENARIOS / "port-or-stay.yaml")
    jobs = sim.run(scenario).jobs
    cuda_on_tpu = jobs[(jobs["software_stack"] == "cuda") & (jobs["accelerator"] == "tpu-v6e")]
    march = (dt.date(2026, 3, 1) - scenario.start).days * DAY
    assert len(cuda_on_tpu) > 100 and (cuda_on_tpu["arrival_s"] >= march).all()
