"""Fluid fidelity of inference: it agrees with the request-level kernel where both apply, its counts add
up, overload builds a backlog that drains, runs are deterministic, and its numeric core matches closed
forms (Erlang C tails, M/M/∞ and M/M/c chains, Lindley's recursion, convolutions by sampling)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import sim
from sim.fleet import build_fleet
from sim.kernels import fluid as kernel
from sim.kernels.queueing import erlang_c
from sim.rng import streams
from sim.scenario.distributions import Distribution
from sim.serving import FAMILIES
from sim.serving.family import ServingContext
from sim.serving.fluid.split import mix
from sim.serving.fluid.traffic import GeneratorLengths, TraceLengths
from sim.serving.stage import serve_all
from sim.validation.checks import scenario_catalog
from sim.workload.distributions import cdf, mean, sample, token_pmf
from tests.conftest import scenario_from
from tests.test_inference import SERVICE, with_service


def _generator(**changes) -> dict:
    return {"traffic": {"generator": {**SERVICE["traffic"]["generator"], **changes}}}


def _both(tmp_path, service: dict, duration: str = "2h") -> tuple[dict, dict]:
    out = []
    for fidelity in ("request", "fluid"):
        data = with_service({**service, "fidelity": fidelity}, duration=duration)
        data["workloads"].pop("training")
        out.append(sim.run(scenario_from(data, tmp_path, f"{fidelity}.yaml")).summary["inference"]["chat"])
    return out[0], out[1]


@pytest.mark.parametrize("service", [
    {"replicas": [{"pool": "gpu", "count": 4}], **_generator(rate_per_s=2.0)},
    {"replicas": [{"pool": "gpu", "count": 3, "max_seqs": 4}], "router": {"kind": "jsq"},
     **_generator(rate_per_s=1.7, output_tokens={"uniform": {"low": 20, "high": 300}})},
    {"replicas": [{"pool": "gpu", "count": 2}, {"pool": "gpu", "count": 2}], **_generator(rate_per_s=2.0)},
], ids=["least-work", "jsq-small-batches", "two-alike-groups"])
def test_request_level_and_fluid_agree_on_throughput_and_utilization(tmp_path, service):
    request, fluid = _both(tmp_path, service)
    assert fluid["fidelity"] == "fluid" and request["fidelity"] == "request"
    assert 0.5 < request["utilization"] < 0.75  # a stable load, well below saturation
    assert fluid["utilization"] == pytest.approx(request["utilization"], rel=0.05)
    assert fluid["tokens_per_s"] == pytest.approx(request["tokens_per_s"], rel=0.05)
    assert fluid["requests"]["completed"] == pytest.approx(request["requests"]["completed"], rel=0.05)
    assert fluid["ttft_s"]["p50"] == pytest.approx(request["ttft_s"]["p50"], rel=0.25)


def test_fluid_counts_add_up_and_kv_rejections_follow_the_length_distribution(tmp_path):
    service = {"fidelity": "fluid", **_generator(rate_per_s=0.05, prompt_tokens={"uniform": {"low": 1000,
                                                                                              "high": 600000}},
                                                 output_tokens={"fixed": 10})}
    data = with_service(service, duration="2d")
    results = sim.run(scenario_from(data, tmp_path))
    chat = results.summary["inference"]["chat"]
    r = chat["requests"]
    assert r["offered"] == r["completed"] + r["rejected"] + r["unfinished"] == round(0.05 * 2 * 86400)
    room = chat["kv_capacity_tokens"] - 10  # a prompt longer than this never fits with its 10 outputs
    assert r["rejected"] == pytest.approx(r["offered"] * (600000 - room) / 599000, abs=1)
    assert results.requests.empty  # fluid services have no request rows


SPLIT = {"model": "llama3-70b", "replicas": [{"pool": "gpu", "count": 1, "chips_per_replica": 2},
                                             {"pool": "gpu", "count": 1, "chips_per_replica": 8}]}


def test_requests_go_to_the_groups_that_can_hold_them(tmp_path):
    # a 2-chip group holds 8,544 KV tokens, an 8-chip one 1.3 M: the request level serves every prompt of up
    # to 60,000 tokens on the big group, so fluid must reject none and route only short ones to the small group
    service = {**SPLIT, **_generator(rate_per_s=0.14, prompt_tokens={"uniform": {"low": 1000, "high": 60000}})}
    request, fluid = _both(tmp_path, service)
    assert request["requests"]["rejected"] == fluid["requests"]["rejected"] == 0
    r = fluid["requests"]
    assert r["offered"] == r["completed"] + r["rejected"] + r["unfinished"] == round(0.14 * 7200)
    assert 0.5 < request["utilization"] < 0.75
    assert fluid["utilization"] == pytest.approx(request["utilization"], rel=0.05)
    assert fluid["tokens_per_s"] == pytest.approx(request["tokens_per_s"], rel=0.05)
    scenario = scenario_from(with_service({**service, "fidelity": "fluid"}, duration="2h"), tmp_path)
    plans, served = _served(scenario, tmp_path)
    small, big = served[0]["groups"]
    rate = [p.replicas * p.kernel["tokens_per_s"] for p in plans]
    room = plans[0].kernel["kv_capacity_tokens"] - 150  # P + O <= capacity, O exponential with mean 150
    fits_small = (room - 1000) / 59000  # linear in O over its range, so E[P(P <= capacity - O)] is this
    assert small["offered"] / r["offered"] == pytest.approx(fits_small * rate[0] / sum(rate), rel=2e-3)
    assert small["offered"] + big["offered"] == pytest.approx(r["offered"], abs=1e-6)


def test_fluid_rejects_only_what_fits_no_group(tmp_path):
    service = {"fidelity": "fluid", **SPLIT, **_generator(rate_per_s=0.05, prompt_tokens={"uniform": {
        "low": 1000, "high": 2_000_000}}, output_tokens={"fixed": 10})}
    scenario = scenario_from(with_service(service, duration="2d"), tmp_path)
    plans, served = _served(scenario, tmp_path)
    chat = sim.run(scenario).summary["inference"]["chat"]
    r = chat["requests"]
    assert r["offered"] == r["completed"] + r["rejected"] + r["unfinished"] == round(0.05 * 2 * 86400)
    room = max(p.kernel["kv_capacity_tokens"] for p in plans) - 10  # the largest prompt the big group holds
    assert r["rejected"] == pytest.approx(r["offered"] * (2_000_000 - room) / 1_999_000, abs=1)
    assert sum(g["offered"] for g in served[0]["groups"]) + served[0]["rejected"] == pytest.approx(r["offered"],
                                                                                                   abs=0.5)


@pytest.mark.parametrize("source", ["generator", "trace"])
def test_bands_of_kv_need_add_up_to_the_requests_that_fit(tmp_path, source):
    if source == "generator":
        lengths = GeneratorLengths(Distribution(uniform={"low": 100, "high": 9000}),
                                   Distribution(exponential={"mean": 300}), str(tmp_path))
    else:
        rng = np.random.default_rng(4)
        n, bins = 5000, 7
        lengths = TraceLengths(rng.integers(0, bins, n), rng.integers(100, 9000, n), rng.integers(1, 900, n), bins)
    low, mid, high, budget = 3000, 6000, 8000, 512
    whole = lengths.lengths(high, budget)
    bands = mix([(1.0, lengths.lengths(low, budget)), (1.0, lengths.lengths(mid, budget, low)),
                 (1.0, lengths.lengths(high, budget, mid))])
    assert 0 < float(np.min(lengths.lengths(mid, budget, low).accepted_frac)) < float(np.max(whole.accepted_frac)) < 1
    for name in ("accepted_frac", "prompt", "output", "chunks", "context"):
        np.testing.assert_allclose(getattr(bands, name), getattr(whole, name), rtol=1e-9)
    shared = mix([(0.25, lengths.lengths(low, budget))])  # a quarter of the band, with the band's moments
    np.testing.assert_allclose(shared.accepted_frac, 0.25 * lengths.lengths(low, budget).accepted_frac)


def test_heterogeneous_chip_groups_agree_on_throughput(tmp_path):
    # H100 and TPU v6e groups: the split follows nominal decode rates (FLOP/s would give the TPUs more)
    service = {"replicas": [{"pool": "gpu", "count": 2}, {"pool": "tpu", "count": 2}], **_generator(rate_per_s=1.4)}
    request, fluid = _both(tmp_path, service)
    assert fluid["tokens_per_s"] == pytest.approx(request["tokens_per_s"], rel=0.05)
    assert fluid["requests"]["completed"] == pytest.approx(request["requests"]["completed"], rel=0.05)
    for accel in ("h100-sxm", "tpu-v6e"):  # measured: 6,746 and 3,331 against 6,668 and 3,426
        assert fluid["by_accelerator"][accel]["completed"] == pytest.approx(
            request["by_accelerator"][accel]["completed"], rel=0.05)
    # groups of different chips keep a chain each while the router balances over all four: busy fraction
    # reads low (measured 0.542 against 0.593)
    assert 0.8 * request["utilization"] < fluid["utilization"] < request["utilization"]


def test_alike_groups_share_one_chain_and_split_its_results_by_replicas(tmp_path):
    # balanced routing levels batches over all of a service's replicas: groups of 1 and 3 alike replicas
    # are served as one group of 4, and each gets its replica share of every amount
    runs = {}
    for name, counts in (("split", (1, 3)), ("one", (4,))):
        service = {"fidelity": "fluid", "replicas": [{"pool": "gpu", "count": c} for c in counts],
                   **_generator(rate_per_s=2.0)}
        scenario = scenario_from(with_service(service, duration="2h"), tmp_path, f"{name}.yaml")
        runs[name] = (_served(scenario, tmp_path)[1][0], sim.run(scenario).summary["inference"]["chat"])
    (split, split_summary), (one, one_summary) = runs["split"], runs["one"]
    whole = one["groups"][0]
    for part, share in zip(split["groups"], (0.25, 0.75)):
        for name in ("offered", "completed", "unfinished", "output_tokens", "met"):
            assert part[name] == pytest.approx(share * whole[name], rel=1e-12)
        np.testing.assert_allclose(part["busy_chip_s"], share * whole["busy_chip_s"], rtol=1e-12)
        np.testing.assert_allclose(part["ttft"]["weight"], share * whole["ttft"]["weight"], rtol=1e-12)
    for key in ("utilization", "tokens_per_s", "ttft_s", "e2e_s", "requests", "slo_attainment"):
        assert split_summary[key] == pytest.approx(one_summary[key], rel=1e-9)
    robin = {"fidelity": "fluid", "router": {"kind": "round-robin"},
             "replicas": [{"pool": "gpu", "count": 1}, {"pool": "gpu", "count": 3}], **_generator(rate_per_s=2.0)}
    _, served = _served(scenario_from(with_service(robin, duration="2h"), tmp_path, "robin.yaml"), tmp_path)
    small, big = served[0]["groups"]  # round-robin is not pooled: one chain per replica, at its share
    assert small["offered"] == pytest.approx(big["offered"] / 3, rel=1e-9)


def _served(scenario, base_dir):
    """Every service's replica groups and what the fluid model returned for it (the serving stage alone)."""
    catalog = scenario_catalog(scenario)
    fleet = build_fleet(scenario, catalog)
    rngs = streams(scenario.seed)
    context = ServingContext(fleet=fleet, catalog=catalog, porting=scenario.porting,
                             horizon_s=float(scenario.duration),
                             bin_width_s=float(scenario.outputs.timeseries_interval), base_dir=base_dir,
                             rng=rngs["inference"], ranking_rng=rngs["ranking"])
    outcome = serve_all(scenario.workloads.inference, FAMILIES, context, {})
    return outcome.scaled_groups, [run.result for run in outcome.services]


