"""Priorities under a site power cap, inference counted against the cap as it draws, and throttled replicas
(``sim.training.capping``, ``sim.serving.throttle``)."""

from __future__ import annotations

import pytest

import sim
from sim.catalog import builtin_catalog
from sim.fleet import build_fleet
from sim.policies.capping import power_frac
from tests.conftest import scenario_from
from tests.test_engine import assert_accounted

TOLERANCE = 1e-9  # relative, as sim.fleet.build.CAP_TOLERANCE: bin means of site power against the cap


def two_jobs(base, priority=None) -> dict:
    """Two 8-chip compute-bound jobs on one 16-chip H100 pool, overlapping for hours."""
    base["seed"] = 2
    base["fleet"] = base["fleet"][:1]
    base["workloads"]["training"]["generator"].update(
        jobs=2, arrival_rate_per_hour=6, chips={8: 1.0}, stacks={"cuda": 1.0}, models={"resnet50": 1.0},
        duration_s={"lognormal": {"median": 20000, "sigma": 0.01}})
    if priority is not None:
        base["workloads"]["training"]["generator"]["priority"] = priority
    return base


def capped(data, tmp_path, cap_mw, kind="throttle", name="c.yaml"):
    data = {**data, "site": {**data["site"], "power_cap_mw": cap_mw},
            "policy": {**data["policy"], "power_cap": {"kind": kind}}}
    return sim.run(scenario_from(data, tmp_path, name))


def test_the_high_priority_job_keeps_its_clock_while_the_low_one_is_slowed(base, tmp_path):
    fleet = build_fleet(scenario_from(two_jobs(base), tmp_path, "f.yaml"), builtin_catalog())
    cap_mw = (fleet.committed_floor_w + 1.5 * 8 * fleet.busy_increment_facility_w(0)) / 1e6  # one job and a half
    plain = capped(two_jobs(base), tmp_path, cap_mw, name="plain.yaml")
    ranked = capped(two_jobs(base, {5: 0.5, 0: 0.5}), tmp_path, cap_mw, name="ranked.yaml")
    first, last = plain.jobs.sort_values("start_s")["job_id"].tolist()
    throttled = plain.capping[plain.capping["action"] == "throttle"]
    assert set(throttled["job"]) == {plain.jobs.index[plain.jobs["job_id"] == last][0]}  # today: last started
    assert "priority" not in plain.jobs.columns  # default priorities: jobs.csv as before
    jobs = ranked.jobs.set_index("job_id")
    assert jobs.loc[first, "priority"] == 0 and jobs.loc[last, "priority"] == 5  # the later job ranks higher
    rows = ranked.capping[ranked.capping["action"] == "throttle"]
    low = ranked.jobs.index[ranked.jobs["job_id"] == first][0]
    assert set(rows["job"]) == {low} and set(rows["priority"]) == {0}  # the first started is slowed instead
    # while both run, the high-priority job runs at full speed: its run time is its unthrottled one
    assert jobs.loc[last, "end_s"] - jobs.loc[last, "start_s"] == pytest.approx(
        plain.jobs.set_index("job_id").loc[first, "end_s"] - plain.jobs.set_index("job_id").loc[first, "start_s"],
        rel=0.05)
    assert (ranked.jobs["end_s"] - ranked.jobs["start_s"]).max() > 1.2 * 20000
    assert_accounted(ranked)


def test_shed_pauses_the_lowest_priority_first(base, tmp_path):
    fleet = build_fleet(scenario_from(two_jobs(base), tmp_path, "f.yaml"), builtin_catalog())
    high = (fleet.committed_floor_w + 2.5 * 8 * fleet.busy_increment_facility_w(0)) / 1e6
    low = (fleet.committed_floor_w + 1.2 * 8 * fleet.busy_increment_facility_w(0)) / 1e6
    data = two_jobs(base, {5: 0.5, 0: 0.5})
    data["workloads"]["training"]["generator"]["duration_s"] = {"lognormal": {"median": 150000, "sigma": 0.01}}
    results = capped(data, tmp_path, {"2026-01-01": high, "2026-01-02": low}, "shed")  # both run at the drop
    shed = results.capping[results.capping["action"] == "shed"]
    first = results.jobs.sort_values("start_s").index[0]
    assert list(shed["job"]) == [first] and list(shed["priority"]) == [0]  # not the last started: the lowest


