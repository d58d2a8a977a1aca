"""Failures of training capacity (``failures``, ``sim.training.failures``): the failure stream, repair, hot spares,
checkpoint/restart of interrupted jobs, their results, and located errors for bad input."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest

import sim
from sim.catalog import builtin_catalog
from sim.training.cluster import Cluster
from tests.conftest import scenario_from
from tests.test_engine import assert_accounted

DAY = 86400.0
ZERO = {"gpu": 0, "memory": 0, "network": 0, "host": 0, "software": 0, "maintenance": 0}


def one_gang(base: dict, days: int = 30, **failures) -> dict:
    """One 64-chip H100 pool and one 64-chip llama3-8b job that outlasts the run: every failure strikes it."""
    base.update(duration=f"{days}d")
    base["fleet"] = [{"name": "gpu", "accelerator": "h100-sxm", "count": 64, "chips_per_server": 8,
                      "servers_per_rack": 4}]
    base["workloads"]["training"]["generator"].update(
        jobs=1, arrival_rate_per_hour=1, chips={64: 1.0}, models={"llama3-8b": 1.0}, stacks={"cuda": 1.0},
        duration_s={"fixed": 1000 * DAY})
    base["failures"] = {"rates_per_1000_chip_days": {**ZERO, "gpu": 100.0}, "repair_time": {"gpu": 0},
                        **failures}
    return base


def mixed(base: dict, **failures) -> dict:
    """Two pools (H100 and TPU v6e, 256 chips each) and a stream of gangs of 8 to 128 chips for 20 days, with
    failure rates 20 times the profile's so that repairs overlap."""
    base.update(duration="20d")
    base["fleet"] = [
        {"name": "gpu", "accelerator": "h100-sxm", "count": 256, "chips_per_server": 8, "servers_per_rack": 4},
        {"name": "tpu", "accelerator": "tpu-v6e", "count": 256, "chips_per_server": 8, "servers_per_rack": 4}]
    base["workloads"]["training"]["generator"].update(
        jobs=400, arrival_rate_per_hour=1, chips={8: 0.5, 32: 0.3, 128: 0.2},
        models={"llama3-8b": 0.5, "resnet50": 0.5}, stacks={"portable": 1.0},
        duration_s={"lognormal": {"median": 6 * 3600, "sigma": 1.0}})
    profile = builtin_catalog().failure_profiles["llm-cluster-typical"]["rates_per_1000_chip_days"]
    base["failures"] = {"rates_per_1000_chip_days": {c: 20 * v["value"] for c, v in profile.items()},
                        "checkpoint_interval": "30min", **failures}
    return base


def run(data: dict, tmp_path, name: str = "s.yaml"):
    return sim.run(scenario_from(data, tmp_path, name))


def test_failures_off_equals_no_section(base, tmp_path):
    """``failures: none`` runs exactly as a scenario without the section: same jobs table and summary, no
    failure columns."""
    plain = run(copy.deepcopy(base), tmp_path, "a.yaml")
    none = run({**copy.deepcopy(base), "failures": "none"}, tmp_path, "b.yaml")
    pd.testing.assert_frame_equal(plain.jobs, none.jobs)
    assert plain.summary == none.summary
    assert "interruptions" not in plain.jobs.columns and "failures" not in plain.summary
    on = run({**copy.deepcopy(base), "failures": {}}, tmp_path, "c.yaml")
    assert "goodput_frac" in on.jobs.columns and "failures" in on.summary


def test_interruptions_of_a_long_job_follow_the_rate(base, tmp_path):
    """Every failure of the pool strikes the one gang: its interruptions are Poisson(λ × 64 chips × 30 d)
    (within four standard deviations), and each one is a failure event."""
    results = run(one_gang(base), tmp_path)
    expected = 100.0 / 1000.0 * 64 * 30  # 192
    job = results.jobs.iloc[0]
    assert abs(job["interruptions"] - expected) < 4 * math.sqrt(expected)
    failures = results.summary["failures"]
    assert failures["interruptions"] == failures["events"] == job["interruptions"]
    assert failures["interruptions_by_cause"]["gpu"] == job["interruptions"]
    assert job["state"] == "running" and job["preemptions"] == job["interruptions"]


