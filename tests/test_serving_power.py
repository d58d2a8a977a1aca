"""Serving power that follows the work (``sim.serving.activity``): the memory-bound share comes from the packaged
Splitwise power data; a decode-heavy LLM service draws less per busy chip-second than a prefill-heavy one and a
ranking service of small batches less than one of large batches, at both fidelities; service energy adds up to the
run's IT energy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim
from sim.catalog import builtin_catalog
from sim.fleet import build_fleet
from sim.kernels import ranking_compiled, ranking_reference
from sim.kernels.serving_reference import ROUTER_ROUND_ROBIN
from sim.serving.activity import MEMORY_BOUND_ACTIVITY, activity, energy_weighted_s
from sim.serving.ranking.model import ranking_cost
from sim.validation.checks import scenario_catalog
from tests.conftest import REPO, scenario_from
from tests.test_inference import with_service
from tests.test_ranking import with_ranking

CATALOG = builtin_catalog()
ONE_POOL = [{"name": "gpu", "accelerator": "h100-sxm", "count": 16, "chips_per_server": 8, "servers_per_rack": 2}]


def test_memory_bound_share_is_the_splitwise_decode_power():
    # A100 runs of one request, prompt up to 1,024 tokens and 128 output tokens (over 95 % decode): their
    # average power is a share of TDP; above idle, the share of the dynamic range the module takes as m
    data = pd.read_csv(REPO / "benchmarks" / "data" / "splitwise-perf" / "perf_model.csv")
    rows = data[(data["average_power"] > 0) & (data["batch_size"] == 1) & (data["prompt_size"] <= 1024)
                & (data["token_size"] == 128) & (data["hardware"] == "a100-80gb")]
    assert len(rows) == 120
    a100 = CATALOG.accelerators["a100-sxm"]
    decode_w = rows["average_power"].mean() * a100.tdp_w
    assert (decode_w - a100.idle_w) / (a100.tdp_w - a100.idle_w) == pytest.approx(MEMORY_BOUND_ACTIVITY, abs=0.005)
    # prefill-heavy runs peak at the reference (TDP): the compute-bound share draws the full increment
    prefill = data[(data["peak_power"] > 0) & (data["prompt_size"] >= 2048)]
    assert prefill["peak_power"].median() == pytest.approx(1.0, abs=0.05)


def test_activity_between_memory_bound_and_full():
    assert activity(0.0, 1.0) == pytest.approx(MEMORY_BOUND_ACTIVITY)
    assert activity(1.0, 1.0) == activity(2.0, 1.0) == 1.0
    assert activity(0.5, 1.0) == pytest.approx(0.5 + 0.5 * MEMORY_BOUND_ACTIVITY)
    busy, compute = np.array([2.0, 2.0, 0.0]), np.array([1.0, 5.0, 0.0])
    np.testing.assert_allclose(energy_weighted_s(busy, compute), busy * activity(np.minimum(compute, busy), busy))


def _pool(summary_scenario, name="gpu"):
    fleet = build_fleet(summary_scenario, scenario_catalog(summary_scenario))
    return next(p for p in fleet.pools if p.name == name)


def _llm_activity(tmp_path, fidelity: str, prompt: int, output: int) -> tuple[float, dict]:
    """Mean activity of the service's busy chip-seconds: IT energy above idle ÷ (busy chip-seconds × increment)."""
    traffic = {"generator": {"rate_per_s": 2.0, "prompt_tokens": {"fixed": prompt},
                             "output_tokens": {"fixed": output}}}
    data = with_service({"fidelity": fidelity, "traffic": traffic,
                         "replicas": [{"pool": "gpu", "count": 2, "chips_per_replica": 8}]}, duration="20min")
    data["workloads"].pop("training")
    data["fleet"] = ONE_POOL
    results = sim.run(scenario_from(data, tmp_path, f"{fidelity}-{prompt}.yaml"))
    summary, chat = results.summary, results.summary["inference"]["chat"]
    pool = _pool(results.scenario)
    chip_s = 16 * summary["horizon_s"]
    joules = chat["it_energy_per_1k_tokens_kwh"] * chat["output_tokens"] / 1e3 * 3.6e6
    assert joules == pytest.approx(summary["it_energy_kwh"] * 3.6e6, rel=1e-9)  # the service is the run's IT load
    busy = chat["utilization"] * chip_s
    increment = pool.busy_w_with_server - pool.idle_w_with_server
    return (joules - chip_s * pool.idle_w_with_server) / (busy * increment), chat


