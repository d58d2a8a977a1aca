"""Ranking at the fluid fidelity over a year: one diurnal DLRM service on MTIA v2 and H100 replicas, 1-minute bins.

Usage:  python benchmarks/ranking_fluid_year.py [--duration 365d]

The service of tests/test_ranking.py (1,500 queries/s, log-normal items per query, slo-aware routing over four
MTIA v2 replicas and one 2-GPU H100 replica) at ``fidelity: fluid``. Runs ``sim.run`` end to end (no plots, no
files) after a one-day warm-up run, and prints ``duration_s=… bins=… queries=… wall_s=… peak_rss_mb=…``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import yaml

    import sim
    from sim.scenario.units import parse_duration_s
    from tests.test_ranking import with_ranking

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="365d")
    args = parser.parse_args()

    def scenario(duration: str):
        data = with_ranking({"fidelity": "fluid"}, duration=duration)
        data["outputs"] = {"plots": False}
        return sim.load_text(yaml.safe_dump(data, sort_keys=False), "ranking-fluid-year.yaml")

    sim.run(scenario("1d"))
    chosen = scenario(args.duration)
    start = time.perf_counter()
    summary = sim.run(chosen).summary["inference"]["feed"]
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    duration_s = parse_duration_s(args.duration)
    print(f"duration_s={duration_s:.0f} bins={duration_s / 60:.0f} queries={summary['requests']['offered']} "
          f"wall_s={wall:.2f} peak_rss_mb={peak_mb:.0f}")


if __name__ == "__main__":
    main()