def serving_site(fidelity="fluid", priority=None, **service) -> dict:
    """A 16-chip H100 pool: 8 chips serve a chat model with a diurnal load, training uses the rest and the TPUs."""
    from tests.test_inference import with_service

    chat = {"replicas": [{"pool": "gpu", "count": 8, "chips_per_replica": 1}], "fidelity": fidelity,
            "traffic": {"generator": {"rate_per_s": 6.0, "diurnal": {"amplitude_frac": 0.8, "peak_hour": 14},
                                      "prompt_tokens": {"lognormal": {"median": 800, "sigma": 0.8}},
                                      "output_tokens": {"exponential": {"mean": 150}}}}, **service}
    if priority is not None:
        chat["priority"] = priority
    data = with_service(chat, duration="2d")
    data["workloads"]["training"]["generator"].update(jobs=120, arrival_rate_per_hour=6)
    data["outputs"] = {"timeseries_interval": "1h"}
    return data


def floor_mw(data, tmp_path) -> tuple[float, float]:
    """(idle floor, inference reserved at full load) of the site [MW]."""
    fleet = build_fleet(scenario_from(data, tmp_path, "f.yaml"), builtin_catalog())
    return fleet.idle_facility_w / 1e6, (fleet.committed_floor_w - fleet.idle_facility_w) / 1e6


@pytest.mark.parametrize("kind", ["throttle", "shed"])
def test_site_power_with_inference_as_it_draws_stays_within_the_cap_in_every_bin(tmp_path, kind):
    """Site power per bin — idle, training at its clocks, inference at its bin's mean busy power — stays within the
    cap (to ``TOLERANCE``: bins are means, a peak within a bin is not seen); and training uses power the reservation
    of inference at full load would have kept from it (jobs run under a cap below that reservation)."""
    data = serving_site()
    idle, reserved = floor_mw(data, tmp_path)
    cap = idle + 0.9 * reserved  # below the old floor: every job would have been rejected
    results = capped(data, tmp_path, cap, kind)
    series = results.timeseries
    assert (series["facility_power_kw"] <= series["power_cap_kw"] * (1 + TOLERANCE)).all()
    assert results.summary["peak_facility_power_kw"] <= cap * 1e3 * (1 + TOLERANCE)
    assert results.summary["jobs"]["completed"] > 10
    assert results.summary["power_capping"]["max_committed_over_cap_w"] <= cap * 1e6 * TOLERANCE
    assert results.summary["power_capping"]["throttled_replica_chip_hours"] == 8 * 48  # below full load: slowed
    assert_accounted(results)


def test_training_gets_the_headroom_inference_leaves(tmp_path):
    """Under shed, on a site whose cap leaves room for 3 chips besides inference at full load, 4- and 8-chip jobs
    (rejected before: they could never start beside the reservation) run in the hours inference draws less."""
    data = serving_site()
    data["fleet"] = data["fleet"][:1]
    data["workloads"]["training"]["generator"].update(stacks={"cuda": 1.0}, chips={4: 0.5, 8: 0.5}, jobs=60)
    fleet = build_fleet(scenario_from(data, tmp_path, "f.yaml"), builtin_catalog())
    cap = (fleet.committed_floor_w + 3 * fleet.busy_increment_facility_w(0)) / 1e6
    results = capped(data, tmp_path, cap, "shed")
    assert results.summary["jobs"]["completed"] > 0
    assert results.summary["power_capping"]["throttled_replica_chip_hours"] == 0.0  # inference fits at full load
    series = results.timeseries
    assert (series["facility_power_kw"] <= series["power_cap_kw"] * (1 + TOLERANCE)).all()


