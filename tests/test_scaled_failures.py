"""Failures of replica groups that are not on all run (``sim.serving.failures``): autoscaled LLM groups fail while
the autoscaler has a replica on (the stream at the maximum replicas, thinned; a replica back from repair follows
the autoscaler), windowed ranking groups while active (request level and fluid; chips in repair at the window's
end held), and serving-burst groups' rented copies while rented. Counts add up, the same seed draws the same
outages."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.kernels.serving_reference import SWITCH_FAIL, SWITCH_OFF, SWITCH_ON
from sim.serving import stage
from sim.serving.autoscale import GroupSwitches
from sim.serving.failures import (
    ServingFailures,
    autoscaled_switches,
    draw_outages,
    hold_scaled_in_repair,
    replica_seconds_down,
)
from sim.serving.llm.plan import GroupPlan
from tests.conftest import scenario_from
from tests.test_ranking import with_ranking
from tests.test_serving_failures import service_run

ALL = {c: 1000.0 for c in ("gpu", "memory", "network", "host", "software", "maintenance")}  # 6 per chip-day


def switches(*events) -> GroupSwitches:
    """``GroupSwitches`` from ``(time, replica, on)`` events (already in time order)."""
    t, r, on = zip(*events)
    return GroupSwitches(np.array(t, dtype=np.float64), np.array(r, dtype=np.int64), np.array(on, dtype=bool))


# --- the merge of outages with the autoscaler's events ---------------------------------------------------------

def test_autoscaler_events_of_a_replica_in_repair_are_dropped_and_its_return_follows_the_autoscaler():
    """Replica 1 is on over [0, 100) and [200, 300), then off. Out over (50, 150]: its scale-down at 100 is
    dropped, it returns off; out over (190, 250]: its scale-up at 200 is dropped, it returns on; out over
    (280, 350]: its scale-down at 300 is dropped, it returns off. Replica 0 is never touched."""
    events = switches((0.0, 0, True), (0.0, 1, True), (100.0, 1, False), (200.0, 1, True), (300.0, 1, False))
    rows = np.array([[50.0, 150.0, 1], [190.0, 250.0, 1], [280.0, 350.0, 1]])
    t, r, codes = autoscaled_switches(events, rows, 2)
    assert list(zip(t.tolist(), r.tolist(), codes.tolist())) == [
        (0.0, 0, SWITCH_ON), (0.0, 1, SWITCH_ON), (50.0, 1, SWITCH_FAIL), (150.0, 1, SWITCH_OFF),
        (190.0, 1, SWITCH_FAIL), (250.0, 1, SWITCH_ON), (280.0, 1, SWITCH_FAIL), (350.0, 1, SWITCH_OFF)]
    down, active = replica_seconds_down(rows, 2, 400.0, switches=events)
    assert active == 400.0 + 100.0 + 100.0
    assert down == (100.0 - 50.0) + (250.0 - 200.0) + (300.0 - 280.0)  # out while the autoscaler has it on


def test_a_repair_of_length_zero_fails_then_returns_and_a_return_comes_before_the_next_failure():
    events = switches((0.0, 0, True))
    rows = np.array([[10.0, 10.0, 0], [20.0, 30.0, 0], [30.0, 40.0, 0]])
    t, _, codes = autoscaled_switches(events, rows, 1)
    assert t.tolist() == [0.0, 10.0, 10.0, 20.0, 30.0, 30.0, 40.0]
    assert codes.tolist() == [SWITCH_ON, SWITCH_FAIL, SWITCH_ON, SWITCH_FAIL, SWITCH_ON, SWITCH_FAIL, SWITCH_ON]


def test_events_striking_a_replica_the_autoscaler_has_off_are_dropped():
    """Four replicas, only replica 0 ever on: every outage is replica 0's, at about a quarter of the rate the
    stream has at the maximum replicas (Poisson bounds); without the switches all four fail."""
    failures = ServingFailures(np.array([[1.0]]), (0.0,), None, (0,))
    plan = GroupPlan(0, 0, 0, 4, 1, {})
    fleet = type("F", (), {"pools": [type("P", (), {"chips_per_server": 1})()]})()
    on = switches((0.0, 0, True))
    rows = draw_outages([plan], failures, fleet, 1000.0, np.random.default_rng(3), {(0, 0): on})[(0, 0)]
    assert (rows[:, 2] == 0).all()
    assert 1000 - 4 * 32 < len(rows) < 1000 + 4 * 32  # 1 failure per chip-second on replica 0, 1,000 s
    everyone = draw_outages([plan], failures, fleet, 1000.0, np.random.default_rng(3))[(0, 0)]
    assert set(everyone[:, 2].astype(int)) == {0, 1, 2, 3}


def test_a_replica_switched_off_while_in_repair_keeps_its_chips_until_the_repair_ends():
    """One replica held (min_count 1); replicas 1 and 2 on from 300 s, off at 600 s and 900 s. Replica 1 out over
    [500, 700): released at 700, not 600; replica 2 out from 800 s past the 1,200 s horizon: never released."""
    events = switches((0.0, 0, True), (300.0, 1, True), (300.0, 2, True), (600.0, 1, False), (900.0, 2, False))
    schedule = [(300.0, 4, 0, 8, 2), (600.0, 4, 0, 8, -1), (900.0, 4, 0, 8, -1), (50.0, 3, 0, 8, 1)]
    assert not hold_scaled_in_repair(list(schedule), 4, events, np.array([[100.0, 200.0, 0]]), 3, 1, 1200.0)
    rows = np.array([[500.0, 700.0, 1], [800.0, 2000.0, 2]])
    assert hold_scaled_in_repair(schedule, 4, events, rows, 3, 1, 1200.0)
    assert sorted(schedule) == [(50.0, 3, 0, 8, 1), (300.0, 4, 0, 8, 2), (700.0, 4, 0, 8, -1)]


# --- autoscaled LLM groups in a run -----------------------------------------------------------------------------

def autoscaled(rates: dict | None) -> dict:
    """``service_run``'s chat service as a Llama 3 70B group on a shared pool for 3 h, autoscaled from 2 to 8
    replicas every 5 minutes on a bursty traffic (20-minute bursts at 4× the calm rate); repairs of 10 minutes."""
    data = service_run(rates, model="llama3-70b", traffic={"generator": {
        "rate_per_s": 10.0, "prompt_tokens": {"fixed": 800}, "output_tokens": {"fixed": 150},
        "bursty": {"burst_factor": 4.0, "mean_burst_s": 1200.0, "mean_calm_s": 1800.0}}})
    data["duration"] = "3h"
    data["fleet"][0]["sharing"] = "shared"
    data["workloads"]["inference"][0]["replicas"][0]["autoscale"] = {
        "min_count": 2, "interval": "5min", "target_utilization_frac": 0.7}
    if rates is not None:
        data["failures"]["repair_time"] = {c: "10min" for c in rates}
    return data


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    """Runs without and with failures, and the outages drawn and the autoscaler's events handed to the draw."""
    tmp = tmp_path_factory.mktemp("scaledfail")
    drawn, seen = {}, {}
    original = stage.draw_outages

    def keep(*args):
        drawn.update(original(*args))
        seen.update(args[5])
        return drawn

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stage, "draw_outages", keep)
        failing = sim.run(scenario_from(autoscaled(ALL), tmp, "failing.yaml"))
    plain = sim.run(scenario_from(autoscaled(None), tmp, "plain.yaml"))
    return plain, failing, dict(drawn), dict(seen)