def test_overload_builds_a_backlog_that_drains(tmp_path):
    service = {"fidelity": "fluid", "replicas": [{"pool": "gpu", "count": 2}],
               **_generator(rate_per_s=20.0, diurnal={"amplitude_frac": 0.9, "peak_hour": 12})}
    scenario = scenario_from(with_service(service, duration="1d"), tmp_path)
    plans, served = _served(scenario, tmp_path)
    group = served[0]["groups"][0]
    backlog, done = group["backlog_per_bin"], group["served_per_bin"]
    assert backlog.max() > 1000 and backlog[0] == 0 and backlog[-1] == 0  # builds at the peak, gone by night
    peak = int(backlog.argmax())
    rising = np.diff(backlog[: peak + 1])
    assert (rising[backlog[1: peak + 1] > 0] > 0).all()  # rises without a break up to its peak
    assert np.isclose(done.sum(), group["offered"] - backlog[-1])  # every request routed to it fits
    chips = plans[0].replicas * plans[0].chips_per_replica
    busy = group["busy_chip_s"] / (60.0 * chips)
    assert np.allclose(busy[backlog > 0], 1.0) and (busy < 1.0).any()  # busy throughout while backlogged
    summary = sim.run(scenario).summary["inference"]["chat"]
    assert summary["ttft_s"]["p99"] > 60 and summary["slo_attainment"] < 0.9


