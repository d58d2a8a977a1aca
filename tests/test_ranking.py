"""Ranking services end to end: the performance model's physics, family checks with file and line,
counts that add up, determinism, power that follows load, and per-accelerator results."""

from __future__ import annotations

import copy
import math

import pytest

import sim
from sim.catalog import builtin_catalog
from sim.serving.activity import MEMORY_BOUND_ACTIVITY
from sim.serving.ranking.model import _harmonic, free_bytes, hit_rate, ranking_cost, row_bytes, zipf_hit_rate
from tests.conftest import BASE, scenario_from

CATALOG = builtin_catalog()
DLRM = CATALOG.models["dlrm-dcnv2"]
H100, MTIA = CATALOG.accelerators["h100-sxm"], CATALOG.accelerators["mtia-v2"]

SERVICE = {
    "name": "feed", "model": "dlrm-dcnv2", "family": "ranking", "stack": "portable",
    "replicas": [{"pool": "mtia", "count": 4, "chips_per_replica": 1, "max_batch": 4, "max_queue_delay_ms": 2},
                 {"pool": "gpu", "count": 1, "chips_per_replica": 2, "max_batch": 32}],
    "traffic": {"generator": {"rate_per_s": 1500.0, "items_per_request": {"lognormal": {"median": 2000, "sigma": 0.5}},
                              "diurnal": {"amplitude_frac": 0.5, "peak_hour": 0}}},
    "slo": {"latency_p99_ms": 25},
    "router": {"kind": "slo-aware"},
}


def with_ranking(service_overrides: dict | None = None, **scenario_overrides) -> dict:
    data = copy.deepcopy(BASE)
    data["duration"] = "2min"
    data["fleet"].append({"name": "mtia", "accelerator": "mtia-v2", "count": 24, "chips_per_server": 24,
                          "servers_per_rack": 1})
    del data["workloads"]["training"]
    service = copy.deepcopy(SERVICE)
    service.update(service_overrides or {})
    data["workloads"]["inference"] = [service]
    data.update(scenario_overrides)
    return data


# --- performance model -------------------------------------------------------------------------------

def test_harmonic_numbers_match_the_exact_sum():
    for alpha in (0.6, 1.0, 1.3):
        exact = math.fsum(k ** -alpha for k in range(1, 200_001))
        assert _harmonic(200_000, alpha) == pytest.approx(exact, rel=1e-9)


def test_zipf_hit_rate_grows_with_cache_and_skew():
    assert zipf_hit_rate(0, 1e6, 1.0) == 0.0 and zipf_hit_rate(1e6, 1e6, 1.0) == 1.0
    rates = [zipf_hit_rate(c, 1e8, 1.0) for c in (1e3, 1e5, 1e7)]
    assert rates == sorted(rates) and 0 < rates[0] < rates[-1] < 1
    assert zipf_hit_rate(1e5, 1e8, 1.2) > zipf_hit_rate(1e5, 1e8, 0.8)
    # alpha = 1: H(n) ≈ ln n + γ, so the hit rate is about ln(C) / ln(N) for large C and N
    assert zipf_hit_rate(1e6, 1e9, 1.0) == pytest.approx((math.log(1e6) + 0.5772) / (math.log(1e9) + 0.5772),
                                                         rel=1e-6)


def test_more_sram_means_more_hits_and_faster_lookups():
    small, large = (MTIA.model_copy(update={"sram_mb": mb}) for mb in (64, 1024))
    costs = [ranking_cost(DLRM, chip, 1, 0.3) for chip in (small, MTIA, large)]
    hits = [c.hit_rate for c in costs]
    assert hits == sorted(hits) and hits[0] < hits[-1]
    per_item = [c.embedding_s_per_item for c in costs]
    assert per_item == sorted(per_item, reverse=True) and per_item[0] > per_item[-1]
    no_sram = MTIA.model_copy(update={"sram_bandwidth_tbps": None})
    assert hit_rate(DLRM, no_sram, 1) == 0.0
    # all lookups from LPDDR5 at 80 % of 204.8 GB/s: 214 rows of 128 fp32 values (~512 B) each
    assert row_bytes(DLRM) == pytest.approx(512, rel=1e-3)
    assert ranking_cost(DLRM, no_sram, 1, 0.3).embedding_s_per_item == pytest.approx(
        214 * row_bytes(DLRM) / (0.8 * 204.8e9))