def test_autoscaled_replicas_fail_only_while_on_and_counts_add_up(scaled):
    plain, failing, drawn, seen = scaled
    chat, before = failing.summary["inference"]["chat"], plain.summary["inference"]["chat"]
    rows = drawn[(0, 0)]
    assert chat["replica_outages"] == len(rows) > 10
    assert chat["rerouted_requests"] > 0 and 0 < chat["replica_availability"] < 1
    r = chat["requests"]
    assert r["offered"] == r["completed"] + r["rejected"] + r["unfinished"] == before["requests"]["offered"]
    assert chat.get("rejected_reasons", {}).get("replica failed", 0) == chat["lost_requests"]
    assert chat["replica_hours"] == before["replica_hours"]  # the autoscaler decides as without failures
    events = seen[(0, 0)]
    on = [(events.switch_s[events.switch_replica == k], events.switch_on[events.switch_replica == k])
          for k in range(8)]
    for fail, _, replica in rows:  # every outage strikes a replica the autoscaler has on
        times, state = on[int(replica)]
        assert state[np.searchsorted(times, fail, side="right") - 1]
    assert len({int(x) for x in rows[:, 2]}) > 2  # not only the two held replicas
    assert (~events.switch_on).any()  # the autoscaler did switch replicas off


def test_autoscaled_failures_same_seed_same_outages(scaled, tmp_path):
    again = sim.run(scenario_from(autoscaled(ALL), tmp_path))
    assert again.summary["inference"] == scaled[1].summary["inference"]