def test_fluid_run_is_deterministic_and_bursty_paths_follow_the_seed(tmp_path):
    service = {"fidelity": "fluid", **_generator(bursty={"burst_factor": 5, "mean_burst_s": 120,
                                                          "mean_calm_s": 600})}
    scenario = scenario_from(with_service(service, duration="6h"), tmp_path)
    first = sim.run(scenario)
    assert first.summary == sim.run(scenario).summary
    assert first.timeseries.equals(sim.run(scenario).timeseries)
    other = sim.run(scenario.with_overrides({"seed": 9})).summary["inference"]["chat"]
    assert other["requests"]["offered"] != first.summary["inference"]["chat"]["requests"]["offered"]


def test_fluid_busy_time_feeds_the_power_time_series(tmp_path):
    data = with_service({"fidelity": "fluid", "replicas": [{"pool": "gpu", "count": 16}]}, duration="3h")
    data["workloads"].pop("training")
    data["outputs"] = {"timeseries_interval": "7min"}  # not a multiple of the 1-minute fluid bins
    results = sim.run(scenario_from(data, tmp_path))
    series = results.timeseries
    widths = np.diff(np.append(series["time_s"].to_numpy(), 3 * 3600.0))
    busy_chip_s = float((series["busy_chips.h100-sxm"] * widths).sum())
    chat = results.summary["inference"]["chat"]
    assert busy_chip_s == pytest.approx(chat["utilization"] * 16 * 3 * 3600.0, rel=1e-9)
    assert 0 < chat["utilization"] < 1