def test_lost_work_at_most_one_interval_plus_restart(base, tmp_path):
    """Lost time per interruption ≤ checkpoint interval + save + restart delay + restore; the checkpoint
    overhead and the restarts make goodput < 1."""
    results = run(one_gang(base, checkpoint_interval="2h", restart_delay="10min"), tmp_path)
    model = builtin_catalog().models["llama3-8b"]
    save = model.params * model.train_bytes_per_param / 2000e9
    job = results.jobs.iloc[0]
    per_interruption_s = job["failure_lost_chip_s"] / job["interruptions"] / 64
    assert 0 < per_interruption_s <= 2 * 3600 + save + 600 + save
    assert per_interruption_s > 600  # the restart delay is lost every time (the run then computes a while)
    assert 0.5 < job["goodput_frac"] < 1.0
    summary = results.summary["failures"]
    assert summary["lost_chip_hours"] == pytest.approx(job["failure_lost_chip_s"] / 3600)


def test_optimal_interval_is_young_daly(base, tmp_path, captured):
    """``optimal``: C = sqrt(2 × save × MTBF of the gang)."""
    run(one_gang(base, days=2, checkpoint_interval="optimal"), tmp_path)
    failures = captured[0].failures
    model = builtin_catalog().models["llama3-8b"]
    save = model.params * model.train_bytes_per_param / 2000e9
    mtbf = 1.0 / (100.0 / 1000.0 / DAY * 64)
    assert failures.interval_s(0, 0) == pytest.approx(math.sqrt(2 * save * mtbf))


def test_repaired_chips_return(base, tmp_path, captured):
    """Failed servers leave the allocator and come back: at the end every chip is free, busy, or in a repair
    still under way, and repairs happened; availability is below 1."""
    results = run(mixed(base), tmp_path)
    cluster = captured[0]
    failures = cluster.failures
    assert failures.repairs.sum() > 10
    for p, allocator in enumerate(cluster.allocators):
        busy = sum(cluster.chips[j] for j in cluster.placement if cluster.pool_of[j] == p)
        down = sum(chips for pool, _, chips in failures.down_since.values() if pool == p)
        assert allocator.free_chips + busy + down == allocator.capacity
    summary = results.summary["failures"]
    assert all(0.8 < a < 1.0 for a in summary["availability_by_pool"].values())
    assert summary["interruptions"] > 0 and summary["lost_chip_hours"] > 0
    assert 0.5 < summary["goodput_share"] < 1.0
    assert set(summary["goodput_share_by_accelerator"]) == {"h100-sxm", "tpu-v6e"}
    assert_accounted(results)


def test_by_accelerator_figures_count_each_run_on_its_own_pool(base, tmp_path, captured):
    """Jobs preempted on one type and resumed on the other (portable gangs, two pools): interruptions and lost
    chip-hours by accelerator are those of the pools the failures struck, not of each job's last pool, and the
    per-run chip-time the goodput is taken over adds up to the jobs' held chip-time."""
    results = run(mixed(base), tmp_path)
    cluster = captured[0]
    accel = {p.index: p.accelerator.id for p in cluster.pools}
    moved = {job for job, pool, *_ in cluster.segments if pool != cluster.pool_of[job]}
    assert moved  # the case this test is about happens here
    summary = results.summary["failures"]
    for name in ("h100-sxm", "tpu-v6e"):
        struck = [s for s in cluster.segments if accel[s[1]] == name]  # every preemption here is an interruption
        assert summary["interruptions_by_accelerator"][name] == len(struck)
        assert summary["lost_chip_hours_by_accelerator"][name] == pytest.approx(sum(s[4] for s in struck) / 3600)
    assert sum(summary["interruptions_by_accelerator"].values()) == summary["interruptions"]
    runs = cluster.outcome()["failures"]["runs"]
    assert runs["held_chip_s"].sum() == pytest.approx(results.jobs["held_chip_s"].sum())
    assert runs["useful_chip_s"].sum() == pytest.approx(results.jobs["useful_chip_s"].sum())
    last = np.asarray(cluster.pool_of)[runs["job"]]
    assert set(runs["job"][runs["pool"] != last].tolist()) == moved


def test_hot_spares_keep_chips_available(base, tmp_path):
    """With spare servers, failed H100 servers are replaced at once: the pool loses no chip-time to repair
    (while spares last), the TPU pool without spares does."""
    data = mixed(base, hot_spares={"gpu": 64})
    results = run(data, tmp_path)
    summary = results.summary["failures"]
    assert summary["hot_spare_servers_by_pool"] == {"gpu": 8}
    assert summary["availability_by_pool"]["gpu"] > summary["availability_by_pool"]["tpu"]
    assert summary["availability_by_pool"]["gpu"] > 0.995


def test_same_seed_same_failures(base, tmp_path):
    first = run(mixed(copy.deepcopy(base)), tmp_path, "a.yaml")
    second = run(mixed(copy.deepcopy(base)), tmp_path, "b.yaml")
    pd.testing.assert_frame_equal(first.jobs, second.jobs)
    assert first.summary["failures"] == second.summary["failures"]
    other = mixed(copy.deepcopy(base))
    other["seed"] = 2
    assert run(other, tmp_path, "c.yaml").summary["failures"]["events_by_class"] \
        != first.summary["failures"]["events_by_class"]


