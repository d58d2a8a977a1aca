"""``perf_per_watt``: useful training FLOPs and served tokens or queries per joule of IT energy, per accelerator type
(``sim.results.perf_per_watt``), against a hand computation on tiny runs."""

from __future__ import annotations

import pytest

import sim
from tests.conftest import load_text, scenario_from
from tests.test_inference import with_service

TINY = """\
schema_version: 1
name: ppw
start: 2026-01-05
duration: 2d
site: {{server_power_overhead_frac: 0.25}}
fleet:
  - {{name: gpu, accelerator: h100-sxm, count: 16, chips_per_server: 8}}
workloads:
  training:
    generator:
      jobs: 1
      arrival_rate_per_hour: 1
      chips: {{8: 1.0}}
      models: {{{model}: 1.0}}
      stacks: {{cuda: 1.0}}
      {work}
"""


def test_training_flops_per_joule_by_hand(tmp_path):
    results = sim.run(load_text(tmp_path, TINY.format(model="llama3-8b", work="samples: {fixed: 2.0e8}")))
    job = results.jobs.iloc[0]
    assert job["state"] == "completed" and 0.2 < job["mfu"] < 0.8
    run_s = job["end_s"] - job["start_s"]
    activity = job["activity"]  # the share of the dynamic power its step phases draw (sim.training.power)
    assert 0.3 < activity <= 1
    # H100 SXM: idle 70 W, TDP 700 W, 989 TFLOP/s dense BF16 (catalog); server overhead 25 %; its share of the
    # scale-out switches 80 W, idle or busy (site.yaml)
    idle_w, dynamic_w, switch_w, peak = 70 * 1.25, (700 - 70) * 1.25, 80.0, 989e12
    it_j = 16 * (idle_w + switch_w) * 2 * 86400 + 8 * dynamic_w * activity * run_s  # every chip idle, the gang busy
    flop = job["mfu"] * peak * 8 * run_s
    got = results.summary["perf_per_watt"]["h100-sxm"]
    assert got["it_energy_kwh"] == pytest.approx(it_j / 3.6e6, rel=1e-9)
    assert got["training_pflop"] == pytest.approx(flop / 1e15, rel=1e-9)
    assert got["training_flops_per_j"] == pytest.approx(flop / it_j, rel=1e-9)
    busy_w = idle_w + switch_w + dynamic_w * activity
    assert got["training_busy_flops_per_j"] == pytest.approx(job["mfu"] * peak / busy_w, rel=1e-9)
    assert "llm_tokens_per_j" not in got and "ranking_requests_per_j" not in got


def test_roofline_jobs_give_no_training_figure(tmp_path):
    results = sim.run(load_text(tmp_path, TINY.format(model="resnet50", work="duration_s: {fixed: 3600}")))
    assert results.summary["jobs"]["completed"] == 1
    assert "perf_per_watt" not in results.summary  # no model FLOPs, no serving: nothing per type


def test_llm_tokens_per_joule_are_the_replicas_tokens_over_their_it_energy(tmp_path):
    data = with_service(duration="20min")
    data["workloads"].pop("training")
    summary = sim.run(scenario_from(data, tmp_path)).summary
    chat = summary["inference"]["chat"]["by_accelerator"]
    assert set(summary["perf_per_watt"]) == set(chat)
    for accel, figures in chat.items():
        joules_per_token = figures["it_energy_per_1k_tokens_kwh"] / 1e3 * 3.6e6
        assert summary["perf_per_watt"][accel]["llm_tokens_per_j"] == pytest.approx(1 / joules_per_token, rel=1e-9)
        assert "training_pflop" not in summary["perf_per_watt"][accel]


def test_ranking_queries_per_joule_lie_between_the_idle_and_busy_bounds(tmp_path):
    from tests.test_ranking import SERVICE, with_ranking

    summary = sim.run(scenario_from(with_ranking(), tmp_path)).summary
    by = summary["inference"]["feed"]["by_accelerator"]
    # the replicas' chips draw between their idle and full power (with the server share) for the whole 2 min, so
    # queries per joule lie between completed ÷ (chips × busy W × 120 s) and completed ÷ (chips × idle W × 120 s)
    from sim.fleet import build_fleet
    from sim.validation.checks import scenario_catalog

    scenario = scenario_from(with_ranking(), tmp_path, "again.yaml")
    pools = {p.name: p for p in build_fleet(scenario, scenario_catalog(scenario)).pools}
    for group in SERVICE["replicas"]:
        pool = pools[group["pool"]]
        accel = pool.accelerator.id
        chips = group["count"] * group["chips_per_replica"]
        got = summary["perf_per_watt"][accel]["ranking_requests_per_j"]
        done = by[accel]["completed"]
        assert done / (chips * pool.busy_w_with_server * 120) <= got <= done / (chips * pool.idle_w_with_server * 120)
        assert got == pytest.approx(1e3 / (by[accel]["it_energy_per_1k_requests_kwh"] * 3.6e6), rel=1e-9)


def test_with_failures_training_work_is_the_goodput_share(tmp_path):
    """With failures a job's checkpoint saves, restarts, restores and the work lost since its last checkpoint are not
    useful work: a completed job delivers the same training FLOPs as without failures (its work), the goodput share
    of its run seconds, so its FLOP/J falls by the chip-time that failures cost."""
    work = "samples: {fixed: 4.0e9}"
    plain = sim.run(load_text(tmp_path, TINY.format(model="llama3-8b", work=work)))
    slow_store = "server_power_overhead_frac: 0.25, checkpoint_storage_gb_per_s: 1.0"  # saves of minutes
    failing = sim.run(load_text(tmp_path, TINY.format(model="llama3-8b", work=work).replace(
        "server_power_overhead_frac: 0.25", slow_store) + """\
failures:
  rates_per_1000_chip_days: {software: 1000.0}
  restart_delay: 10min
  checkpoint_interval: 20min
"""))
    job, free = failing.jobs.iloc[0], plain.jobs.iloc[0]
    assert job["state"] == free["state"] == "completed" and job["interruptions"] >= 1
    assert 0.5 < job["goodput_frac"] < 0.9
    got, before = failing.summary["perf_per_watt"]["h100-sxm"], plain.summary["perf_per_watt"]["h100-sxm"]
    assert got["training_pflop"] == pytest.approx(before["training_pflop"], rel=1e-9)
    assert got["training_pflop"] == pytest.approx(job["mfu"] * 989e12 * job["useful_chip_s"] / 1e15, rel=1e-9)
    run_s = job["end_s"] - job["start_s"]  # the held time, restarts and saves included: more than the work
    counted_before = job["mfu"] * 989e12 * 8 * (run_s - job["lost_chip_s"] / 8) / 1e15
    assert got["training_pflop"] < counted_before * 0.95  # the saves alone are a tenth of the run
    assert got["training_flops_per_j"] == pytest.approx(got["training_pflop"] * 1e15 / (got["it_energy_kwh"] * 3.6e6),
                                                        rel=1e-12)
    assert got["training_flops_per_j"] < before["training_flops_per_j"]  # the same work on more energy