def test_request_and_fluid_services_share_a_pool(tmp_path):
    data = with_service({"fidelity": "fluid"}, duration="1h")
    data["workloads"].pop("training")
    data["outputs"] = {"timeseries_interval": "7min"}
    data["workloads"]["inference"].append({**SERVICE, "name": "chat-2"})
    results = sim.run(scenario_from(data, tmp_path))
    served = results.summary["inference"]
    assert served["chat"]["fidelity"] == "fluid" and served["chat-2"]["fidelity"] == "request"
    series = results.timeseries
    widths = np.diff(np.append(series["time_s"].to_numpy(), 3600.0))
    busy_chip_s = float((series["busy_chips.h100-sxm"] * widths).sum())
    expected = (served["chat"]["utilization"] + served["chat-2"]["utilization"]) * 2 * 3600.0
    assert busy_chip_s == pytest.approx(expected, rel=1e-9)
    assert set(results.requests["service"]) == {"chat-2"}


def test_fluid_trace_counts_add_up(tmp_path):
    trace = {"format": "azure-llm-2023", "path": "azure-llm-2023/AzureLLMInferenceTrace_conv.csv",
             "limit": 2000, "scale": 2}
    data = with_service({"fidelity": "fluid", "fluid_bin": "30s", "traffic": {"trace": trace}}, duration="5min")
    chat = sim.run(scenario_from(data, tmp_path)).summary["inference"]["chat"]
    r = chat["requests"]
    assert r["offered"] + r["not_offered"] == 4000 and r["not_offered"] > 0
    assert r["offered"] == r["completed"] + r["rejected"] + r["unfinished"]
    assert chat["ttft_s"]["p50"] <= chat["ttft_s"]["p90"] <= chat["ttft_s"]["p99"]