@pytest.mark.parametrize("fidelity", ["request", "fluid"])
def test_decode_heavy_service_draws_less_per_busy_chip_second_than_prefill_heavy(tmp_path, fidelity):
    prefill, _ = _llm_activity(tmp_path, fidelity, prompt=4000, output=2)
    decode, chat = _llm_activity(tmp_path, fidelity, prompt=50, output=400)
    assert chat["utilization"] > 0.5  # decoding keeps the replicas iterating
    assert MEMORY_BOUND_ACTIVITY - 1e-9 <= decode < prefill <= 1.0 + 1e-9
    # 4,000-token prefills of an 8B model on 8 chips: tensor-parallel all-reduce and per-layer fixed costs, which
    # draw like memory-bound work, take about a third of their time (request level measured 0.66 against 0.54)
    assert decode < 0.6 and prefill - decode > 0.08


def _ranking_run(tmp_path, fidelity: str, max_batch: int, delay_ms: float):
    data = with_ranking({"fidelity": fidelity, "router": {"kind": "round-robin"}, "slo": None,
                         "traffic": {"generator": {"rate_per_s": 400.0,
                                                   "items_per_request": {"lognormal": {"median": 2000, "sigma": 0.5}}}},
                         "replicas": [{"pool": "gpu", "count": 2, "chips_per_replica": 4, "max_batch": max_batch,
                                       "max_queue_delay_ms": delay_ms}]})
    data["fleet"] = [{**ONE_POOL[0], "count": 8}]
    return sim.run(scenario_from(data, tmp_path, f"r-{fidelity}-{max_batch}.yaml"))


@pytest.mark.parametrize("fidelity", ["request", "fluid"])
def test_small_ranking_batches_draw_less_than_large_ones(tmp_path, fidelity):
    means = {}
    for max_batch, delay_ms in ((1, 0.0), (64, 20.0)):
        results = _ranking_run(tmp_path, fidelity, max_batch, delay_ms)
        summary, series = results.summary, results.timeseries
        feed = summary["inference"]["feed"]
        pool = _pool(results.scenario)
        widths = np.diff(np.append(series["time_s"].to_numpy(), summary["horizon_s"]))
        busy = float((series["busy_chips.h100-sxm"] * widths).sum())
        joules = feed["it_energy_per_1k_requests_kwh"] * feed["completed"] / 1e3 * 3.6e6
        # the service's energy is the run's IT energy (it holds the only pool), and the series' integral
        assert joules == pytest.approx(summary["it_energy_kwh"] * 3.6e6, rel=1e-9)
        assert float((series["it_power_kw"] * widths).sum()) * 1e3 == pytest.approx(joules, rel=1e-9)
        idle = 8 * summary["horizon_s"] * pool.idle_w_with_server
        means[max_batch] = (joules - idle) / (busy * (pool.busy_w_with_server - pool.idle_w_with_server))
    assert MEMORY_BOUND_ACTIVITY <= means[1] < means[64] <= 1.0
    assert means[64] - means[1] > 0.1


def test_ranking_kernel_compute_share_grows_with_the_batch():
    cost = ranking_cost(CATALOG.models["dlrm-dcnv2"], CATALOG.accelerators["h100-sxm"], 4, 0.5)
    arrival = np.arange(200) * 1e-3
    items = np.full(200, 2000, dtype=np.int64)
    share = {}
    for max_batch in (1, 32):
        params = dict(slo_s=np.inf, overhead_s=np.full(1, cost.overhead_s),
                      compute_s_per_item=np.full(1, cost.compute_s_per_item), weights_s=np.full(1, cost.weights_s),
                      embedding_s_per_item=np.full(1, cost.embedding_s_per_item),
                      max_batch=np.full(1, max_batch, dtype=np.int64), max_delay_s=np.full(1, 0.01),
                      max_items=np.full(1, 10**9, dtype=np.int64), cost_per_s=np.ones(1), active_from_s=np.zeros(1),
                      active_until_s=np.full(1, np.inf), fail_s=np.zeros(0), back_s=np.zeros(0),
                      fail_replica=np.zeros(0, dtype=np.int64), horizon_s=10.0, bin_width_s=0.05)
        ref = ranking_reference.serve_ranking(arrival, items, ROUTER_ROUND_ROBIN, **params)
        out = ranking_compiled.serve_ranking(arrival, items, ROUTER_ROUND_ROBIN, **params)
        for a, b in zip(ref, out):
            np.testing.assert_array_equal(a, b)
        busy, compute = out[3], out[6]
        assert (compute >= 0).all() and (compute <= busy + 1e-15).all()
        share[max_batch] = compute.sum() / busy.sum()
    assert share[1] < share[32]