def test_weibull_keeps_the_mean_rate(base, tmp_path):
    """Weibull gaps of the same mean: the event count stays near the Poisson mean (looser bounds: k < 1
    clusters failures)."""
    results = run(one_gang(base, distribution="weibull", weibull_shape=0.7), tmp_path)
    assert 192 * 0.6 < results.summary["failures"]["events"] < 192 * 1.4


def test_profile_rates_match_llama3():
    """The profile's rates add up to Llama 3's 419 unplanned and 47 planned interruptions on 16,384 H100 over
    54 days."""
    rates = builtin_catalog().failure_profiles["llm-cluster-typical"]["rates_per_1000_chip_days"]
    gpu_days = 16_384 * 54 / 1000
    unplanned = sum(v["value"] for c, v in rates.items() if c != "maintenance") * gpu_days
    assert unplanned == pytest.approx(419, rel=0.002)
    assert rates["maintenance"]["value"] * gpu_days == pytest.approx(47, rel=0.002)


@pytest.mark.parametrize("failures, field, words", [
    ({"rates_per_1000_chip_days": {"gpu": -1}}, "failures.rates_per_1000_chip_days", "found -1 for gpu; accepted"),
    ({"rates_per_1000_chip_days": {"disk": 1}}, "failures.rates_per_1000_chip_days.disk", "'gpu'"),
    ({"repair_time": {"host": -5}}, "failures.repair_time", "not negative"),
    ({"accelerator_rates_per_1000_chip_days": {"h100-sxm": {"gpu": 2000}}},
     "failures.accelerator_rates_per_1000_chip_days", "found 2000 for h100-sxm.gpu"),
    ({"checkpoint_interval": 0}, "failures.checkpoint_interval", "accepted: 'optimal'"),
    ({"checkpoint_interval": -60}, "failures.checkpoint_interval", "not negative"),
    ({"restart_delay": -1}, "failures.restart_delay", "not negative"),
    ({"hot_spares": {"gpx": 8}}, "failures.hot_spares.gpx", "unknown pool 'gpx'"),
    ({"hot_spares": {"gpu": 4}}, "failures.hot_spares.gpu", "whole servers of 8"),
    ({"accelerator_rates_per_1000_chip_days": {"h100": {"gpu": 1}}},
     "failures.accelerator_rates_per_1000_chip_days.h100", "unknown accelerator"),
])
def test_bad_input_is_located(base, tmp_path, failures, field, words):
    data = copy.deepcopy(base)
    data["failures"] = failures
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(data, tmp_path)
    message = str(info.value)
    assert "s.yaml:" in message and field in message and words in message


def test_catalog_failure_numbers_have_sources():
    catalog = builtin_catalog()
    profile = catalog.failure_profiles["llm-cluster-typical"]
    entries = [*profile["rates_per_1000_chip_days"].values(), *profile["repair_time_h"].values(),
               profile["restart_delay_s"], profile["network_rack_share"]]
    entries += [v for accel in profile["accelerators"].values() for v in accel.values()]
    for entry in entries:
        source = entry["source"]
        assert source.startswith("estimate:") or source.split()[0] in catalog.sources, source
    assert np.isfinite([e["value"] for e in entries]).all()


def test_hot_spares_on_a_pool_with_an_unknown_accelerator_report_only_that(base, tmp_path):
    """The hot-spare check skips a pool whose accelerator is unknown (reported once, by the fleet check)."""
    data = copy.deepcopy(base)
    data["fleet"][0]["accelerator"] = "h100-sx"
    data["failures"] = {"hot_spares": {"gpu": 8}}
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(data, tmp_path)
    assert len(info.value.problems) == 1 and "h100-sx" in str(info.value)