@pytest.mark.parametrize("fluid_bin, duration, expected", [
    (0, "1d", "fluid_bin: found 0"), ("1s", "2y", "63,072,000 bins over the horizon; accepted: at most 20,000,000"),
])
def test_fluid_bin_mistakes_are_reported(tmp_path, fluid_bin, duration, expected):
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(with_service({"fidelity": "fluid", "fluid_bin": fluid_bin}, duration=duration), tmp_path)
    assert "s.yaml:" in str(info.value) and "workloads.inference[0].fluid_bin" in str(info.value)
    assert expected in str(info.value)


# --- the numeric core -------------------------------------------------------------------------------


def test_erlang_c_tail_percentiles_match_the_closed_form():
    servers, load, rate = 12, 9.5, 3.0
    c = kernel.erlang_c(servers, load)
    assert c == pytest.approx(erlang_c(servers, load), rel=1e-10)
    decay = servers * rate - load * rate  # cμ − λ
    probs = np.array([0.5, 0.9, 0.99])
    shift = 0.2
    got = kernel.mixture_quantiles(probs, np.array([1.0]), np.array([shift]), np.zeros(1), np.array([c]),
                                   np.array([decay]), np.zeros(1), np.zeros(1), np.zeros(1))
    # P(W > t) = C·exp(−(cμ − λ)t)  =>  the p-quantile is 0 when p <= 1 − C, else ln(C / (1 − p)) / (cμ − λ)
    expected = shift + np.where(probs <= 1 - c, 0.0, np.log(c / (1 - probs)) / decay)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("servers", [1, 3, 40, 2048])
def test_vectorised_erlang_c_equals_the_recursion(servers):
    loads = np.array([0.0, 0.3, servers * 0.5, servers * 0.95, servers - 1e-3, servers, servers * 2.0])
    expected = [erlang_c(servers, float(a)) for a in loads]
    np.testing.assert_allclose(kernel.erlang_c(servers, loads), expected, rtol=1e-9, atol=1e-300)


def test_component_cdf_matches_sampled_convolutions():
    rng = np.random.default_rng(3)
    n = 400_000
    shift, spread, rate, low, high = 0.5, 0.8, 2.5, 0.3, 1.7
    kind = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    wait = np.where(kind == 1, rng.exponential(1 / rate, n), np.where(kind == 2, rng.uniform(low, high, n), 0.0))
    x = shift + rng.uniform(0, spread, n) + wait
    t = np.linspace(0.0, 4.0, 41)
    got = kernel.component_cdf(t, shift, spread, 0.3, rate, 0.2, low, high)
    empirical = (x[None, :] <= t[:, None]).mean(axis=1)
    np.testing.assert_allclose(got, empirical, atol=0.003)
    no_spread = kernel.component_cdf(t, shift, 0.0, 0.3, rate, 0.2, low, high)
    x0 = shift + wait
    np.testing.assert_allclose(no_spread, (x0[None, :] <= t[:, None]).mean(axis=1), atol=0.003)
    mixture = [np.array([v]) for v in (shift, spread, 0.3, rate, 0.2, low, high)]
    assert kernel.mixture_mean(np.ones(1), *mixture) == pytest.approx(x.mean(), rel=0.005)


