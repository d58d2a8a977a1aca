"""Fluid ranking against request-level ranking over a grid of mixed-chip services: relative errors.

Usage:  python benchmarks/ranking_fluid_fidelity.py [--duration 20] [--seed 1] [--mix NAME ...] [--router NAME ...]

One DLRM-DCNv2 service (log-normal items per query, median 2,000, sigma 0.5) on replica groups of several chip
types behind one router, at a constant Poisson rate of 30, 60 and 85 % of the groups' capacity at full batches
(``sim.serving.ranking.fluid.capacity_per_s``), for every router the ranking family accepts, ``max_batch``
1 / 16 / 64 and ``max_queue_delay_ms`` 0.5 / 2 / 10 (every group alike). Each cell is served at both
fidelities through the families' own classes (the serving stage alone, no training cluster) over ``--duration``
seconds; the request level's statistics count every query of the run, so the short empty start is included.
Prints one row per cell: fluid ÷ request − 1 of items/s, mean latency and p99 latency, in % (``*``: over 5 % on
items/s or mean latency), then per router and ``max_batch`` the cells within 5 %, and the worst of each column.
The grid is the two mixed services (``mtia+h100``, ``mtia+h100+tpu``: 270 cells, about 4 minutes);
``--mix mtia h100`` runs single-chip services for reference. ``tests/test_fluid_ranking.py`` runs the agreeing
cells and asserts the 5 % bound; docs/inference.md quotes the grid.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

ITEMS = {"lognormal": {"median": 2000, "sigma": 0.5}}
# chip mixes: (pool, replicas, chips per replica)
MIXES = {
    "mtia+h100": (("mtia", 4, 1), ("h100", 1, 2)),
    "mtia+h100+tpu": (("mtia", 4, 1), ("h100", 2, 2), ("tpu", 1, 4)),
    "mtia": (("mtia", 4, 1),),
    "h100": (("h100", 2, 2),),
}
FLEET = [{"name": "h100", "accelerator": "h100-sxm", "count": 16, "chips_per_server": 8, "servers_per_rack": 2},
         {"name": "tpu", "accelerator": "tpu-v6e", "count": 16, "chips_per_server": 8, "servers_per_rack": 2},
         {"name": "mtia", "accelerator": "mtia-v2", "count": 24, "chips_per_server": 24, "servers_per_rack": 1}]
ROUTERS = ("round-robin", "jsq", "least-work", "central", "slo-aware")
LOADS = (0.3, 0.6, 0.85)
MAX_BATCH = (1, 16, 64)
DELAY_MS = (0.5, 2.0, 10.0)


def scenario_data(mix: str, router: str, max_batch: int, delay_ms: float, rate: float, duration_s: float,
                  seed: int, fidelity: str) -> dict:
    """The scenario of one grid cell (``rate`` queries/s)."""
    replicas = [{"pool": pool, "count": count, "chips_per_replica": chips, "max_batch": max_batch,
                 "max_queue_delay_ms": delay_ms} for pool, count, chips in MIXES[mix]]
    return {"schema_version": 1, "name": "ranking-fluid-fidelity", "seed": seed, "start": "2026-01-01",
            "duration": float(duration_s), "site": {"pue": 1.2}, "fleet": FLEET,
            "workloads": {"inference": [{
                "name": "feed", "model": "dlrm-dcnv2", "family": "ranking", "fidelity": fidelity,
                "replicas": replicas,
                "traffic": {"generator": {"rate_per_s": float(rate), "items_per_request": ITEMS}},
                "slo": {"latency_p99_ms": 25}, "router": {"kind": router}}]},
            "outputs": {"plots": False}}


def _run(data: dict) -> tuple[dict, object]:
    """The service's summary and its family run (plan included), through the serving stage alone."""
    import yaml

    import sim
    from sim.fleet import build_fleet
    from sim.rng import streams
    from sim.serving import FAMILIES
    from sim.serving.family import ServingContext
    from sim.serving.stage import serve_all
    from sim.validation.checks import scenario_catalog

    scenario = sim.load_text(yaml.safe_dump(data, sort_keys=False), "ranking-fluid-fidelity.yaml")
    catalog = scenario_catalog(scenario)
    fleet = build_fleet(scenario, catalog)
    rngs = streams(scenario.seed)
    context = ServingContext(fleet=fleet, catalog=catalog, porting=scenario.porting,
                             horizon_s=float(scenario.duration), bin_width_s=float(scenario.duration),
                             base_dir=REPO, rng=rngs["inference"], ranking_rng=rngs["ranking"],
                             start=scenario.start)
    outcome = serve_all(scenario.workloads.inference, FAMILIES, context, {})
    run = outcome.services[0]
    return run.summary(), run