def test_big_mlp_is_compute_bound_and_small_mlp_memory_bound():
    heavy = DLRM.model_copy(update={"infer_flop_per_sample": 100 * DLRM.infer_flop_per_sample})
    light = DLRM.model_copy(update={"infer_flop_per_sample": DLRM.infer_flop_per_sample / 100})
    slow = MTIA.model_copy(update={"sram_bandwidth_tbps": None})
    items = 10_000
    big = ranking_cost(heavy, MTIA, 1, 0.3)
    assert big.batch_time_s(items) == pytest.approx(big.overhead_s + items * heavy.infer_flop_per_sample
                                                    / (MTIA.peak_flops * 0.3))
    small = ranking_cost(light, slow, 1, 0.3)
    assert small.batch_time_s(items) == pytest.approx(small.overhead_s + small.weights_s
                                                      + items * small.embedding_s_per_item)
    assert big.batch_time_s(items) > ranking_cost(DLRM, MTIA, 1, 0.3).batch_time_s(items)


def test_tables_fit_where_memory_allows():
    assert free_bytes(DLRM, H100, 1) < 0 < free_bytes(DLRM, H100, 2)
    assert free_bytes(DLRM, MTIA, 1) > 0  # 128 GB of LPDDR5 holds the 104.5 GB of tables
    assert ranking_cost(DLRM, MTIA, 1, 0.3).max_items == int(free_bytes(DLRM, MTIA, 1)
                                                             // DLRM.activation_bytes_per_sample)


# --- scenario checks -----------------------------------------------------------------------------------

def _group(**fields) -> list:
    return [{"pool": "mtia", "count": 1, **fields}]


@pytest.mark.parametrize("service, expected", [
    ({"family": "recsys"}, "family: found 'recsys'"),
    ({"replicas": _group(token_budget=4096)}, "replicas[0].token_budget: token_budget is for llm services"),
    ({"slo": {"ttft_p99_ms": 100, "tpot_p99_ms": 20}}, "slo: ttft_p99_ms/tpot_p99_ms are LLM SLOs"),
    ({"traffic": {"generator": {"rate_per_s": 1.0}}}, "generator needs items_per_request"),
    ({"traffic": {"generator": {"rate_per_s": 1.0, "items_per_request": {"fixed": 10},
                                "prompt_tokens": {"fixed": 10}}}}, "prompt_tokens is for llm services"),
    ({"traffic": {"trace": {"format": "azure-llm-2023", "path": "azure-llm-2023/AzureLLMInferenceTrace_conv.csv"}}},
     "ranking services take generator traffic"),
    ({"model": "llama3-8b"}, "not a ranking model with embedding lookups: 'llama3-8b'"),
    ({"replicas": [{"pool": "gpu", "count": 1}]}, "does not fit on 1 × h100-sxm"),
    ({"replicas": [{"pool": "gpu", "count": 1}]}, "accepted: at least 2 chips per replica"),
    ({"slo": None}, "'slo-aware': it routes by the service's SLO targets; accepted: give slo: {latency_p99_ms}"),
])
def test_ranking_mistakes_are_reported_with_file_and_line(tmp_path, service, expected):
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(with_ranking(service), tmp_path)
    text = str(info.value)
    assert expected in text and "workloads.inference[0]" in text and "s.yaml:" in text


@pytest.mark.parametrize("service, expected", [
    ({"slo": {"latency_p99_ms": 50}}, "slo.latency_p99_ms: latency_p99_ms is a ranking SLO"),
    ({"replicas": [{"pool": "gpu", "count": 1, "max_batch": 8}]}, "max_batch is for ranking services"),
    ({"router": {"kind": "slo-aware"}, "slo": None}, "accepted: give slo: {ttft_p99_ms, tpot_p99_ms}"),
    ({"traffic": {"generator": {"rate_per_s": 1.0, "prompt_tokens": {"fixed": 10}}}},
     "an llm service's generator needs output_tokens"),
])
def test_llm_services_refuse_ranking_fields(tmp_path, service, expected):
    from tests.test_inference import with_service

    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(with_service(service), tmp_path)
    text = str(info.value)
    assert expected in text and "workloads.inference[0]" in text and "s.yaml:" in text


def test_a_line_number_points_at_the_offending_field(tmp_path):
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(with_ranking({"replicas": _group(max_seqs=8)}), tmp_path)
    line = next(ln for ln in str(info.value).splitlines() if "max_seqs" in ln)
    number = int(line.split("s.yaml:")[1].split()[0])
    assert "max_seqs" in (tmp_path / "s.yaml").read_text().splitlines()[number - 1]


# --- end to end ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def feed(tmp_path_factory):
    scenario = scenario_from(with_ranking(), tmp_path_factory.mktemp("rank"))
    return scenario, sim.run(scenario)


def test_requests_add_up_and_both_accelerators_report(feed):
    _, results = feed
    s = results.summary["inference"]["feed"]
    r = s["requests"]
    assert r["offered"] == r["completed"] + r["rejected"] + r["unfinished"] > 10_000
    assert r["not_offered"] == 0
    assert set(s["by_accelerator"]) == {"h100-sxm", "mtia-v2"}
    assert sum(a["completed"] for a in s["by_accelerator"].values()) == r["completed"]
    assert s["latency_s"]["p50"] <= s["latency_s"]["p90"] <= s["latency_s"]["p99"]
    assert 0 < s["slo_attainment"] <= 1 and s["goodput_rps"] <= r["completed"] / 120
    for accel in s["by_accelerator"].values():
        assert accel["items_per_it_joule"] > 0 and accel["peak_items_per_s_per_kw"] > 0
        assert accel["it_energy_per_1k_requests_kwh"] > 0


def test_peak_perf_per_watt_follows_the_batch_time_model(feed):
    """The hardware's perf/W at full batches is items/s of a replica over its chips' busy power — computed
    here by hand from the catalog and compared, whichever chip comes out ahead."""
    scenario, results = feed
    from sim.fleet import build_fleet
    from sim.serving.ranking.serve import plan_service
    from sim.validation.checks import scenario_catalog

    catalog = scenario_catalog(scenario)
    fleet = build_fleet(scenario, catalog)
    plan = plan_service(0, scenario.workloads.inference[0], fleet, catalog, scenario.porting)
    mean_items = results.requests["items"].mean()
    by = results.summary["inference"]["feed"]["by_accelerator"]
    for g, accel in enumerate(["mtia-v2", "h100-sxm"]):
        pool = fleet.pools[plan.pools[g]]
        batch = int(SERVICE["replicas"][g]["max_batch"] * mean_items)
        batch_s = plan.costs[g].batch_time_s(batch)
        items_per_s = batch / batch_s
        # a full batch draws idle + its activity (compute share at full draw, the rest memory-bound) × the increment
        share = min(1.0, plan.costs[g].compute_s_per_item * batch / batch_s)
        full = share + (1.0 - share) * MEMORY_BOUND_ACTIVITY
        watts = plan.chips_per_replica[g] * (pool.idle_w_with_server
                                             + full * (pool.busy_w_with_server - pool.idle_w_with_server))
        assert by[accel]["peak_items_per_s_per_kw"] == pytest.approx(items_per_s / watts * 1e3)


def test_same_seed_same_results_other_seed_differs(feed, tmp_path):
    scenario, results = feed
    assert sim.run(scenario).summary["inference"] == results.summary["inference"]
    assert sim.run(scenario.with_overrides({"seed": 9})).summary["inference"] != results.summary["inference"]


def test_power_follows_ranking_load(feed):
    _, results = feed
    util = results.summary["utilization_by_accelerator"]
    assert 0 < util["mtia-v2"] < 4 / 24 + 1e-9  # 4 of the 24 chips serve, and not all the time
    assert results.summary["it_energy_kwh"] > 0


def test_request_rows_include_ranking_items(feed, tmp_path):
    scenario, results = feed
    rows = results.requests
    assert {"items", "finish_s", "state"} <= set(rows.columns)
    assert len(rows) == results.summary["inference"]["feed"]["requests"]["offered"]
    out = results.save(tmp_path / "out")
    assert (out / "latency.png").stat().st_size > 0


def test_requests_bigger_than_every_replica_are_rejected(tmp_path):
    huge = {"traffic": {"generator": {"rate_per_s": 5.0, "items_per_request": {"fixed": 400_000}}}}
    s = sim.run(scenario_from(with_ranking(huge), tmp_path)).summary["inference"]["feed"]
    assert s["requests"]["rejected"] == s["requests"]["offered"] > 0
    assert s["rejected_reasons"] == {"items-exceed-replica-memory": s["requests"]["rejected"]}