def test_rescheduling_after_a_failure_is_narrow_and_changes_nothing(base, tmp_path, monkeypatch):
    """After an interruption the scheduler is asked about the failed pool (and the requeued jobs' shapes on all
    their pools), not about every waiting shape on every pool; the outcome equals that of rescheduling everything
    at every instant, and the completions heap's stale entries (preempted jobs) are all still in it."""
    from sim.policies.schedulers import FifoBackfill
    from sim.training.failures import FailureProcess

    data = mixed(base)
    calls, fired = [], []
    original_schedule, original_fire = FifoBackfill.schedule, FailureProcess.fire

    def fire(self, t, freed):
        freed, requeued = original_fire(self, t, freed)
        if requeued:
            fired.append((t, self.cluster.pool_of, set(freed), list(requeued)))
        return freed, requeued

    def schedule(self, freed, new_shapes):
        calls.append((self.cluster.now, None if freed is None else set(freed), list(new_shapes)))
        return original_schedule(self, freed, new_shapes)

    monkeypatch.setattr(FailureProcess, "fire", fire)
    monkeypatch.setattr(FifoBackfill, "schedule", schedule)
    clusters = []
    original_outcome = Cluster.outcome
    monkeypatch.setattr(Cluster, "outcome", lambda self: clusters.append(self) or original_outcome(self))
    narrow = run(data, tmp_path)
    assert len(fired) > 20
    by_time = {t: (freed, new) for t, freed, new in calls}
    for t, _, freed, requeued in fired:
        assert by_time[t][0] is not None and freed <= by_time[t][0] <= {0, 1}
        assert set(requeued) <= set(by_time[t][1])
    cluster = clusters[0]
    assert cluster.stale_completions <= set(cluster.completions)

    monkeypatch.setattr(FifoBackfill, "schedule", lambda self, freed, new: original_schedule(self, None, new))
    wide = run(data, tmp_path, "wide.yaml")
    pd.testing.assert_frame_equal(narrow.jobs, wide.jobs)
    assert narrow.summary["failures"] == wide.summary["failures"]


# -- maintenance windows, rack-level failures, the failures plot ----------------------------------------------
def eight_jobs(base: dict, days: int = 10, **failures) -> dict:
    """One 64-chip H100 pool (8-chip servers, 4 servers a rack: two racks of 32 chips) full with eight 8-chip
    jobs that outlast the run, without failures unless ``failures`` gives rates."""
    data = one_gang(base, days=days, **failures)
    data["workloads"]["training"]["generator"].update(jobs=8, arrival_rate_per_hour=1000, chips={8: 1.0})
    data["failures"]["rates_per_1000_chip_days"] = {**ZERO, **failures.get("rates_per_1000_chip_days", {})}
    return data


def test_maintenance_window_takes_chips_and_returns_them_on_time(base, tmp_path, captured):
    """A window of half the pool at 2026-01-03 06:00 for 6 h: the four highest-index domains' jobs are
    interrupted then (cause maintenance-window), those 32 chips are away exactly for the window (time series and
    summary), and the jobs restart when it closes."""
    data = eight_jobs(base, days=5, maintenance=[{"pool": "gpu", "start": "2026-01-03T06:00", "hours": 6,
                                                   "fraction": 0.5}])
    data["outputs"] = {"timeseries_interval": "1h"}
    results = run(data, tmp_path)
    failures = results.summary["failures"]
    assert failures["interruptions_by_cause"]["maintenance-window"] == 4 == failures["interruptions"]
    assert failures["maintenance_windows_by_pool"] == {"gpu": 1}
    assert failures["maintenance_chip_hours_by_pool"]["gpu"] == pytest.approx(32 * 6)
    assert failures["availability_by_pool"]["gpu"] == 1.0  # planned windows are counted apart from repairs
    opened = 2 * DAY + 6 * 3600
    away = results.timeseries.set_index("time_s")["repair_chips.gpu"]
    assert (away.loc[opened:opened + 5 * 3600] == 32).all()
    assert away.drop(away.loc[opened:opened + 5 * 3600].index).eq(0).all()
    assert results.timeseries["interruptions.maintenance-window"].sum() == 4
    cluster = captured[0]
    segments = [s for s in cluster.segments if s[3] == opened]
    assert len(segments) == 4 and {s[1] for s in segments} == {0}
    restarted = sorted(job for job in range(8) if cluster.start_s[job] == opened + 6 * 3600)
    assert restarted == sorted(s[0] for s in segments)
    assert all(cluster.start_s[job] == cluster.arrival[job] for job in set(range(8)) - set(restarted))


def test_a_window_open_at_the_horizon_counts_up_to_it(base, tmp_path):
    """A window still open when the run ends (it crashed the results before): its chips count as away up to the
    horizon (32 chips × 4 h), its jobs as interrupted, and the per-job chip-time stays numbers."""
    data = eight_jobs(base, days=3, maintenance=[{"pool": "gpu", "start": "2026-01-03T20:00", "hours": 8,
                                                   "fraction": 0.5}])
    results = run(data, tmp_path)
    failures = results.summary["failures"]
    assert failures["maintenance_chip_hours_by_pool"]["gpu"] == pytest.approx(32 * 4)
    assert failures["interruptions_by_cause"]["maintenance-window"] == 4
    assert (results.jobs["held_chip_s"] > 0).all() and results.jobs["goodput_frac"].between(0.9, 1.0).all()


