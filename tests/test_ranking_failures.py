"""Failures of ranking replicas (``sim.serving.failures``): both ranking kernel twins reroute or lose the queries a
failing replica holds (alike on random cases, counts add up), a run reports lost and rerouted queries and replica
availability, the same seed draws the same outages, and the fluid fidelity serves by availability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim
from sim.kernels import ranking_compiled, ranking_reference
from sim.kernels.ranking_reference import DONE, NOT_OFFERED, REJECTED, ROUTER_JSQ, UNFINISHED
from tests.conftest import scenario_from
from tests.test_ranking import with_ranking
from tests.test_ranking_kernel import ROUTERS, random_inputs, serve, single_replica

ALL = {c: 1000.0 for c in ("gpu", "memory", "network", "host", "software", "maintenance")}
NAMES = ["status", "replica", "finish_s", "busy_s", "batches", "hit", "compute_s"]


def failing_inputs(seed: int):
    """``random_inputs`` with replica failures and returns (some at one instant, some at once back); a draw that
    strikes a replica still out is dropped, as the outage draws (``sim.serving.failures``) never do that."""
    arrival, items, params = random_inputs(seed)
    rng = np.random.default_rng(2000 + seed)
    m = int(rng.integers(1, 6))
    fail = np.sort(rng.uniform(0, params["horizon_s"], m))
    if seed % 3 == 0:
        fail = np.round(fail, 1)
    back = fail + rng.choice([0.0, 0.5, 3.0, 1e9], m)
    which = rng.integers(0, len(params["overhead_s"]), m).astype(np.int64)
    down_until, keep = np.zeros(len(params["overhead_s"])), np.zeros(m, dtype=bool)
    for k in range(m):
        if fail[k] >= down_until[which[k]]:
            keep[k], down_until[which[k]] = True, back[k]
    params.update(fail_s=fail[keep], back_s=back[keep], fail_replica=which[keep])
    return arrival, items, params


@pytest.mark.parametrize("router", ROUTERS)
@pytest.mark.parametrize("seed", range(10))
def test_failing_twins_agree_and_counts_add_up(seed, router):
    arrival, items, params = failing_inputs(seed)
    expected = serve(ranking_reference, arrival, items, router, **params)
    actual = serve(ranking_compiled, arrival, items, router, **params)
    for name, a, b in zip(NAMES, expected, actual):
        np.testing.assert_array_equal(a, b, err_msg=name)
    status, replica, finish, busy, batches, hit, _ = actual
    offered = status != NOT_OFFERED
    assert np.isin(status[offered], [DONE, UNFINISHED, REJECTED]).all()
    assert (replica[status == DONE] >= 0).all()
    assert (finish[status == DONE] >= arrival[status == DONE]).all()  # no batch starts in the past, central too
    assert (busy >= -1e-9).all() and (busy.sum(axis=1) <= params["horizon_s"] + 1e-9).all()
    assert (hit[~offered] == 0).all() and hit.sum() >= 0


@pytest.mark.parametrize("router", ROUTERS)
@pytest.mark.parametrize("seed", range(4))
def test_twins_agree_when_batches_span_several_bins(seed, router):
    """Bins of 4 ms under batches of up to ~0.1 s: a batch's busy and compute seconds spread over several bins,
    and a failure takes an abandoned batch's rest back from several bins, alike in both twins (bit for bit).
    Frequent failures also reroute queued requests whose old queue went on after them (the compiled queues
    are linked lists: a request pushed again must not keep its old successor)."""
    arrival, items, params = random_inputs(seed)
    rng = np.random.default_rng(3000 + seed)
    down_until = np.zeros(len(params["overhead_s"]))
    rows = []  # frequent outages, so that many strike a batch in flight; none of a replica already out (as drawn)
    for t, r, d in zip(np.sort(rng.uniform(0, params["horizon_s"], 40)), rng.integers(0, len(down_until), 40),
                       rng.choice([0.0, 0.05, 0.5], 40)):
        if down_until[r] <= t:
            rows.append((t, t + d, r))
            down_until[r] = t + d
    fail, back, replica = (np.array(c) for c in zip(*rows))
    params.update(bin_width_s=0.004, fail_s=fail, back_s=back, fail_replica=replica.astype(np.int64))
    expected = serve(ranking_reference, arrival, items, router, **params)
    actual = serve(ranking_compiled, arrival, items, router, **params)
    for name, a, b in zip(NAMES, expected, actual):
        np.testing.assert_array_equal(a, b, err_msg=name)
    status, replica, finish, busy, _, hit, compute = actual
    done = status == DONE
    lengths = [ranking_reference.batch_time_s(items[done & (replica == r) & (finish == f)].sum(),
                                              *(params[k][r] for k in ("overhead_s", "compute_s_per_item",
                                                                       "weights_s", "embedding_s_per_item")))
               for r, f in set(zip(replica[done], finish[done]))]
    assert max(lengths) > 3 * params["bin_width_s"]  # the case does what its name says
    assert hit.sum() > 0 and (compute <= busy + 1e-12).all()


def test_failure_reroutes_the_batch_and_queue_to_the_other_replica():
    """Replica 0 fails with a batch and a queue: they finish on replica 1, later than without the failure;
    it takes nothing until it is back."""
    arrival = np.arange(60) * 0.004
    items = np.full(60, 100, dtype=np.int64)
    params = single_replica(max_batch=[4], max_delay_s=[0.0])
    params = {k: (np.repeat(v, 2) if isinstance(v, np.ndarray) and len(v) == 1 else v) for k, v in params.items()}
    plain = serve(ranking_compiled, arrival, items, ROUTER_JSQ, **params)
    params.update(fail_s=np.array([0.05]), back_s=np.array([0.2]), fail_replica=np.array([0], dtype=np.int64))
    for kernel in (ranking_reference, ranking_compiled):
        status, replica, finish, busy, _, hit, _ = serve(kernel, arrival, items, ROUTER_JSQ, **params)
        moved = hit > 0
        assert moved.sum() >= 2 and (status[moved] == DONE).all() and (replica[moved] == 1).all()
        assert (plain[1][moved] == 0).all()
        assert finish[moved].mean() > plain[2][moved].mean()
        assert (replica[(arrival >= 0.05) & (arrival < 0.2)] == 1).all()
        assert (replica[arrival >= 0.2] == 0).any()  # back after its repair
        assert busy[0].sum() < plain[3][0].sum()


def test_failure_of_the_only_replica_loses_its_queries_until_it_returns():
    arrival = np.append(np.arange(10) * 0.001, 50.0)
    items = np.full(11, 5000, dtype=np.int64)
    params = single_replica(max_batch=[2], max_delay_s=[0.0])
    params.update(fail_s=np.array([0.002]), back_s=np.array([10.0]), fail_replica=np.array([0], dtype=np.int64))
    for kernel in (ranking_reference, ranking_compiled):
        status, replica, finish, _, _, hit, _ = serve(kernel, arrival, items, 0, **params)
        lost = hit > 0
        assert lost.sum() >= 2 and (status[lost] == REJECTED).all() and (replica[lost] == -1).all()
        assert (status[(arrival > 0.002) & (arrival < 10)] == REJECTED).all()  # arrivals while it is out
        assert status[-1] == DONE and hit[-1] == 0


def run(tmp, name: str, rates: dict | None, **service) -> sim.Results:
    """The ``test_ranking`` service on 24 four-chip MTIA replicas (20 ms batching delay: a batch is mostly
    forming) and one 2-GPU replica for 10 min at 1,000 queries/s, round-robin."""
    replicas = [{"pool": "mtia", "count": 24, "chips_per_replica": 4, "max_batch": 4, "max_queue_delay_ms": 20},
                {"pool": "gpu", "count": 1, "chips_per_replica": 2, "max_batch": 32}]
    traffic = {"generator": {"rate_per_s": 1000.0, "items_per_request": {"lognormal": {"median": 2000, "sigma": 0.5}}}}
    data = with_ranking({"router": {"kind": "round-robin"}, "replicas": replicas, "traffic": traffic, **service},
                        duration="10min")
    data["fleet"][-1]["count"] = 96
    if rates is not None:
        data["failures"] = {"rates_per_1000_chip_days": rates, "repair_time": {c: "10min" for c in rates}}
    return sim.run(scenario_from(data, tmp, f"{name}.yaml"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rankfail")
    return {name: run(tmp, name, rates) for name, rates in
            {"plain": None, "zero": {c: 0.0 for c in ALL}, "failing": ALL}.items()}


FAILURE_KEYS = ("lost_requests", "rerouted_requests", "replica_outages", "replica_availability")


def test_no_failures_section_or_zero_rates_leave_the_service_unchanged(runs):
    plain, zero = runs["plain"].summary["inference"]["feed"], runs["zero"].summary["inference"]["feed"]
    assert not set(FAILURE_KEYS) & set(plain)
    assert zero["lost_requests"] == zero["rerouted_requests"] == zero["replica_outages"] == 0
    assert zero["replica_availability"] == 1.0
    assert {k: v for k, v in zero.items() if k not in FAILURE_KEYS} == plain
    pd.testing.assert_frame_equal(runs["plain"].requests, runs["zero"].requests)


def test_outages_reroute_queries_raise_latency_and_counts_add_up(runs):
    plain, feed = runs["plain"].summary["inference"]["feed"], runs["failing"].summary["inference"]["feed"]
    r = feed["requests"]
    assert r["offered"] == r["completed"] + r["rejected"] + r["unfinished"] == plain["requests"]["offered"]
    assert feed["replica_outages"] >= 2 and feed["rerouted_requests"] > 0
    assert 0 < feed["replica_availability"] < 1.0
    assert sum(feed["rejected_reasons"].values()) == r["rejected"]
    assert feed["rejected_reasons"].get("replica failed", 0) == feed["lost_requests"]
    assert feed["latency_s"]["p99"] > plain["latency_s"]["p99"]
    assert runs["failing"].requests["state"].value_counts().sum() == r["offered"]


def test_same_seed_same_failures(runs, tmp_path):
    again = run(tmp_path, "again", ALL).summary["inference"]["feed"]
    assert again == runs["failing"].summary["inference"]["feed"]


def test_fluid_ranking_serves_by_availability(tmp_path):
    mtia = [{"pool": "mtia", "count": 24, "chips_per_replica": 4, "max_batch": 4, "max_queue_delay_ms": 20}]
    heavy = {"fidelity": "fluid", "fluid_bin": "1min", "replicas": mtia,  # one group: the analytic path
             "traffic": {"generator": {"rate_per_s": 3000.0, "items_per_request": {"fixed": 2000}}}}
    plain = run(tmp_path, "a", None, **heavy).summary["inference"]["feed"]
    failing = run(tmp_path, "b", ALL, **heavy).summary["inference"]["feed"]
    zero = run(tmp_path, "c", {c: 0.0 for c in ALL}, **heavy).summary["inference"]["feed"]
    assert "replica_availability" not in plain and 0 < failing["replica_availability"] < 1
    assert (failing["requests"]["completed"] < plain["requests"]["completed"]
            or failing["latency_s"]["p99"] > plain["latency_s"]["p99"])
    assert zero.pop("replica_availability") == 1.0 and zero == plain
