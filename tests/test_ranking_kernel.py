"""The ranking kernel: Numba equals the twin on random inputs (every router), dynamic batching matches hand
oracles, every request is accounted for, and the slo-aware router trades cost against its SLO."""

from __future__ import annotations

import numpy as np
import pytest

from sim.kernels import ranking_compiled, ranking_reference
from sim.kernels.ranking_reference import (
    DONE,
    NOT_OFFERED,
    REJECTED,
    ROUTER_CENTRAL,
    ROUTER_JSQ,
    ROUTER_LEAST_WORK,
    ROUTER_ROUND_ROBIN,
    ROUTER_SLO_AWARE,
    UNFINISHED,
)

NO_FAILURES = dict(fail_s=np.zeros(0), back_s=np.zeros(0), fail_replica=np.zeros(0, dtype=np.int64))
ROUTERS = [ROUTER_ROUND_ROBIN, ROUTER_JSQ, ROUTER_LEAST_WORK, ROUTER_CENTRAL, ROUTER_SLO_AWARE]


def random_inputs(seed: int, n: int = 300, replicas: int = 4):
    rng = np.random.default_rng(seed)
    arrival = np.sort(np.round(rng.uniform(0, 12, n), 2))  # rounding makes simultaneous arrivals
    items = rng.integers(1, 300, n).astype(np.int64)
    params = dict(
        slo_s=float(rng.choice([0.05, 0.3, np.inf])),
        overhead_s=rng.uniform(0.001, 0.01, replicas), compute_s_per_item=rng.uniform(1e-5, 2e-4, replicas),
        weights_s=rng.uniform(0, 0.005, replicas), embedding_s_per_item=rng.uniform(1e-5, 2e-4, replicas),
        max_batch=rng.integers(1, 8, replicas).astype(np.int64), max_delay_s=rng.choice([0.0, 0.005, 0.02], replicas),
        max_items=rng.integers(150, 500, replicas).astype(np.int64), cost_per_s=rng.uniform(0.1, 1, replicas),
        active_from_s=np.zeros(replicas), active_until_s=np.full(replicas, np.inf), **NO_FAILURES,
        horizon_s=10.0, bin_width_s=0.7)
    return arrival, items, params


def serve(kernel, arrival, items, router, **params):
    return kernel.serve_ranking(np.asarray(arrival, dtype=float), np.asarray(items, dtype=np.int64), router, **params)


@pytest.mark.parametrize("router", ROUTERS)
@pytest.mark.parametrize("seed", range(8))
def test_compiled_matches_reference(seed, router):
    arrival, items, params = random_inputs(seed)
    expected = serve(ranking_reference, arrival, items, router, **params)
    actual = serve(ranking_compiled, arrival, items, router, **params)
    for name, a, b in zip(["status", "replica", "finish_s", "busy_s", "batches", "hit", "compute_s"], expected, actual):
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("router", ROUTERS)
@pytest.mark.parametrize("seed", range(4))
def test_every_request_accounted_and_busy_time_bounded(seed, router):
    arrival, items, params = random_inputs(seed)
    status, replica, finish, busy, batches, _, _ = serve(ranking_compiled, arrival, items, router, **params)
    assert set(np.unique(status)) <= {DONE, UNFINISHED, REJECTED, NOT_OFFERED}
    assert (status == NOT_OFFERED).sum() == (arrival > params["horizon_s"]).sum()
    assert (status == REJECTED).sum() == (items > params["max_items"].max()).sum()
    done = status == DONE
    assert np.all(finish[done] >= arrival[done]) and np.all(finish[done] <= params["horizon_s"])
    assert np.isnan(finish[~done]).all() and np.all(replica[done] >= 0)
    assert np.all(items[done] <= params["max_items"][replica[done]])  # only replicas with room run a request
    assert np.all(busy <= params["bin_width_s"] + 1e-12) and busy.sum() > 0
    assert batches.sum() >= 1 and np.all(np.bincount(replica[done], minlength=4) >= 0)


def single_replica(**overrides):
    params = dict(slo_s=np.inf, overhead_s=np.array([0.004]), compute_s_per_item=np.array([1e-4]),
                  weights_s=np.array([0.0]), embedding_s_per_item=np.array([0.0]), max_batch=np.array([1]),
                  max_delay_s=np.array([0.0]), max_items=np.array([10_000]), cost_per_s=np.array([1.0]),
                  active_from_s=np.zeros(1), active_until_s=np.full(1, np.inf), **NO_FAILURES,
                  horizon_s=1e6, bin_width_s=3600.0)
    params.update({k: np.asarray(v) if isinstance(v, list) else v for k, v in overrides.items()})
    return params