def test_repeated_windows_take_the_next_domains_in_turn(base, tmp_path, monkeypatch):
    """every_days: a quarter of the pool every day for 2 h, four windows in 4 days, each taking the next two
    domains (all eight once), each interrupting the two jobs there."""
    from sim.training import failures as process

    data = eight_jobs(base, days=4, maintenance=[{"pool": "gpu", "start": "2026-01-01T12:00", "hours": 2,
                                                   "fraction": 0.25, "every_days": 1}])
    taken, keep = [], process.FailureProcess._window

    def window(self, kind, pool, key, t, requeued):
        hit = keep(self, kind, pool, key, t, requeued)
        if kind == process.WINDOW_START:
            taken.append(tuple(self.windows[key][1]))
        return hit

    monkeypatch.setattr(process.FailureProcess, "_window", window)
    failures = run(data, tmp_path).summary["failures"]
    assert failures["maintenance_windows_by_pool"] == {"gpu": 4}
    assert failures["interruptions_by_cause"]["maintenance-window"] == 8
    assert taken == [(7, 6), (5, 4), (3, 2), (1, 0)]


@pytest.mark.parametrize("drain", [0, 24])
def test_a_drain_keeps_new_jobs_off_the_window(base, tmp_path, captured, drain):
    """16 one-day 8-chip jobs on 8 domains, a window of half the pool at day 1.5 for 6 h. With a 24 h drain the
    four drained domains take no job of the second wave, nobody is interrupted, and four jobs wait for the window
    to end; without a drain the second wave fills every domain and four of its jobs are interrupted."""
    window = {"pool": "gpu", "start": "2026-01-02T12:00", "hours": 6, "fraction": 0.5}
    data = eight_jobs(base, days=4, maintenance=[{**window, "drain_hours": drain} if drain else window])
    data["workloads"]["training"]["generator"].update(jobs=16, duration_s={"fixed": DAY})
    results = run(data, tmp_path)
    interrupted = results.summary["failures"]["interruptions_by_cause"]["maintenance-window"]
    cluster = captured[0]
    second = sorted(cluster.first_start_s.get(job, cluster.start_s[job]) for job in range(8, 16))
    if drain:
        assert interrupted == 0
        assert all(DAY <= t < 1.5 * DAY for t in second[:4]) and second[4:] == [1.75 * DAY] * 4
    else:
        assert interrupted == 4
        assert all(DAY <= t < 1.5 * DAY for t in second)


@pytest.mark.parametrize("accelerator", ["h100-sxm", "tpu-v6e"])
def test_rack_failure_interrupts_every_job_on_the_rack_at_once(base, tmp_path, captured, accelerator):
    """rack_share 1: every network failure takes a 32-chip rack (4 servers of 8) for repair — four 8-chip domains
    of H100, or half of the one 64-chip TPU domain; the four jobs on it are interrupted at the same instant, and
    no job of the other rack."""
    data = eight_jobs(base, days=20, rates_per_1000_chip_days={"network": 5.0}, rack_share=1.0,
                      repair_time={"network": "2h"})
    data["fleet"][0]["accelerator"] = accelerator
    data["workloads"]["training"]["generator"]["stacks"] = {"portable": 1.0}
    results = run(data, tmp_path)
    failures = results.summary["failures"]
    rack_events = failures["events_by_class"]["network-rack"]
    assert rack_events >= 2 and failures["events_by_class"]["network"] == 0
    process = captured[0].failures
    by_time: dict[float, list[int]] = {}
    for t, pool, cause in process.interrupt_log:
        assert cause == len(process.events[0]) - 2  # network-rack
        by_time.setdefault(t, []).append(pool)
    jobs_at = {t: [s[0] for s in captured[0].segments if s[3] == t] for t in by_time}
    for t, jobs in jobs_at.items():
        assert len(jobs) == 4
    assert failures["interruptions_by_cause"]["network-rack"] == 4 * len(by_time) == failures["interruptions"]
    assert {chips for _, _, _, chips in process.down_log} == {32}


def test_rack_share_profile_reads_the_catalog(base, tmp_path, captured):
    run(eight_jobs(base, days=1, rack_share="profile"), tmp_path)
    profile = builtin_catalog().failure_profiles["llm-cluster-typical"]
    assert captured[0].failures.config.rack_share == profile["network_rack_share"]["value"]
    assert profile["network_rack_share"]["source"].startswith("estimate:")


