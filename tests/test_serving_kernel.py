"""The request-level LLM serving kernel: Numba and its Python twin agree request by request; KV never
overflows; every request is accounted for; a lone request takes exactly the roofline time."""

from __future__ import annotations

import numpy as np
import pytest

from sim.kernels import serving_compiled, serving_reference
from sim.kernels.serving_reference import DONE, NOT_OFFERED, REJECTED, UNFINISHED

H100_LIKE = dict(flop_per_token=2 * 8e9, flops_per_s=989e12 * 0.5, weight_bytes=16e9,
                 kv_bytes_per_token=131072.0, bytes_per_s=3.35e12 * 0.8, overhead_s=0.002)


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    arrival = np.sort(rng.exponential(float(rng.uniform(0.01, 0.5)), n).cumsum())
    if seed % 3 == 0:
        arrival = np.round(arrival, 1)  # ties between arrivals and iteration ends
    prompt = rng.integers(1, 3000, n).astype(np.int64)
    output = rng.integers(1, 400, n).astype(np.int64)
    params = dict(n_replicas=int(rng.integers(1, 6)), router=int(rng.integers(0, 4)),
                  token_budget=int(rng.choice([256, 2048, 8192])), max_seqs=int(rng.choice([1, 8, 64])),
                  kv_capacity_tokens=int(rng.choice([3000, 20000, 200000])), chunked_prefill=bool(rng.integers(0, 2)),
                  horizon_s=float(arrival[-1] * rng.uniform(0.5, 3.0)),
                  bin_width_s=float(rng.choice([0.25, 1.0, 60.0])), **H100_LIKE)
    return arrival, prompt, output, params


@pytest.mark.parametrize("seed", range(80))
def test_compiled_matches_reference(seed):
    arrival, prompt, output, params = random_case(seed)
    ref = serving_reference.serve_llm(arrival, prompt, output, **params)
    nb = serving_compiled.serve_llm(arrival, prompt, output, **params)
    for a, b in zip(ref, nb):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("seed", range(10))
def test_every_request_accounted_and_kv_within_capacity(seed):
    arrival, prompt, output, params = random_case(seed)
    status, replica, first, finish, kv_peak, busy = serving_compiled.serve_llm(arrival, prompt, output, **params)
    assert (busy >= 0).all() and (busy.sum(axis=1) <= params["horizon_s"] + 1e-9).all()
    assert (busy <= params["bin_width_s"] + 1e-9).all()
    assert set(np.unique(status)) <= {DONE, UNFINISHED, REJECTED, NOT_OFFERED}
    offered = arrival <= params["horizon_s"]
    assert ((status == NOT_OFFERED) == ~offered).all()
    assert (kv_peak <= params["kv_capacity_tokens"]).all()
    rejected = status == REJECTED
    assert ((prompt + output)[rejected] > params["kv_capacity_tokens"]).all()
    routed = offered & ~rejected
    if params["router"] == 3:  # central queue: a request meets its replica only when admitted
        routed &= status == DONE
    assert (replica[routed] >= 0).all() and (replica[routed] < params["n_replicas"]).all()
    assert (replica[~(offered & ~rejected)] == -1).all()
    done = status == DONE
    assert (finish[done] >= first[done]).all() and (first[done] > arrival[done]).all()
    assert (finish[done] <= params["horizon_s"] + 10).all()
    assert np.isnan(finish[~done]).all()


def test_lone_request_takes_the_roofline_time():
    arrival, prompt, output = np.array([1.0]), np.array([2000], dtype=np.int64), np.array([5], dtype=np.int64)
    params = dict(n_replicas=1, router=0, token_budget=4096, max_seqs=8, kv_capacity_tokens=100000,
                  chunked_prefill=False, horizon_s=100.0, bin_width_s=0.01, **H100_LIKE)
    status, _, first, finish, _, busy = serving_reference.serve_llm(arrival, prompt, output, **params)
    assert busy.sum() == pytest.approx(finish[0] - arrival[0], rel=1e-12)  # busy exactly while serving it
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
    base = dict(n_replicas=1, router=0, token_budget=32768, max_seqs=64, chunked_prefill=False,
                horizon_s=1e6, bin_width_s=3600.0, **H100_LIKE)
    roomy = serving_compiled.serve_llm(arrival, prompt, output, kv_capacity_tokens=10**6, **base)
    tight = serving_compiled.serve_llm(arrival, prompt, output, kv_capacity_tokens=5 * 550, **base)
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
        _, replica, *_ = serving_compiled.serve_llm(
            arrival, prompt, output, n_replicas=4, router=router, token_budget=4096, max_seqs=32,
            kv_capacity_tokens=10**6, chunked_prefill=True, horizon_s=1e5, bin_width_s=3600.0, **H100_LIKE)
        counts = np.bincount(replica, minlength=4)
        assert counts.min() > 40, (router, counts)


def test_central_queue_matches_erlang_c():
    """M/M/c: one request per replica at a time, one output token, exponential prompt lengths on a
    compute-bound roofline (service time proportional to prompt length), Poisson arrivals. The mean
    wait before service must match Erlang C within sampling error."""
    from sim.kernels.queueing import mmc_mean_wait_s
    from sim.kernels.serving_reference import ROUTER_CENTRAL

    rng = np.random.default_rng(42)
    servers, mean_service_s, load = 4, 1.0, 0.8
    rate = load * servers / mean_service_s
    n = 200_000
    arrival = np.cumsum(rng.exponential(1 / rate, n))
    tokens_per_s = 10_000.0  # mean prompt 10,000 tokens -> mean service 1 s; rounding is negligible
    prompt = np.maximum(1, np.round(rng.exponential(mean_service_s * tokens_per_s, n))).astype(np.int64)
    output = np.ones(n, dtype=np.int64)
    status, _, first, _, _, _ = serving_compiled.serve_llm(
        arrival, prompt, output, n_replicas=servers, router=ROUTER_CENTRAL, token_budget=10**9, max_seqs=1,
        kv_capacity_tokens=10**9, chunked_prefill=False, flop_per_token=1.0, flops_per_s=tokens_per_s,
        weight_bytes=0.0, kv_bytes_per_token=0.0, bytes_per_s=1.0, overhead_s=0.0, horizon_s=arrival[-1] + 1e4,
        bin_width_s=3600.0)
    assert (status == DONE).all()
    wait = first - arrival - prompt / tokens_per_s
    expected = mmc_mean_wait_s(rate, 1 / mean_service_s, servers)
    sampled = wait[n // 10:]  # drop the warm-up
    assert abs(sampled.mean() - expected) < 0.05 * expected, (sampled.mean(), expected)