def test_a_service_below_training_priority_is_slowed_and_its_latency_rises(tmp_path):
    data, slowed = serving_site("request"), serving_site("request", priority=-1)
    data["duration"] = slowed["duration"] = "1h"
    idle, reserved = floor_mw(data, tmp_path)
    cap = idle + 1.5 * reserved  # inference at full load fits: only its priority slows it
    high = capped(data, tmp_path, cap, name="high.yaml")
    low = capped(slowed, tmp_path, cap, name="low.yaml")
    a, b = high.summary["inference"]["chat"], low.summary["inference"]["chat"]
    assert high.summary["power_capping"]["throttled_replica_chip_hours"] == 0.0
    assert low.summary["power_capping"]["throttled_replica_chip_hours"] == pytest.approx(8 * 1)
    assert b["ttft_s"]["mean"] > a["ttft_s"]["mean"] and b["ttft_s"]["p99"] > a["ttft_s"]["p99"]
    assert b["tpot_s"]["mean"] / a["tpot_s"]["mean"] < b["ttft_s"]["mean"] / a["ttft_s"]["mean"]  # decode loses less
    assert (low.timeseries["throttled_chips.h100-sxm"] >= 8 - 1e-9).all()
    assert low.summary["peak_facility_power_kw"] <= cap * 1e3 * (1 + TOLERANCE)


def test_a_cap_drop_below_inference_at_full_load_slows_the_lowest_priority_service(tmp_path):
    """Two services of 8 chips each; the cap drops on day 2 below their full-load draw: the lower-priority service
    is slowed from the drop on (its copy before the drop at full clock), the other keeps its clock."""
    data = serving_site()
    data["fleet"][0]["count"] = 24
    second = {**data["workloads"]["inference"][0], "name": "batch", "priority": 50}
    data["workloads"]["inference"].append(second)
    data["workloads"]["training"] = None
    idle, reserved = floor_mw(data, tmp_path)
    uncapped = sim.run(scenario_from(data, tmp_path, "u.yaml"))
    cap = {"2026-01-01": idle + 2 * reserved, "2026-01-02": idle + 0.75 * reserved}
    results = capped(data, tmp_path, cap)
    capping = results.summary["power_capping"]
    assert capping["throttled_replica_chip_hours"] == pytest.approx(8 * 24)  # batch's 8 chips on day 2
    chat, batch = (results.summary["inference"][s] for s in ("chat", "batch"))
    free_chat, free_batch = (uncapped.summary["inference"][s] for s in ("chat", "batch"))
    assert batch["ttft_s"]["mean"] > free_batch["ttft_s"]["mean"]
    assert batch["ttft_s"]["p99"] > free_batch["ttft_s"]["p99"]
    assert chat["ttft_s"] == free_chat["ttft_s"]  # the higher-priority service keeps its clock
    series = results.timeseries
    assert (series["facility_power_kw"] <= series["power_cap_kw"] * (1 + TOLERANCE)).all()
    day2 = series["time_s"] >= 86400
    assert (series.loc[day2, "busy_power_frac.h100-sxm"] < 1).all() and (series.loc[~day2, "throttled_chips.h100-sxm"]
                                                                           == 0).all()


def test_replica_power_check_counts_slowable_replicas_at_the_minimum_clock(tmp_path):
    data = serving_site()
    idle, reserved = floor_mw(data, tmp_path)
    data["site"]["power_cap_mw"] = idle + 0.5 * reserved  # above the minimum clock's draw, below full load
    with pytest.raises(sim.ScenarioError, match="serving is not capped while it runs"):
        scenario_from(data, tmp_path, "admission.yaml")
    data["policy"]["power_cap"] = {"kind": "throttle", "min_clock_frac": 0.5}
    assert power_frac(0.5) < 0.5
    scenario_from(data, tmp_path, "throttle.yaml")  # accepted: the replicas may be slowed
    data["site"]["power_cap_mw"] = idle + 0.2 * reserved
    with pytest.raises(sim.ScenarioError, match="counted at min_clock_frac 0.5"):
        scenario_from(data, tmp_path, "low.yaml")


def test_bad_priority_is_located(base, tmp_path):
    base["workloads"]["training"]["generator"]["priority"] = {0: 0.5, 5_000_000: 0.5}
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(base, tmp_path, "bad.yaml")
    (error,) = [str(p) for p in info.value.problems]
    assert "bad.yaml:" in error and "priority" in error and "found priority 5000000" in error


@pytest.mark.parametrize("mix, words", [({0: -1.0, 5: 2.0}, "sum to 1"), ({}, "at least one entry"),
                                         ({0: 0.5, 5: 0.6}, "they sum to 1.1")])