def test_results_without_the_new_fields_have_no_new_keys(base, tmp_path):
    """Without rack_share or windows the summary keeps its keys (goldens stay byte-identical)."""
    failures = run(one_gang(base, days=2), tmp_path).summary["failures"]
    assert set(failures["interruptions_by_cause"]) == {"gpu", "memory", "network", "host", "software", "maintenance"}
    assert "maintenance_windows_by_pool" not in failures and "network-rack" not in failures["events_by_class"]


def test_failures_plot_only_with_failures(base, tmp_path):
    """failures.png (chips away by pool, interruptions by cause) is drawn with failures on, not without."""
    import matplotlib.pyplot as plt

    from sim.results.plots import figures

    on = run(eight_jobs(copy.deepcopy(base), days=3, rates_per_1000_chip_days={"gpu": 20.0}, repair_time={"gpu": "6h"},
                        maintenance=[{"pool": "gpu", "start": "2026-01-02", "hours": 3}]), tmp_path, "a.yaml")
    off = run(copy.deepcopy(base), tmp_path, "b.yaml")
    drawn_on, drawn_off = figures(on), figures(off)
    try:
        assert "failures.png" in drawn_on and "failures.png" not in drawn_off
        top, bottom = drawn_on["failures.png"].axes
        assert [p.get_label() for p in top.patches] == ["gpu"]  # chips away, one line per pool
        causes = {c.get_label() for c in bottom.containers}
        assert "maintenance-window" in causes and causes <= {"gpu", "maintenance-window"}
    finally:
        for fig in [*drawn_on.values(), *drawn_off.values()]:
            plt.close(fig)
    on.save(tmp_path / "out")
    assert (tmp_path / "out" / "failures.png").exists()
    assert "failures.png" in (tmp_path / "out" / "report.html").read_text()


def test_a_window_while_its_pool_is_offline_is_located(base, tmp_path):
    data = copy.deepcopy(base)
    data["fleet"][1]["online_from"] = "2026-01-02"
    data["failures"] = {"maintenance": [{"pool": "tpu", "start": "2026-01-01T06:00", "hours": 2}]}
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(data, tmp_path)
    assert "s.yaml:" in str(info.value) and "failures.maintenance[0].start" in str(info.value)
    assert "pool 'tpu' is not online then; accepted: from 2026-01-02 00:00" in str(info.value)


@pytest.mark.parametrize("failures, field, words", [
    ({"maintenance": [{"pool": "gpx", "start": "2026-01-01", "hours": 2}]}, "failures.maintenance[0].pool",
     "unknown pool 'gpx'"),
    ({"maintenance": [{"pool": "gpu", "start": "2026-01-01", "hours": 0}]}, "failures.maintenance[0].hours",
     "above 0"),
    ({"maintenance": [{"pool": "gpu", "start": "2026-01-01", "hours": 2, "fraction": 0}]},
     "failures.maintenance[0].fraction", "above 0, up to 1"),
    ({"maintenance": [{"pool": "gpu", "start": "2026-01-01", "hours": 2, "fraction": 1.5}]},
     "failures.maintenance[0].fraction", "above 0, up to 1"),
    ({"maintenance": [{"pool": "gpu", "start": "2026-01-05", "hours": 2}]}, "failures.maintenance[0].start",
     "outside the run"),
    ({"maintenance": [{"pool": "gpu", "start": "2025-12-31T23:00", "hours": 2}]},
     "failures.maintenance[0].start", "outside the run"),
    ({"maintenance": [{"pool": "gpu", "start": "2026-01-01", "hours": 30, "every_days": 1}]},
     "failures.maintenance[0]", "outlast its repeat"),
    ({"maintenance": [{"pool": "gpu", "start": "2026-01-01", "hours": 2, "every_days": 1, "drain_hours": 22}]},
     "failures.maintenance[0]", "outlast its repeat"),
    ({"maintenance": [{"pool": "gpu", "start": "2026-01-01", "hours": 2, "drain_hours": -1}]},
     "failures.maintenance[0].drain_hours", "0 to"),
    ({"rack_share": 1.5}, "failures.rack_share", "accepted: 0 to 1"),
])
def test_bad_new_input_is_located(base, tmp_path, failures, field, words):
    data = copy.deepcopy(base)
    data["failures"] = failures
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(data, tmp_path)
    message = str(info.value)
    assert "s.yaml:" in message and field in message and words in message, message