# --- windowed ranking groups --------------------------------------------------------------------------------------

def windowed_ranking(rates: dict | None, fidelity: str = "request", rate: float = 2.0) -> dict:
    """A ranking service over two days: 24 four-chip MTIA replicas active on the first day only, one 2-GPU replica
    all run; repairs of 10 minutes."""
    replicas = [{"pool": "mtia", "count": 24, "chips_per_replica": 4, "max_batch": 4, "max_queue_delay_ms": 20,
                 "active_until": "2026-01-02"},
                {"pool": "gpu", "count": 1, "chips_per_replica": 2, "max_batch": 32}]
    traffic = {"generator": {"rate_per_s": rate, "items_per_request": {"lognormal": {"median": 2000, "sigma": 0.5}}}}
    data = with_ranking({"router": {"kind": "round-robin"}, "replicas": replicas, "traffic": traffic,
                         "fidelity": fidelity}, duration="2d")
    data["fleet"][-1]["count"] = 96
    if rates is not None:
        data["failures"] = {"rates_per_1000_chip_days": rates, "repair_time": {c: "10min" for c in rates}}
    return data


def test_windowed_ranking_group_fails_only_while_active_and_holds_chips_in_repair(tmp_path, monkeypatch):
    drawn, held = {}, []
    original_draw, original_hold = stage.draw_outages, stage.hold_in_repair

    def keep(*args):
        drawn.update(original_draw(*args))
        return drawn

    def hold(schedule, group, window, *rest):
        held.append((group, window, original_hold(schedule, group, window, *rest)))
        return held[-1][2]

    monkeypatch.setattr(stage, "draw_outages", keep)
    monkeypatch.setattr(stage, "hold_in_repair", hold)
    results = sim.run(scenario_from(windowed_ranking(ALL), tmp_path))
    feed = results.summary["inference"]["feed"]
    day = 86400.0
    rows = drawn[(0, 0)]
    assert len(rows) > 100 and (rows[:, 0] < day).all()  # 96 chips × 6 a chip-day, on the first day only
    assert feed["replica_outages"] == len(rows) + len(drawn.get((0, 1), ()))
    r = feed["requests"]
    assert r["offered"] == r["completed"] + r["rejected"] + r["unfinished"]
    assert feed.get("rejected_reasons", {}).get("replica failed", 0) == feed["lost_requests"]
    down = (np.minimum(rows[:, 1], day) - rows[:, 0]).sum()
    gpu = drawn.get((0, 1), np.zeros((0, 3)))
    gpu_down = (np.minimum(gpu[:, 1], 2 * day) - gpu[:, 0]).sum()
    assert feed["replica_availability"] == pytest.approx(1 - (down + gpu_down) / (24 * day + 2 * day))
    in_repair = ((rows[:, 0] < day) & (rows[:, 1] > day)).any()
    assert held == [(0, (0.0, day), bool(in_repair))]  # the ranking group is the schedule's group 0


