"""The request-level LLM serving kernel: Numba and its Python twin agree request by request; KV never
overflows; every request is accounted for; a lone request takes exactly the roofline time; routing
across heterogeneous replicas and autoscaling switches behave as documented."""

from __future__ import annotations

import numpy as np
import pytest

from sim.kernels import serving_compiled, serving_reference
from sim.kernels.serving_reference import (
    DONE,
    NOT_OFFERED,
    REJECTED,
    ROUTER_CENTRAL,
    ROUTER_LEAST_WORK,
    ROUTER_SLO_AWARE,
    UNFINISHED,
    no_switches,
    replica_tables,
)

H100_LIKE = dict(flop_per_token=2 * 8e9, flops_per_s=989e12 * 0.5, weight_bytes=16e9,
                 kv_bytes_per_token=131072.0, bytes_per_s=3.35e12 * 0.8, overhead_s=0.002)


def serve(kernel, arrival, prompt, output, groups, router=0, slo=(np.inf, np.inf), switches=None, horizon_s=1e6,
          bin_width_s=3600.0):
    """Call ``kernel`` with replica groups given as (replicas, parameters)."""
    replica_int, replica_float = replica_tables(groups)
    return kernel(arrival, prompt, output, replica_int, replica_float, router, slo[0], slo[1],
                  *(switches if switches is not None else no_switches()), horizon_s, bin_width_s)


def one_group(n_replicas, **params):
    return [(n_replicas, {**H100_LIKE, **params})]


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    arrival = np.sort(rng.exponential(float(rng.uniform(0.01, 0.5)), n).cumsum())
    if seed % 3 == 0:
        arrival = np.round(arrival, 1)  # ties between arrivals, switches and iteration ends
    prompt = rng.integers(1, 3000, n).astype(np.int64)
    output = rng.integers(1, 400, n).astype(np.int64)
    groups = []
    for _ in range(int(rng.integers(1, 4))):  # replicas of different speeds, sizes and prices
        groups.append((int(rng.integers(1, 4)), dict(
            token_budget=int(rng.choice([256, 2048, 8192])), max_seqs=int(rng.choice([1, 8, 64])),
            kv_capacity_tokens=int(rng.choice([3000, 20000, 200000])), chunked_prefill=bool(rng.integers(0, 2)),
            usd_per_token=float(rng.choice([1e-7, 3e-7])), per_token_s=float(rng.choice([0.0, 1e-6])),
            **{**H100_LIKE, "flops_per_s": H100_LIKE["flops_per_s"] * float(rng.choice([0.5, 1.0, 2.0]))})))
    horizon_s = float(arrival[-1] * rng.uniform(0.5, 3.0))
    n_replicas = sum(r for r, _ in groups)
    m = int(rng.integers(0, 6))
    switch_s = np.sort(rng.uniform(0, horizon_s, m))
    if seed % 3 == 0:
        switch_s = np.round(switch_s, 1)
    switches = (switch_s, rng.integers(0, n_replicas, m).astype(np.int64), rng.integers(0, 2, m).astype(np.bool_))
    kwargs = dict(router=int(rng.integers(0, 5)), slo=(float(rng.choice([0.2, 2.0])), float(rng.choice([0.02, 0.2]))),
                  switches=switches, horizon_s=horizon_s, bin_width_s=float(rng.choice([0.25, 1.0, 60.0])))
    return arrival, prompt, output, groups, kwargs


@pytest.mark.parametrize("seed", range(100))
def test_compiled_matches_reference(seed):
    arrival, prompt, output, groups, kwargs = random_case(seed)
    ref = serve(serving_reference.serve_llm, arrival, prompt, output, groups, **kwargs)
    nb = serve(serving_compiled.serve_llm, arrival, prompt, output, groups, **kwargs)
    for a, b in zip(ref, nb):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("seed", range(12))