def capacity(mix: str, router: str, max_batch: int, delay_ms: float) -> float:
    """Queries/s the mix serves at full batches (the fluid model's capacity)."""
    import yaml

    import sim
    from sim.fleet import build_fleet
    from sim.serving.ranking.fluid import capacity_per_s
    from sim.serving.ranking.serve import plan_service
    from sim.validation.checks import scenario_catalog

    data = scenario_data(mix, router, max_batch, delay_ms, 1.0, 1.0, 1, "fluid")
    scenario = sim.load_text(yaml.safe_dump(data, sort_keys=False), "ranking-fluid-fidelity.yaml")
    catalog = scenario_catalog(scenario)
    fleet = build_fleet(scenario, catalog)
    service = scenario.workloads.inference[0]
    plan = plan_service(0, service, fleet, catalog, scenario.porting)
    return float(capacity_per_s(plan, service, REPO).sum())


def compare(mix: str, load: float, router: str, max_batch: int, delay_ms: float, duration_s: float,
            seed: int = 1) -> dict:
    """Relative errors (fluid ÷ request − 1) of items/s, mean and p99 latency for one cell, with both summaries."""
    rate = load * capacity(mix, router, max_batch, delay_ms)
    summaries = {f: _run(scenario_data(mix, router, max_batch, delay_ms, rate, duration_s, seed, f))[0]
                 for f in ("request", "fluid")}
    request, fluid = summaries["request"], summaries["fluid"]
    return {"rate": rate, "request": request, "fluid": fluid,
            "items": fluid["items_per_s"] / request["items_per_s"] - 1.0,
            "mean": fluid["latency_s"]["mean"] / request["latency_s"]["mean"] - 1.0,
            "p99": fluid["latency_s"]["p99"] / request["latency_s"]["p99"] - 1.0}


def grid(mixes=("mtia+h100", "mtia+h100+tpu"), routers=ROUTERS):
    return itertools.product(mixes, LOADS, routers, MAX_BATCH, DELAY_MS)


def main() -> None:
    sys.path.insert(0, str(REPO))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="simulated seconds per cell")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mix", nargs="*", default=["mtia+h100", "mtia+h100+tpu"], choices=list(MIXES))
    parser.add_argument("--router", nargs="*", default=list(ROUTERS), choices=list(ROUTERS))
    args = parser.parse_args()
    start = time.perf_counter()
    worst = {"items": 0.0, "mean": 0.0, "p99": 0.0}
    within: dict[str, list[int]] = {}
    print(f"{'mix':<14} {'load':>4} {'router':<11} {'B':>3} {'d_ms':>4} {'q/s':>7} {'req_ms':>8} "
          f"{'items%':>7} {'mean%':>8} {'p99%':>8}")
    for mix, load, router, max_batch, delay_ms in grid(args.mix, args.router):
        c = compare(mix, load, router, max_batch, delay_ms, args.duration, args.seed)
        for key in worst:
            worst[key] = max(worst[key], abs(c[key]))
        ok = max(abs(c["items"]), abs(c["mean"])) <= 0.05
        counts = within.setdefault(f"{router} B={max_batch}", [0, 0])
        counts[0] += ok
        counts[1] += 1
        print(f"{mix:<14} {load:>4.2f} {router:<11} {max_batch:>3} {delay_ms:>4g} {c['rate']:>7.0f} "
              f"{c['request']['latency_s']['mean'] * 1e3:>8.2f} {c['items'] * 100:>+7.2f} {c['mean'] * 100:>+8.1f} "
              f"{c['p99'] * 100:>+8.1f}{'' if ok else ' *'}", flush=True)
    print("cells within 5 % on items/s and mean latency: "
          + ", ".join(f"{key} {ok}/{n}" for key, (ok, n) in within.items()))
    print(f"worst |error|: items/s {worst['items'] * 100:.2f} %, mean latency {worst['mean'] * 100:.0f} %, "
          f"p99 latency {worst['p99'] * 100:.0f} % (* marks a cell over 5 %; wall {time.perf_counter() - start:.0f} s)")

if __name__ == "__main__":
    main()
