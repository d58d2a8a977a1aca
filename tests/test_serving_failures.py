"""Failures of inference replicas (``sim.serving.failures``): the kernels' ``SWITCH_FAIL`` reroutes or loses the
requests a failing replica holds (both twins alike, counts add up), outages are drawn from their own stream
(training's failure draws do not move), and a run reports lost and rerouted requests and replica availability."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

import sim
from sim.kernels import serving_compiled, serving_reference
from sim.kernels.serving_reference import DONE, NOT_OFFERED, REJECTED, SWITCH_FAIL, SWITCH_ON, UNFINISHED
from sim.serving import stage
from tests.conftest import BASE, scenario_from
from tests.test_serving_kernel import one_group, random_case, serve

ALL = {c: 1000.0 for c in ("gpu", "memory", "network", "host", "software", "maintenance")}


def failing_case(seed: int):
    """``random_case`` with its switches replaced by replica failures and returns (some at one instant)."""
    arrival, prompt, output, groups, kwargs = random_case(seed)
    rng = np.random.default_rng(1000 + seed)
    n_replicas = sum(r for r, _ in groups)
    m = int(rng.integers(1, 6))
    fail = np.sort(rng.uniform(0, kwargs["horizon_s"], m))
    if seed % 3 == 0:
        fail = np.round(fail, 1)
    back = fail + rng.choice([0.0, 0.5, 5.0, 1e9], m)
    replica = rng.integers(0, n_replicas, m)
    times = np.concatenate([fail, back])
    codes = np.concatenate([np.full(m, SWITCH_FAIL), np.full(m, SWITCH_ON)]).astype(np.int8)
    order = np.argsort(times, kind="stable")
    kwargs["switches"] = (times[order], np.concatenate([replica, replica])[order].astype(np.int64), codes[order])
    return arrival, prompt, output, groups, kwargs


@pytest.mark.parametrize("seed", range(40))
def test_failures_compiled_matches_reference_and_counts_add_up(seed):
    arrival, prompt, output, groups, kwargs = failing_case(seed)
    ref = serve(serving_reference.serve_llm, arrival, prompt, output, groups, **kwargs)
    nb = serve(serving_compiled.serve_llm, arrival, prompt, output, groups, **kwargs)
    for a, b in zip(ref, nb):
        np.testing.assert_array_equal(a, b)
    status, replica, first, finish, *_, hit, _ = nb
    offered = status != NOT_OFFERED
    assert ((status == DONE) | (status == UNFINISHED) | (status == REJECTED))[offered].all()
    assert (finish[status == DONE] >= arrival[status == DONE]).all()
    assert (replica[status == DONE] >= 0).all()


def test_failure_reroutes_in_flight_requests_to_the_other_replica():
    """Replica 0 fails while serving: its requests finish on replica 1, later than without the failure."""
    arrival = np.arange(40) * 0.05
    prompt, output = np.full(40, 500, dtype=np.int64), np.full(40, 200, dtype=np.int64)
    groups = one_group(2, token_budget=2048, max_seqs=64, kv_capacity_tokens=10**6, chunked_prefill=True)
    switches = (np.array([1.0, 1e6]), np.array([0, 0], dtype=np.int64), np.array([SWITCH_FAIL, SWITCH_ON], np.int8))
    plain = serve(serving_compiled.serve_llm, arrival, prompt, output, groups, router=1)
    failed = serve(serving_compiled.serve_llm, arrival, prompt, output, groups, router=1, switches=switches)
    moved = failed[8] > 0
    assert moved.sum() > 5
    assert (failed[0][moved] == DONE).all() and (failed[1][moved] == 1).all()
    assert (plain[1][moved] == 0).all()
    assert failed[3][moved].mean() > plain[3][moved].mean()
    assert (failed[1][arrival > 1.0] == 1).all()  # nothing goes to the failed replica until it returns


def test_failure_of_the_only_replica_loses_its_requests():
    arrival = np.arange(10) * 0.01
    prompt, output = np.full(10, 500, dtype=np.int64), np.full(10, 400, dtype=np.int64)
    groups = one_group(1, token_budget=2048, max_seqs=64, kv_capacity_tokens=10**6, chunked_prefill=True)
    switches = (np.array([0.5, 100.0]), np.array([0, 0], dtype=np.int64), np.array([SWITCH_FAIL, SWITCH_ON], np.int8))
    for kernel in (serving_reference, serving_compiled):
        status, replica, first, *_, hit, _ = serve(kernel.serve_llm, np.append(arrival, 200.0), np.append(prompt, 10),
                                                np.append(output, 10), groups, switches=switches)
        assert (status[:10] == REJECTED).all() and (hit[:10] == 1).all() and np.isnan(first[:10]).all()
        assert status[10] == DONE and hit[10] == 0  # after the repair the replica serves again


def service_run(rates: dict | None, spares: dict | None = None, fidelity: str = "request", **service) -> dict:
    """Eight 8-chip llama3-8b replicas on a 96-chip H100 pool for 30 min, at rates that fail a few replicas."""
    data = copy.deepcopy(BASE)
    data["duration"] = "30min"
    data["fleet"] = [{"name": "gpu", "accelerator": "h100-sxm", "count": 96, "chips_per_server": 8,
                      "servers_per_rack": 2},
                     {"name": "tpu", "accelerator": "tpu-v6e", "count": 16, "chips_per_server": 8,
                      "servers_per_rack": 2}]
    data["workloads"]["inference"] = [{
        "name": "chat", "model": "llama3-8b", "stack": "portable", "fidelity": fidelity,
        "replicas": [{"pool": "gpu", "count": 8, "chips_per_replica": 8}],
        "traffic": {"generator": {"rate_per_s": 40.0, "prompt_tokens": {"lognormal": {"median": 800, "sigma": 0.8}},
                                  "output_tokens": {"exponential": {"mean": 150}}}},
        "slo": {"ttft_p99_ms": 500, "tpot_p99_ms": 60}, **service}]
    if rates is not None:
        data["failures"] = {"rates_per_1000_chip_days": rates, "hot_spares": spares or {}}
    return data


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("servefail")
    return {name: sim.run(scenario_from(data, tmp, f"{name}.yaml")) for name, data in {
        "plain": service_run(None), "zero": service_run({c: 0.0 for c in ALL}), "failing": service_run(ALL),
        "spares": service_run(ALL, {"gpu": 16})}.items()}


def test_no_failing_replica_leaves_the_service_unchanged(runs):
    plain, zero = runs["plain"].summary["inference"]["chat"], runs["zero"].summary["inference"]["chat"]
    assert "lost_requests" not in plain and "replica_availability" not in plain
    assert zero["lost_requests"] == zero["rerouted_requests"] == zero["replica_outages"] == 0
    assert zero["replica_availability"] == 1.0
    assert {k: v for k, v in zero.items() if k not in ("lost_requests", "rerouted_requests", "replica_outages",
                                                       "replica_availability", "rejected_reasons")} == plain
    pd.testing.assert_frame_equal(runs["plain"].requests, runs["zero"].requests)


def test_outages_reroute_requests_raise_latency_and_counts_add_up(runs):
    plain, chat = runs["plain"].summary["inference"]["chat"], runs["failing"].summary["inference"]["chat"]
    r = chat["requests"]
    assert r["offered"] == r["completed"] + r["rejected"] + r["unfinished"] == plain["requests"]["offered"]
    assert chat["replica_outages"] >= 2 and chat["rerouted_requests"] > 0
    assert chat["replica_availability"] < 1.0
    assert sum(chat.get("rejected_reasons", {}).values()) == r["rejected"]
    assert chat.get("rejected_reasons", {}).get("replica failed", 0) == chat["lost_requests"]
    assert chat["ttft_s"]["p99"] > plain["ttft_s"]["p99"]
    table = runs["failing"].requests
    assert table["state"].value_counts().sum() == r["offered"]


def test_hot_spares_bring_replicas_back_at_once(runs):
    """A spare replaces a failed replica at once (its requests are still rerouted); with no spare left it is out;
    struck replicas that are back count again, so there are at least as many outages."""
    chat, failing = runs["spares"].summary["inference"]["chat"], runs["failing"].summary["inference"]["chat"]
    assert chat["replica_outages"] >= failing["replica_outages"] and chat["rerouted_requests"] > 0
    assert chat["replica_availability"] > failing["replica_availability"]


def test_same_seed_same_failures_and_training_draws_unchanged(runs, tmp_path, monkeypatch):
    scenario = scenario_from(service_run(ALL), tmp_path)
    again = sim.run(scenario)
    assert again.summary["inference"] == runs["failing"].summary["inference"]
    other = sim.run(scenario.with_overrides({"seed": 7})).summary["inference"]["chat"]
    assert other["replica_outages"] != again.summary["inference"]["chat"]["replica_outages"] or \
        other["rerouted_requests"] != again.summary["inference"]["chat"]["rerouted_requests"]
    monkeypatch.setattr(stage, "draw_outages", lambda *args: {})  # serving's draws gone: training's stay the same
    quiet = sim.run(scenario)
    assert quiet.summary["inference"]["chat"]["replica_outages"] == 0
    pd.testing.assert_frame_equal(quiet.jobs, again.jobs)
    assert quiet.summary["failures"] == again.summary["failures"]


def test_fluid_capacity_falls_with_availability(tmp_path):
    heavy = {"traffic": {"generator": {"rate_per_s": 400.0, "prompt_tokens": {"fixed": 800},
                                       "output_tokens": {"fixed": 150}}}}
    plain = sim.run(scenario_from(service_run(None, fidelity="fluid", **heavy), tmp_path, "a.yaml"))
    failing = sim.run(scenario_from(service_run(ALL, fidelity="fluid", **heavy), tmp_path, "b.yaml"))
    a, b = plain.summary["inference"]["chat"], failing.summary["inference"]["chat"]
    assert "replica_availability" not in a and 0 < b["replica_availability"] < 1
    assert b["requests"]["completed"] < a["requests"]["completed"] or b["ttft_s"]["p99"] > a["ttft_s"]["p99"]
    zero = sim.run(scenario_from(service_run({c: 0.0 for c in ALL}, fidelity="fluid", **heavy), tmp_path, "c.yaml"))
    z = zero.summary["inference"]["chat"]
    assert z.pop("replica_availability") == 1.0 and z == a



@pytest.mark.parametrize("group, spares, words", [
    ({"active_until": "2026-01-02"}, 16, "with autoscaled, windowed or burst inference replicas"),
    ({}, 32, "less the 64 its inference replicas hold"),
])
def test_hot_spares_on_a_replica_pool_are_checked(tmp_path, group, spares, words):
    data = service_run(ALL, {"gpu": spares})
    data["workloads"]["inference"][0]["replicas"][0].update(group)
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(data, tmp_path)
    message = str(info.value)
    assert "s.yaml:" in message and "failures.hot_spares.gpu" in message and words in message


def test_windowed_group_fails_only_while_active_and_holds_chips_in_repair(tmp_path, monkeypatch):
    """A group active on the first day of two fails at the per-chip rates then only: every outage starts inside
    its window, availability is over the window, and the chips of replicas still in repair at its end go back to
    training when their repair ends (the reservation schedule), not at the window's end."""
    from sim.serving import failures as serving_failures

    data = service_run(ALL, traffic={"generator": {"rate_per_s": 0.2, "prompt_tokens": {"fixed": 200},
                                                   "output_tokens": {"fixed": 20}}})
    data["duration"] = "2d"
    data["workloads"]["inference"][0]["replicas"][0]["active_until"] = "2026-01-02"
    drawn = {}
    original = stage.draw_outages

    def keep(*args):
        drawn.update(original(*args))
        return drawn

    monkeypatch.setattr(stage, "draw_outages", keep)
    results = sim.run(scenario_from(data, tmp_path))
    chat = results.summary["inference"]["chat"]
    rows = drawn[(0, 0)]
    day = 86400.0
    assert len(rows) == chat["replica_outages"] > 10  # ~64 chips x 1 failure per chip-day
    assert (rows[:, 0] < day).all()
    down = (np.minimum(rows[:, 1], day) - rows[:, 0]).sum()
    assert chat["replica_availability"] == pytest.approx(1 - down / (8 * day))
    table = results.requests  # a replica back from repair after the window's end takes nothing
    assert not ((table["arrival_s"] >= day) & (table["state"] == "completed")).any()
    # the schedule: released at the window's end but for those in repair then, each at its repair's end
    schedule = [(day, 0, 0, 8, -8)]
    late = rows[(rows[:, 0] < day) & (rows[:, 1] > day)]
    latest = {}
    for fail, back, replica in rows:
        if fail < day < back:
            latest[int(replica)] = back
    assert len(late) and serving_failures.hold_in_repair(schedule, 0, (0.0, day), 8, 8, rows, 2 * day)
    assert sum(-e[4] for e in schedule) == 8 - sum(1 for b in latest.values() if b >= 2 * day)
    assert sorted(e[0] for e in schedule if e[0] > day) == sorted(b for b in latest.values() if b < 2 * day)


def test_fluid_windowed_group_serves_its_available_share(tmp_path):
    """At the fluid fidelity a windowed group is up its availability share while active, as a fixed one."""
    heavy = {"traffic": {"generator": {"rate_per_s": 400.0, "prompt_tokens": {"fixed": 800},
                                       "output_tokens": {"fixed": 150}}}}
    out = {}
    for name, rates in (("plain", None), ("failing", ALL)):
        data = service_run(rates, fidelity="fluid", **heavy)
        data["duration"] = "2d"
        data["workloads"]["inference"][0]["replicas"][0]["active_until"] = "2026-01-02"
        out[name] = sim.run(scenario_from(data, tmp_path, f"{name}.yaml")).summary["inference"]["chat"]
    a, b = out["plain"], out["failing"]
    assert 0 < b["replica_availability"] < 1
    assert b["requests"]["completed"] < a["requests"]["completed"] or b["ttft_s"]["p99"] > a["ttft_s"]["p99"]