def test_every_request_accounted_and_kv_within_capacity(seed):
    arrival, prompt, output, groups, kwargs = random_case(seed)
    status, replica, first, finish, kv_peak, busy, batch_seq_s, kv_token_s, *_ = serve(
        serving_compiled.serve_llm, arrival, prompt, output, groups, **kwargs)
    horizon_s, bin_width_s = kwargs["horizon_s"], kwargs["bin_width_s"]
    replica_int, _ = replica_tables(groups)
    capacity = replica_int[:, 2]
    busy_s = busy.sum(axis=1)
    # while iterating a replica runs 1..max_seqs requests and holds at most its KV capacity
    assert (batch_seq_s >= busy_s * (1 - 1e-9)).all() and (batch_seq_s <= replica_int[:, 1] * busy_s * (1 + 1e-9)).all()
    assert (kv_token_s >= 0).all() and (kv_token_s <= kv_peak * busy_s * (1 + 1e-9)).all()
    assert (busy >= 0).all() and (busy.sum(axis=1) <= horizon_s + 1e-9).all()
    assert (busy <= bin_width_s + 1e-9).all()
    assert set(np.unique(status)) <= {DONE, UNFINISHED, REJECTED, NOT_OFFERED}
    offered = arrival <= horizon_s
    assert ((status == NOT_OFFERED) == ~offered).all()
    assert (kv_peak <= capacity).all()
    rejected = status == REJECTED
    assert ((prompt + output)[rejected] > capacity.max()).all()
    routed = offered & ~rejected
    if kwargs["router"] == ROUTER_CENTRAL:  # a request meets its replica only when admitted
        routed &= status == DONE
    assert (replica[routed] >= 0).all() and (replica[routed] < len(capacity)).all()
    assert ((prompt + output)[routed] <= capacity[replica[routed]]).all()  # only where it can ever fit
    assert (replica[~(offered & ~rejected)] == -1).all()
    done = status == DONE
    assert (finish[done] >= first[done]).all() and (first[done] > arrival[done]).all()
    assert (finish[done] <= horizon_s + 10).all()
    assert np.isnan(finish[~done]).all()


def test_lone_request_takes_the_roofline_time():
    arrival, prompt, output = np.array([1.0]), np.array([2000], dtype=np.int64), np.array([5], dtype=np.int64)
    groups = one_group(1, token_budget=4096, max_seqs=8, kv_capacity_tokens=100000, chunked_prefill=False)
    status, _, first, finish, _, busy, *_ = serve(serving_reference.serve_llm, arrival, prompt, output, groups,
                                                  horizon_s=100.0, bin_width_s=0.01)
    assert busy.sum() == pytest.approx(finish[0] - arrival[0], rel=1e-12)  # busy exactly while serving it
    _, _, _, _, _, _, batch_seq_s, kv_token_s, *_ = serve(serving_reference.serve_llm, arrival, prompt, output, groups,
                                                      horizon_s=100.0, bin_width_s=0.01)
    assert batch_seq_s[0] == pytest.approx(busy.sum(), rel=1e-12)  # a batch of one, all the time it is busy
    assert kv_token_s[0] == pytest.approx(2005 * busy.sum(), rel=1e-12)  # reserving prompt + output throughout
    assert busy[0, :100].sum() == 0  # nothing before the arrival at t = 1 s
    p = H100_LIKE
    prefill_compute_s = p["flop_per_token"] * 2000 / p["flops_per_s"]
    prefill_s = p["overhead_s"] + max(prefill_compute_s, p["weight_bytes"] / p["bytes_per_s"])
    assert status[0] == DONE and first[0] == pytest.approx(1.0 + prefill_s, rel=1e-12)
    decode_s = 0.0
    for step in range(1, 5):  # tokens 2..5; context grows by one token per step
        memory = (p["weight_bytes"] + p["kv_bytes_per_token"] * (2000 + step)) / p["bytes_per_s"]
        decode_s += p["overhead_s"] + max(p["flop_per_token"] / p["flops_per_s"], memory)
    assert finish[0] == pytest.approx(first[0] + decode_s, rel=1e-12)


def test_batching_shares_iterations_and_kv_limit_makes_requests_wait():
    n = 40
    arrival = np.zeros(n)
    prompt = np.full(n, 500, dtype=np.int64)
    output = np.full(n, 50, dtype=np.int64)
    base = dict(token_budget=32768, max_seqs=64, chunked_prefill=False)
    roomy = serve(serving_compiled.serve_llm, arrival, prompt, output, one_group(1, kv_capacity_tokens=10**6, **base))
    tight = serve(serving_compiled.serve_llm, arrival, prompt, output, one_group(1, kv_capacity_tokens=5 * 550, **base))
    assert (roomy[0] == DONE).all() and (tight[0] == DONE).all()
    assert len(np.unique(roomy[2])) == 1  # all 40 prefilled in one iteration
    assert tight[4][0] <= 5 * 550 and len(np.unique(tight[2])) == 8  # five at a time
    assert np.nanmax(tight[3]) > np.nanmax(roomy[3])