def test_a_bad_priority_mix_is_located(base, tmp_path, mix, words):
    """A priority mix is checked as the other mixes are (negative weights and an empty mix raised from numpy's
    choice, weights summing to 1.1 ran)."""
    base["workloads"]["training"]["generator"]["priority"] = mix
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(base, tmp_path, "bad.yaml")
    (error,) = [str(p) for p in info.value.problems]
    assert "bad.yaml:" in error and "generator.priority" in error and words in error


def test_default_priorities_given_explicitly_change_nothing(tmp_path):
    """``priority: 0`` on the generator and ``priority: 100`` on a service are the defaults: the same bytes."""
    data = serving_site()
    data["site"]["power_cap_mw"] = sum(floor_mw(data, tmp_path)) * 1.2
    data["policy"]["power_cap"] = {"kind": "throttle"}
    plain = sim.run(scenario_from(data, tmp_path, "plain.yaml"))
    data["workloads"]["training"]["generator"]["priority"] = 0
    data["workloads"]["inference"][0]["priority"] = 100
    explicit = sim.run(scenario_from(data, tmp_path, "explicit.yaml"))
    a = plain.save(tmp_path / "a", plots=False, report=False)
    b = explicit.save(tmp_path / "b", plots=False, report=False)
    for name in ("summary.json", "jobs.csv", "timeseries.csv", "capping.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_in_flight_requests_finish_across_a_clock_change(tmp_path):
    """Request level, a cap drop one hour before the end: the copy at full clock drains what it holds while the
    slowed copy takes the new requests; no request is lost or rejected at the change, and latency rises after it."""
    data = serving_site("request")
    data["workloads"]["inference"][0]["traffic"]["generator"]["rate_per_s"] = 0.3
    data["workloads"]["inference"][0]["traffic"]["generator"].pop("diurnal")
    data["duration"] = "25h"
    data["workloads"]["training"] = None
    idle, reserved = floor_mw(data, tmp_path)
    results = capped(data, tmp_path, {"2026-01-01": idle + 2 * reserved, "2026-01-02": idle + 0.5 * reserved})
    chat = results.summary["inference"]["chat"]
    r = chat["requests"]
    assert r["offered"] == r["completed"] + r["rejected"] + r["unfinished"] and r["rejected"] == 0
    assert results.summary["power_capping"]["throttled_replica_chip_hours"] == pytest.approx(8 * 1)
    requests = results.requests
    after = requests["arrival_s"] >= 86400
    ttft = requests["first_token_s"] - requests["arrival_s"]
    assert ttft[after].mean() > ttft[~after & (requests["arrival_s"] >= 82800)].mean()


@pytest.mark.parametrize("fidelity", ["fluid", "request"])
def test_a_slowed_service_counts_its_energy_at_the_clocks_power(tmp_path, fidelity):
    """A service slowed to min_clock_frac for the whole run draws power_frac(f) of its busy increment, in its own
    energy per token and cost as in the site's power (it counted the full increment: more energy per token than
    unslowed). Its IT energy is then at most its chips idle plus power_frac(f) of the increment, all run."""
    data, slowed = serving_site(fidelity), serving_site(fidelity, priority=-1)
    data["duration"] = slowed["duration"] = "2h"
    idle, reserved = floor_mw(data, tmp_path)
    cap = idle + 1.5 * reserved  # inference at full load fits: only its priority slows it
    low = capped(slowed, tmp_path, cap, name="low.yaml")
    chat = low.summary["inference"]["chat"]
    assert low.summary["power_capping"]["throttled_replica_chip_hours"] == pytest.approx(8 * 2)
    pool = build_fleet(scenario_from(data, tmp_path, "f.yaml"), builtin_catalog()).pools[0]
    ceiling_kwh = 8 * 2 * (pool.idle_w_with_server
                          + power_frac(0.5) * (pool.busy_w_with_server - pool.idle_w_with_server)) / 1e3
    it_kwh = chat["it_energy_per_1k_tokens_kwh"] * chat["output_tokens"] / 1e3
    assert it_kwh <= ceiling_kwh * (1 + 1e-9)
    high = capped(data, tmp_path, cap, name="high.yaml").summary["inference"]["chat"]
    assert chat["it_energy_per_1k_tokens_kwh"] < high["it_energy_per_1k_tokens_kwh"]