def test_skipping_shapes_without_room_changes_nothing(base, tmp_path, monkeypatch):
    """fifo-backfill leaves out waiting shapes whose gang none of the freed pools can hold now (``Cluster.room``):
    the same jobs start at the same times as when every such shape is tried, with fewer placement attempts."""
    from sim.policies.schedulers import FifoBackfill

    attempts = []
    original = Cluster.try_start
    monkeypatch.setattr(Cluster, "try_start", lambda self, job, pool: attempts.append(job) or original(self, job, pool))
    data = mixed(base)
    skipping = run(data, tmp_path)
    tried_skipping = len(attempts)
    attempts.clear()
    monkeypatch.setattr(FifoBackfill, "drains_freed_only", False)  # no room test: every shape is drained
    trying = run(data, tmp_path, "all.yaml")
    pd.testing.assert_frame_equal(skipping.jobs, trying.jobs)
    assert skipping.summary["failures"] == trying.summary["failures"]
    assert skipping.summary["failures"]["interruptions"] > 20
    assert tried_skipping < 0.8 * len(attempts)


def test_domain_index_is_the_running_jobs_in_start_order_with_sheds(base, tmp_path, monkeypatch):
    """The per-domain index of running jobs (filed at each start, removed at each completion or preemption) gives,
    at every failure, exactly the jobs running in that domain now with their chips there, in the order their
    current runs started (recomputed from the cluster's running jobs), also when a power cap sheds jobs
    (preempted and restarted, maybe in the same domain, between two failures)."""
    from sim.training.failures import FailureProcess

    data = mixed(base)  # one TPU domain of 256 chips, where small gangs share a domain
    data.update(duration="8d", fleet=data["fleet"][1:])
    data["workloads"]["training"]["generator"].update(jobs=600, arrival_rate_per_hour=4,
                                                      chips={1: 0.5, 4: 0.3, 16: 0.2})
    data["failures"]["rates_per_1000_chip_days"]["software"] *= 3
    peak = sim.run(scenario_from(data, tmp_path, "u.yaml")).summary["peak_facility_power_kw"] / 1e3
    data["site"] = {**data["site"], "power_cap_mw": {f"2026-01-{day:02d}": peak * frac for day, frac in
                                                      enumerate((2, 0.6, 0.9, 0.5, 0.8, 0.4, 0.9), start=1)}}
    data["policy"] = {**data["policy"], "power_cap": {"kind": "shed"}}
    reads = []
    original_running_in = FailureProcess._running_in

    def running_in(self, pool, domain):  # the index against the running jobs, from scratch
        got = original_running_in(self, pool, domain)
        c, expected = self.cluster, {}
        for job, placement in c.placement.items():  # running jobs, in the order their current runs started
            if c.pool_of[job] != pool:
                continue
            parts = c.shared[pool].domain_of[placement] if c.share_units[job] else placement
            for d, chips in parts:
                if d == domain:
                    expected[job] = chips
        starts = [c.start_s[job] for job in expected]
        assert starts == sorted(starts)
        assert list(got.items()) == list(expected.items())
        reads.append(len(expected))
        return got

    monkeypatch.setattr(FailureProcess, "_running_in", running_in)
    results = run(data, tmp_path)
    assert results.summary["power_capping"]["shed_jobs"] > 0
    assert len(reads) > 20 and sum(reads) > 0


def test_gang_larger_than_pool_without_spares_is_rejected(base, tmp_path):
    """A 64-chip gang on a 64-chip pool with one spare server would wait for ever: it is refused before the run,
    with its reason counted; without the spare it runs."""
    results = run(one_gang(base, days=2, hot_spares={"gpu": 8}), tmp_path)
    job = results.jobs.iloc[0]
    assert job["state"] == "rejected"
    reason = "no-eligible-pool (gpu: larger-than-pool-without-spares)"
    assert job["reason"] == reason
    assert results.summary["jobs"]["rejected_by_reason"] == {"no-eligible-pool": 1}
    assert run(one_gang(base, days=2), tmp_path, "b.yaml").jobs.iloc[0]["state"] == "running"