def test_fluid_windowed_ranking_group_serves_its_available_share(tmp_path):
    out = {}
    for name, rates in (("plain", None), ("failing", ALL)):
        data = windowed_ranking(rates, fidelity="fluid", rate=2000.0)
        out[name] = sim.run(scenario_from(data, tmp_path, f"{name}.yaml")).summary["inference"]["feed"]
    a, b = out["plain"], out["failing"]
    up = [1.0 / (1.0 + 6.0 / 86400.0 * chips * 600.0) for chips in (4, 2)]  # MTBF / (MTBF + MTTR) per group
    assert b["replica_availability"] == pytest.approx((24 * up[0] + up[1]) / 25)  # the windowed group counts
    assert b["latency_s"]["p99"] > a["latency_s"]["p99"] or b["requests"]["completed"] < a["requests"]["completed"]


# --- serving-burst groups -----------------------------------------------------------------------------------------

def test_rented_burst_replicas_fail_while_rented(tmp_path, monkeypatch):
    """The request-level LLM burst service of ``test_serving_burst``: each rental's copy fails while rented only
    (its own stream after the stage's draw), and the requests it holds are rerouted or lost."""
    from sim.serving import burst
    from tests.test_serving_burst import BURST, REQUEST

    text = REQUEST + BURST + "failures:\n  rates_per_1000_chip_days: {gpu: 1000, host: 1000, network: 1000}\n" \
        "  repair_time: {gpu: 10min, host: 10min, network: 10min}\n"
    drawn = {}
    original = burst.draw_outages

    def keep(*args):
        out = original(*args)
        drawn.update(out)
        return out

    monkeypatch.setattr(burst, "draw_outages", keep)
    path = tmp_path / "burst.yaml"
    path.write_text(text)
    results = sim.run(sim.load(path))
    chat = results.summary["inference"]["chat"]
    windows = chat["burst"]["windows_s"]
    assert windows and set(drawn) <= {(0, 2 + k) for k in range(len(windows))}  # the copies only
    rows = [(k, row) for k in range(len(windows)) for row in drawn.get((0, 2 + k), [])]
    assert len(rows) >= 3
    for k, (fail, _, replica) in rows:
        assert windows[k][0] <= fail < windows[k][1] and 0 <= replica < 8
    r = chat["requests"]
    assert r["offered"] == r["completed"] + r["rejected"] + r["unfinished"]
    assert chat["replica_outages"] >= len(rows) and chat["rerouted_requests"] > 0


def test_rented_ranking_burst_copies_fail_while_rented(tmp_path):
    """A request-level ranking service's burst copies (after its one other group) draw their outages once the
    rentals are known: inside each rental only, on its 4 replicas."""
    from sim.fleet import build_fleet
    from sim.rng import streams
    from sim.serving import FAMILIES
    from sim.serving.family import ServingContext
    from sim.validation.checks import scenario_catalog
    from tests.test_serving_burst import ranking

    scenario = ranking(tmp_path, fidelity="request", rate=8.0, duration="12h")
    catalog = scenario_catalog(scenario)
    fleet = build_fleet(scenario, catalog)
    pools = len(fleet.pools)
    failures = ServingFailures(np.full((pools, 1), 1 / 3600.0), (600.0,), None, (0,) * pools)  # 1 a chip-hour
    rngs = streams(scenario.seed)
    context = ServingContext(fleet=fleet, catalog=catalog, porting=scenario.porting, horizon_s=12 * 3600.0,
                             bin_width_s=3600.0, base_dir=tmp_path, rng=rngs["inference"],
                             ranking_rng=rngs["ranking"], start=scenario.start, failures=failures,
                             failure_rng=np.random.default_rng(5))
    run = FAMILIES["ranking"](0, scenario.workloads.inference[0], context)
    run.outages = {}
    attainment = np.ones(12)
    attainment[[3, 8]] = 0.5
    run._with_rentals(attainment)
    assert len(run.burst_windows) == 2
    for k, (begin, end) in enumerate(run.burst_windows):
        rows = run.outages[(0, 1 + k)]  # 8 rented chips × 1 an hour over a rental of 1 h
        assert len(rows) >= 1 and ((rows[:, 0] >= begin) & (rows[:, 0] < end)).all()
        assert set(rows[:, 2].astype(int)) <= {0, 1, 2, 3}
