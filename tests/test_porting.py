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
from sim.workload import make_job_table, training_jobs
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


def _errors(tmp_path, text: str) -> list[str]:
    with pytest.raises(sim.ScenarioError) as info:
        load_text(tmp_path, text)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize("old, new, where, says", [
    ("to_stack: xla", "to_stack: cuda", ":8 porting[0].to_stack",
     "found 'cuda': tpu-v6e lacks that stack; accepted: xla, portable"),
    ("to_stack: xla", "to_stack: cudaa", ":8 porting[0].to_stack", "unknown stack 'cudaa'"),
    ("start: 2026-01-11", "start: 2025-12-01", ":8 porting[0].start",
     "found 2025-12-01: outside the run; accepted: 2026-01-01 to 2026-04-30"),
    ("start: 2026-01-11", "start: 2026-05-01", ":8 porting[0].start", "outside the run"),
    ("initial_frac: 0.4", "initial_frac: 0", ":9 porting[0].ramp.initial_frac", "above 0, up to 1"),
    ("final_frac: 0.8", "final_frac: 1.5", ":9 porting[0].ramp.final_frac", "found 1.5"),
    ("cost_usd: 5000", "cost_usd: -5", ":9 porting[0].cost_usd", "found -5"),
    ("engineer_weeks: 10", "engineer_weeks: -1", ":8 porting[0].engineer_weeks", "found -1"),
    ("start: 2026-01-11, ", "", ":9 porting[0].ramp", "a ramp needs the port's start date"),
    (", ramp: {initial_frac: 0.4, final_frac: 0.8, months: 2}}", "}", ":8 porting[0]",
     "give exactly one of efficiency_frac, ramp"),
])
def test_bad_ports_are_located_errors(tmp_path, old, new, where, says):
    assert old in TPU_ONLY
    errors = _errors(tmp_path, TPU_ONLY.replace(old, new))
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{tmp_path / 's.yaml'}{where}") and says in errors[0], errors[0]


def test_unknown_framework_lists_the_accepted_names(base, tmp_path):
    gen = base["workloads"]["training"]["generator"]
    del gen["stacks"]
    gen["frameworks"] = {"pytorh": 1.0}
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(base, tmp_path)
    (error,) = [str(p) for p in info.value.problems]
    assert "workloads.training.generator.frameworks.pytorh: unknown framework 'pytorh'" in error
    assert "did you mean 'pytorch'?" in error and "jax, pytorch, tensorflow" in error
    gen["frameworks"] = {"jax": 1.0}
    gen["stacks"] = {"cuda": 1.0}
    with pytest.raises(sim.ScenarioError, match="give stacks or frameworks, not both"):
        scenario_from(base, tmp_path, "both.yaml")


def test_service_on_a_chip_reached_only_by_a_later_port_is_refused(tmp_path):
    text = TPU_ONLY.replace("count: 8,", "count: 16,") + """\
workloads:
  inference:
    - name: chat
      model: llama3-8b
      framework: cudaish
      replicas: [{pool: tpu, count: 1, chips_per_replica: 8}]
      traffic: {generator: {rate_per_s: 1, prompt_tokens: {fixed: 100}, output_tokens: {fixed: 10}}}
"""
    (error,) = _errors(tmp_path, text)
    assert "workloads.inference[0].framework: unknown framework 'cudaish'" in error
    (error,) = _errors(tmp_path, text.replace("framework: cudaish", "stack: cuda"))
    assert "workloads.inference[0].replicas[0].pool: stack 'cuda' does not run on tpu-v6e" in error
    assert "the port onto it starts 2026-01-11" in error
    scenario = load_text(tmp_path, text.replace("framework: cudaish", "framework: pytorch"))
    assert scenario.workloads.inference[0].software == "pytorch"  # pytorch runs there through PyTorch/XLA


def _reliability(variant: str, **more):
    from tests.test_readme_figures import VARIANTS
    return sim.load(SCENARIOS / "reliability-at-scale.yaml").with_overrides({**VARIANTS[variant], **more})


def test_reliability_port_books_its_cost_once_and_stay_none():
    """The porting variant of reliability-at-scale (a 35-day run keeps it fast): one ledger row on 1 January
    of 52 engineer-weeks plus USD 100,000; staying books nothing."""
    ported = sim.run(_reliability("reliability-at-scale@port", duration="35d"))
    rows = ported.ledger.entries[ported.ledger.entries["category"] == "porting"]
    week = builtin_catalog().site_defaults["engineer_week_usd"]
    assert len(rows) == 1 and rows.iloc[0]["time_s"] == 0.0
    assert rows.iloc[0]["usd"] == pytest.approx(100000 + 52 * week)
    assert ported.summary["money"]["by_category_usd"]["porting"] == pytest.approx(100000 + 52 * week)
    stayed = sim.run(_reliability("reliability-at-scale@stay", duration="35d"))
    assert (stayed.ledger.entries["category"] == "porting").sum() == 0
    # staying, the second CUDA run waits for the H100s; ported, it runs on the MI300X from the start
    assert stayed.jobs["accelerator"].tolist()[0] == "h100-sxm" and np.isnan(stayed.jobs["start_s"].iloc[1])
    assert (ported.jobs["start_s"] < 60).all() and ported.jobs["accelerator"].tolist() == ["h100-sxm", "mi300x"]


def test_reliability_port_efficiency_follows_the_ramp(tmp_path):
    """The ported CUDA run's MI300X run time falls month by month with the ramp (0.6, 0.73, 0.87 of native ROCm
    efficiency, 1.0 from 1 April) to the native ROCm run's time (the base scenario's ROCm job: same model, chips
    and tokens)."""
    catalog = builtin_catalog()
    native = sim.load(SCENARIOS / "reliability-at-scale.yaml")
    ported = _reliability("reliability-at-scale@port")
    runs = {}
    for name, scenario in (("native", native), ("ported", ported)):
        fleet = build_fleet(scenario, catalog)
        jobs = training_jobs(scenario, tmp_path)
        runs[name] = (jobs, prepare_jobs(jobs, fleet, catalog, scenario.porting, scenario.start,
                                         float(scenario.duration)))
    mi300x = [p.name for p in build_fleet(ported, catalog).pools].index("mi300x")
    jobs, native_prepared = runs["native"]
    assert native_prepared.ramps is None and list(jobs["stack"]) == ["cuda", "rocm"]
    rocm_s = native_prepared.duration_s[1, mi300x]
    jobs, prepared = runs["ported"]
    assert list(jobs["stack"]) == ["cuda", "cuda"]
    months = [0.0, *prepared.ramps.epochs_s]
    assert [t / DAY for t in months] == [0, 31, 59, 90]  # 1 January, February, March, April
    for job in (0, 1):
        times = [prepared.ramps.full_time_s(job, mi300x, t, prepared.duration_s) for t in months]
        assert times[-1] == pytest.approx(rocm_s, rel=1e-12) and times == sorted(times, reverse=True)
        # the port's fraction scales the step's compute, not its communication: slower by a little less than 1/f
        for run_s, frac in zip(times[:-1], (0.6, 0.6 + 0.4 / 3, 1 - 0.4 / 3)):
            assert 0.95 * rocm_s / frac < run_s < rocm_s / frac