def test_checkpoint_storage_is_shared_by_concurrent_savers(base, tmp_path, captured):
    """Two identical jobs on one site: the first starts alone and saves at the whole bandwidth; the second starts
    while the first saves a share s / (C + s) of its time, so it gets 1 / (1 + that share) of the bandwidth: its
    saves take longer, its run is longer and its goodput lower. With ``optimal`` the interval is Young/Daly's
    with the longer save."""
    data = one_gang(base, days=2, checkpoint_interval="30min")
    data["fleet"][0]["count"] = 128
    data["site"]["checkpoint_storage_gb_per_s"] = 1.0  # a slow store: saves of minutes
    data["workloads"]["training"]["generator"].update(jobs=2, duration_s={"fixed": DAY / 2})
    data["failures"]["rates_per_1000_chip_days"] = ZERO
    results = run(data, tmp_path)
    failures = captured[0].failures
    model = builtin_catalog().models["llama3-8b"]
    alone = model.params * model.train_bytes_per_param / 1e9
    assert failures.config.save_s[0] == failures.config.save_s[1] == pytest.approx(alone)
    first, second = sorted(range(2), key=lambda j: results.jobs.iloc[j]["start_s"])
    assert failures.run_save[first] == failures.config.save_s[first]  # alone on the site: unchanged
    share = alone / (1800 + alone)
    assert failures.run_save[second] == pytest.approx(alone * (1 + share))
    runs = results.jobs["end_s"] - results.jobs["start_s"]
    assert runs.iloc[first] == pytest.approx(DAY / 2 * (1 + alone / 1800))
    assert runs.iloc[second] == pytest.approx(DAY / 2 * (1 + alone * (1 + share) / 1800))
    assert results.jobs.iloc[second]["goodput_frac"] < results.jobs.iloc[first]["goodput_frac"]
    # Young/Daly with the shared save: C = sqrt(2 × n s × MTBF)
    captured.clear()
    data["failures"].update(checkpoint_interval="optimal", rates_per_1000_chip_days={**ZERO, "gpu": 1.0})
    run(data, tmp_path, "b.yaml")
    failures = captured[0].failures
    (job,), save = np.flatnonzero(np.asarray(failures.run_save) > alone), max(failures.run_save)
    mtbf = 1.0 / (1.0 / 1000.0 / DAY * 64)
    assert save > alone
    assert failures.run_interval[job] == pytest.approx(math.sqrt(2 * save * mtbf))
    assert failures.run_interval[job] > failures.interval_s(job, 0)  # the interval alone


def test_rented_burst_domains_fail_and_their_jobs_restart(base, tmp_path, captured):
    """A burst pool gets failures (it is not in ``pools_without_failures``) but only on rented domains: no
    interruption on it before its first domain comes online; its jobs restart from their checkpoints; servers in
    repair keep their domain rented and return (every chip of a rented domain is free, busy or in repair)."""
    from tests.test_burst import bursting

    data = bursting(jobs=120)
    data["duration"] = "10d"
    data["failures"] = {"rates_per_1000_chip_days": {**ZERO, "gpu": 300.0}, "repair_time": {"gpu": 6 * 3600},
                        "checkpoint_interval": "30min"}
    results = run(data, tmp_path)
    summary = results.summary["failures"]
    assert summary["pools_without_failures"] == []
    cluster = captured[0]
    failures, cloud = cluster.failures, 1
    events = results.burst
    first_online = events.loc[events["event"] == "online", "time_s"].min()
    on_cloud = [t for t, pool, _ in failures.interrupt_log if pool == cloud]
    assert on_cloud and min(on_cloud) >= first_online
    assert failures.repairs[cloud] > 0 and summary["interruptions_by_cause"]["gpu"] > 0
    jobs = results.jobs
    hit = jobs[jobs["interruptions"] > 0]
    assert (hit["preemptions"] >= hit["interruptions"]).all()
    assert (jobs.loc[jobs["state"] == "completed", "goodput_frac"] <= 1.0 + 1e-12).all()
    state = cluster.burst.by_pool[cloud]
    allocator = cluster.allocators[cloud]
    busy = sum(cluster.chips[j] for j in cluster.placement if cluster.pool_of[j] == cloud)
    down = sum(chips for pool, _, chips in failures.down_since.values() if pool == cloud)
    assert allocator.free_chips + busy + down == sum(state.sizes[d] for d in state.rented)
    assert_accounted(results)


def test_a_burst_pool_leaving_with_servers_in_repair_gives_them_back(base, tmp_path, captured):
    """Repairs far longer than the pool's window: when it leaves, its servers in repair come back at once so its
    domains can be given back (nothing is left rented, away or failing after it left)."""
    from tests.test_burst import bursting

    data = bursting(jobs=120)
    data["duration"] = "6d"
    data["fleet"][1]["online_until"] = "2026-01-04"
    data["failures"] = {"rates_per_1000_chip_days": {**ZERO, "gpu": 300.0}, "repair_time": {"gpu": 30 * DAY}}
    results = run(data, tmp_path)
    failures, cluster = captured[0].failures, captured[0]
    left = 3 * DAY
    assert any(end == left for pool, _, end, _ in failures.down_log if pool == 1)  # a repair cut short
    assert not [v for v in failures.down_since.values() if v[0] == 1]
    assert all(t < left for t, pool, _ in failures.interrupt_log if pool == 1)
    assert not cluster.burst.by_pool[1].rented and cluster.allocators[1].free_chips == 0
    assert results.summary["failures"]["repairs_by_pool"]["cloud"] == failures.repairs[1]