def test_routers_spread_load():
    rng = np.random.default_rng(3)
    arrival = np.sort(rng.uniform(0, 10, 300))
    prompt = rng.integers(100, 2000, 300).astype(np.int64)
    output = rng.integers(10, 300, 300).astype(np.int64)
    for router in (0, 1, 2):
        _, replica, *_ = serve(serving_compiled.serve_llm, arrival, prompt, output, one_group(
            4, token_budget=4096, max_seqs=32, kv_capacity_tokens=10**6, chunked_prefill=True), router=router)
        counts = np.bincount(replica, minlength=4)
        assert counts.min() > 40, (router, counts)


def test_central_queue_matches_erlang_c():
    """M/M/c: one request per replica at a time, one output token, exponential prompt lengths on a
    compute-bound roofline (service time proportional to prompt length), Poisson arrivals. The mean
    wait before service must match Erlang C within sampling error."""
    from sim.kernels.queueing import mmc_mean_wait_s

    rng = np.random.default_rng(42)
    servers, mean_service_s, load = 4, 1.0, 0.8
    rate = load * servers / mean_service_s
    n = 200_000
    arrival = np.cumsum(rng.exponential(1 / rate, n))
    tokens_per_s = 10_000.0  # mean prompt 10,000 tokens -> mean service 1 s; rounding is negligible
    prompt = np.maximum(1, np.round(rng.exponential(mean_service_s * tokens_per_s, n))).astype(np.int64)
    output = np.ones(n, dtype=np.int64)
    groups = [(servers, dict(token_budget=10**9, max_seqs=1, kv_capacity_tokens=10**9, chunked_prefill=False,
                             flop_per_token=1.0, flops_per_s=tokens_per_s, weight_bytes=0.0, kv_bytes_per_token=0.0,
                             bytes_per_s=1.0, overhead_s=0.0))]
    status, _, first, *_ = serve(serving_compiled.serve_llm, arrival, prompt, output, groups,
                                      router=ROUTER_CENTRAL, horizon_s=arrival[-1] + 1e4)
    assert (status == DONE).all()
    wait = first - arrival - prompt / tokens_per_s
    expected = mmc_mean_wait_s(rate, 1 / mean_service_s, servers)
    sampled = wait[n // 10:]  # drop the warm-up
    assert abs(sampled.mean() - expected) < 0.05 * expected, (sampled.mean(), expected)


def test_least_work_sends_more_to_the_faster_replica():
    rng = np.random.default_rng(5)
    arrival = np.sort(rng.uniform(0, 60, 3000))
    prompt = rng.integers(100, 2000, 3000).astype(np.int64)
    output = rng.integers(10, 300, 3000).astype(np.int64)
    slow = dict(H100_LIKE, token_budget=4096, max_seqs=32, kv_capacity_tokens=10**6, chunked_prefill=True)
    fast = dict(slow, flops_per_s=slow["flops_per_s"] * 3, bytes_per_s=slow["bytes_per_s"] * 3)
    for groups in ([(1, slow), (1, fast)], [(1, fast), (1, slow)]):
        replica_int, replica_float = replica_tables(groups)
        _, replica, *_ = serve(serving_compiled.serve_llm, arrival, prompt, output, groups, router=ROUTER_LEAST_WORK)
        fast_index = int(np.argmax(replica_float[:, 1]))
        assert (replica == fast_index).mean() > 0.6


def test_slo_aware_prefers_the_cheap_replica_until_its_latency_breaks_the_slo():
    """Two replicas, the cheap one slower. At a trickle every request goes to the cheap one; under a
    load it cannot carry within the TTFT target, the expensive one takes the overflow."""
    cheap = dict(H100_LIKE, token_budget=8192, max_seqs=64, kv_capacity_tokens=10**6, chunked_prefill=True,
                 usd_per_token=1e-7)
    dear = dict(cheap, flops_per_s=cheap["flops_per_s"] * 4, bytes_per_s=cheap["bytes_per_s"] * 4, usd_per_token=5e-7)
    groups = [(1, dear), (1, cheap)]
    prompt_len, n = 4000, 400
    prompt, output = np.full(n, prompt_len, dtype=np.int64), np.full(n, 20, dtype=np.int64)
    slo = (0.5, 0.1)
    trickle = np.arange(n) * 5.0
    _, replica, *_ = serve(serving_compiled.serve_llm, trickle, prompt, output, groups, ROUTER_SLO_AWARE, slo)
    assert (replica == 1).all()
    flood = np.arange(n) * 0.02
    _, replica, first, *_ = serve(serving_compiled.serve_llm, flood, prompt, output, groups, ROUTER_SLO_AWARE, slo)
    assert 0.05 < (replica == 1).mean() < 0.95


def test_switched_off_replica_takes_no_new_request_but_finishes_its_own():
    arrival = np.arange(200) * 0.05
    prompt, output = np.full(200, 500, dtype=np.int64), np.full(200, 100, dtype=np.int64)
    groups = one_group(2, token_budget=4096, max_seqs=64, kv_capacity_tokens=10**6, chunked_prefill=True)
    off_at = 3.0
    switches = (np.array([off_at]), np.array([1], dtype=np.int64), np.array([False]))
    for router in (0, 1, 2, ROUTER_CENTRAL):
        status, replica, first, finish, _, busy, *_ = serve(serving_compiled.serve_llm, arrival, prompt, output,
                                                            groups, router=router, switches=switches, bin_width_s=1.0)
        assert (status == DONE).all()
        assert (replica[arrival >= off_at] == 0).all()
        assert (replica[arrival < off_at] == 1).any()
        assert finish[replica == 1].max() > off_at  # it drained what it held


@pytest.mark.parametrize("seed", range(40))
def test_energy_weighted_busy_seconds_agree_and_lie_between_memory_bound_and_full_draw(seed):
    # the tenth output, busy seconds × each iteration's activity (sim.serving.activity), with a memory-bound
    # share per group: the twins agree bin by bin, and every bin lies between m × busy and busy
    arrival, prompt, output, groups, kwargs = random_case(seed)
    groups = [(n, {**p, "memory_activity": 0.3 + 0.2 * g}) for g, (n, p) in enumerate(groups)]
    ref = serve(serving_reference.serve_llm, arrival, prompt, output, groups, **kwargs)
    nb = serve(serving_compiled.serve_llm, arrival, prompt, output, groups, **kwargs)
    for a, b in zip(ref, nb):
        np.testing.assert_array_equal(a, b)
    busy, energy = nb[5], nb[9]
    m = np.repeat([p["memory_activity"] for _, p in groups], [n for n, _ in groups])[:, None]
    assert (energy <= busy * (1 + 1e-12)).all() and (energy >= m * busy * (1 - 1e-12)).all()
    if busy.sum() > 0:
        assert energy.sum() < busy.sum()  # some iteration is memory-bound


def test_prefill_draws_more_than_decode_per_busy_second():
    # long prompts with one output token are compute-bound iterations; short prompts with long outputs decode
    m = 0.54
    group = one_group(1, token_budget=8192, max_seqs=8, kv_capacity_tokens=10**6, chunked_prefill=True,
                      memory_activity=m)
    arrival = np.arange(20) * 2.0
    share = {}
    for name, prompt, output in (("prefill", 6000, 1), ("decode", 50, 400)):
        *_, busy, _, _, _, energy = serve(serving_compiled.serve_llm, arrival, np.full(20, prompt),
                                          np.full(20, output), group)
        share[name] = energy.sum() / busy.sum()
    assert share["prefill"] > 0.95 and m < share["decode"] < 0.6


def test_full_draw_by_default():
    # replica tables without memory_activity draw the full increment: energy-weighted = busy, as before
    arrival, prompt, output, groups, kwargs = random_case(7)
    out = serve(serving_compiled.serve_llm, arrival, prompt, output, groups, **kwargs)
    np.testing.assert_array_equal(out[9], out[5])