@pytest.mark.parametrize("kernel", [ranking_reference, ranking_compiled])
def test_no_delay_batch_of_one_is_a_fifo_single_server(kernel):
    """With max_batch 1 and no batching delay each request is served alone, first come first served:
    finish_k = max(arrival_k, finish_{k-1}) + overhead + compute · items_k (Lindley's recursion)."""
    rng = np.random.default_rng(3)
    arrival = np.cumsum(rng.exponential(0.02, 2000))
    items = rng.integers(1, 200, 2000)
    status, _, finish, _, batches, *_ = serve(kernel, arrival, items, ROUTER_ROUND_ROBIN, **single_replica())
    expected = np.empty(len(arrival))
    previous = 0.0
    for k, (a, n) in enumerate(zip(arrival, items)):
        previous = expected[k] = max(a, previous) + (0.004 + 1e-4 * n)
    assert (status == DONE).all() and batches[0] == len(arrival)
    np.testing.assert_allclose(finish, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kernel", [ranking_reference, ranking_compiled])
def test_batches_close_when_full_or_when_the_oldest_request_has_waited(kernel):
    """max_batch 3, max delay 10 ms, batch time 4 ms + 0.1 ms per item, 10 items per request:
    * 0, 1, 2 ms: the third arrival fills the batch -> it runs 2 -> 9 ms;
    * 3 ms: waits alone until its deadline at 13 ms -> 13 -> 18 ms;
    * 100, 101 ms: the deadline of the first closes the batch at 110 ms -> 110 -> 116 ms."""
    arrival = np.array([0.0, 0.001, 0.002, 0.003, 0.100, 0.101])
    params = single_replica(max_batch=[3], max_delay_s=[0.010])
    status, _, finish, _, batches, *_ = serve(kernel, arrival, np.full(6, 10), ROUTER_ROUND_ROBIN, **params)
    assert (status == DONE).all() and batches[0] == 3
    assert finish == pytest.approx([0.009, 0.009, 0.009, 0.018, 0.116, 0.116], abs=1e-12)


@pytest.mark.parametrize("kernel", [ranking_reference, ranking_compiled])
def test_item_capacity_closes_a_batch_and_rejects_what_never_fits(kernel):
    """max_items 25: two 10-item requests fit, the third makes the queue overflow (batch closes at once
    with two); a 30-item request can never run and is rejected; the third request waits for its deadline."""
    arrival = np.array([0.0, 0.001, 0.002, 0.003])
    items = np.array([10, 10, 10, 30])
    params = single_replica(max_batch=[10], max_delay_s=[1.0], max_items=[25])
    status, replica, finish, _, batches, *_ = serve(kernel, arrival, items, ROUTER_JSQ, **params)
    assert list(status) == [DONE, DONE, DONE, REJECTED] and replica[3] == -1
    assert finish[:3] == pytest.approx([0.002 + 0.006, 0.008, 1.002 + 0.005], abs=1e-12)
    assert batches[0] == 2


def two_replicas(slo_s: float):
    """Replica 0 cheap and slow (10 ms a request: 0.01 USD), replica 1 fast (1 ms) at 20× the rate (0.02 USD)."""
    return dict(slo_s=slo_s, overhead_s=np.array([0.010, 0.001]), compute_s_per_item=np.zeros(2),
                weights_s=np.zeros(2), embedding_s_per_item=np.zeros(2), max_batch=np.array([1, 1]),
                max_delay_s=np.zeros(2), max_items=np.array([100, 100]), cost_per_s=np.array([1.0, 20.0]),
                active_from_s=np.zeros(2), active_until_s=np.full(2, np.inf), **NO_FAILURES,
                horizon_s=100.0, bin_width_s=10.0)


@pytest.mark.parametrize("kernel", [ranking_reference, ranking_compiled])
def test_slo_aware_picks_the_cheapest_replica_that_meets_the_slo(kernel):
    burst = np.zeros(10)  # ten requests at once
    ones = np.ones(10, dtype=np.int64)
    # a loose SLO: the cheap replica's predicted latency (queue + 10 ms) stays within it for all ten
    _, loose, *_ = serve(kernel, burst, ones, ROUTER_SLO_AWARE, **two_replicas(1.0))
    assert (loose == 0).all()
    # 35 ms: the cheap one takes requests until its prediction passes 35 ms (3 of them: 10, 20, 30 ms)
    _, mixed, finish, *_ = serve(kernel, burst, ones, ROUTER_SLO_AWARE, **two_replicas(0.035))
    assert list(mixed[:3]) == [0, 0, 0] and (mixed[3:] == 1).all()
    assert finish.max() <= 0.035 + 1e-12
    # an SLO nobody meets: the lowest prediction wins (the fast replica until its queue reaches 10 ms)
    _, hopeless, *_ = serve(kernel, burst, ones, ROUTER_SLO_AWARE, **two_replicas(1e-4))
    assert list(hopeless[:9]) == [1] * 9 and hopeless[9] == 0  # then r1 predicts 10 ms, no better than r0