def test_chain_matches_infinite_server_and_mmc_oracles():
    tau, iterations, lam = 0.01, 100.0, np.array([0.3, 1.0, 2.5])
    # one replica, batch never full, constant iteration time: M/M/∞, P(idle) = exp(−λ·I·τ)
    busy, running, *_ = kernel.stationary_group(lam, np.full((3, 400), tau), np.full(3, iterations),
                                                np.full(3, 400), 1)
    np.testing.assert_allclose(busy, 1 - np.exp(-lam * iterations * tau), rtol=1e-9)
    np.testing.assert_allclose(running, lam * iterations * tau, rtol=1e-9)
    # R balanced replicas of one slot each: M/M/R, busy = a/R and P(all busy) = Erlang C
    replicas, service_s = 5, iterations * tau
    lam = np.array([1.0, 3.0, 4.5])
    busy, _, _, busy_seen, full_rate, stable = kernel.stationary_group(
        lam, np.full((3, 1), tau), np.full(3, iterations), np.ones(3, dtype=np.int64), replicas)
    np.testing.assert_allclose(busy, lam * service_s / replicas, rtol=1e-9)
    np.testing.assert_allclose(busy_seen, [erlang_c(replicas, a) for a in lam * service_s], rtol=1e-9)
    assert stable.all() and np.allclose(full_rate, 1 / service_s)


def test_backlog_follows_lindleys_recursion():
    rng = np.random.default_rng(0)
    offered, capacity = rng.uniform(0, 10, 500), rng.uniform(3, 7, 500)
    expected, level = [], 0.0
    for a, c in zip(offered, capacity):
        level = max(0.0, level + a - c)
        expected.append(level)
    np.testing.assert_allclose(kernel.fluid_backlog(offered, capacity), expected, atol=1e-9)
    np.testing.assert_allclose(kernel.fluid_backlog([5, 5, 5, 0, 0], 3), [2, 4, 6, 3, 0])


def test_per_token_term_adds_to_the_iteration_time():
    args = (8.0, 100.0, 800.0, 1.0, 1e5, 101.0, 2 * 8e9, 4e14, 16e9, 131072.0, 2.7e12, 0.003)
    base = kernel.mean_iteration_time_s(*args)
    tokens = 8.0 * (100.0 + 800.0) / 101.0  # decode + prompt tokens of an average iteration
    assert kernel.mean_iteration_time_s(*args, per_token_s=1e-5) == pytest.approx(base + 1e-5 * tokens)


@pytest.mark.parametrize("spec, closed", [
    ({"fixed": 7.0}, 7.0),
    ({"lognormal": {"median": 800, "sigma": 0.8}}, 800 * math.exp(0.32)),
    ({"exponential": {"mean": 150}}, 150.0),
    ({"uniform": {"low": 20, "high": 300}}, 160.0),
])
def test_distribution_mean_cdf_and_token_pmf(spec, closed):
    dist = Distribution(**spec)
    assert mean(dist) == pytest.approx(closed)
    draws = sample(dist, 400_000, np.random.default_rng(1))
    assert draws.mean() == pytest.approx(closed, rel=0.01)
    points = np.quantile(draws, [0.1, 0.5, 0.9])
    np.testing.assert_allclose(cdf(dist, points), [(draws <= p).mean() for p in points], atol=0.003)
    pmf = token_pmf(dist)
    tokens = np.maximum(1, np.ceil(draws))  # what the request generator draws
    assert pmf.sum() == pytest.approx(1.0) and pmf[0] == 0
    assert pmf @ np.arange(len(pmf)) == pytest.approx(tokens.mean(), rel=0.01)


def test_empirical_distribution_mean():
    dist = Distribution(empirical="philly-runtime")
    from sim.workload.distributions import empirical_values

    assert mean(dist) == pytest.approx(empirical_values("philly-runtime").mean())


def test_fluid_load_is_drawn_and_adds_up(tmp_path):
    data = with_service({"fidelity": "fluid", **_generator(rate_per_s=1.0)}, duration="6h")
    results = sim.run(scenario_from(data, tmp_path))
    edges, offered, served = results.fluid_load["chat"]
    chat = results.summary["inference"]["chat"]["requests"]
    assert offered.sum() == pytest.approx(chat["offered"], abs=1)  # counts are rounded to whole requests
    assert chat["completed"] - 1 <= served.sum() <= chat["completed"] + chat["unfinished"] + 1
    assert len(edges) == len(offered) + 1 and edges[-1] == pytest.approx(6 * 3600)
    out = results.save(tmp_path / "out")
    assert (out / "served.png").stat().st_size > 0 and not (out / "latency.png").exists()
