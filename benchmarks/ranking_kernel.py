"""Speed of the ranking kernel alone (``sim.kernels.ranking_compiled.serve_ranking``).

Usage:  python benchmarks/ranking_kernel.py

Two million Poisson queries over 1,000 s (~1,000 items each) through 1, 8 and 32 identical replicas
(round-robin, max_batch 32, 2 ms batching delay), each replica's per-item time scaled with the replica
count so the load per replica stays light. One line per replica count:
``replicas=… requests=… wall_s=… requests_per_s=… batches=…``. Numba's compile time is printed apart.
"""

from __future__ import annotations

import time

import numpy as np

from sim.kernels.ranking_compiled import serve_ranking
from sim.kernels.ranking_reference import ROUTER_ROUND_ROBIN


def parameters(replicas: int) -> dict:
    def full(value, dtype=float):
        return np.full(replicas, value, dtype=dtype)

    return dict(slo_s=0.05, overhead_s=full(5e-4), compute_s_per_item=full(7.8e-7 * replicas / 8),
                weights_s=full(2e-4), embedding_s_per_item=full(2.5e-7), max_batch=full(32, np.int64),
                max_delay_s=full(0.002), max_items=full(80_000, np.int64), cost_per_s=full(1.0),
                active_from_s=full(0.0), active_until_s=full(np.inf),
                fail_s=np.zeros(0), back_s=np.zeros(0), fail_replica=np.zeros(0, dtype=np.int64),
                horizon_s=1000.0, bin_width_s=60.0)


def main() -> None:
    rng = np.random.default_rng(0)
    n = 2_000_000
    arrival = np.sort(rng.uniform(0, 1000, n))
    items = np.maximum(1, rng.lognormal(np.log(1000), 0.6, n)).astype(np.int64)
    start = time.perf_counter()
    serve_ranking(arrival[:100], items[:100], ROUTER_ROUND_ROBIN, **parameters(1))
    print(f"compile_or_load_s={time.perf_counter() - start:.2f}")
    for replicas in (1, 8, 32):
        start = time.perf_counter()
        *_, batches, _, _ = serve_ranking(arrival, items, ROUTER_ROUND_ROBIN, **parameters(replicas))
        wall = time.perf_counter() - start
        print(f"replicas={replicas} requests={n} wall_s={wall:.2f} requests_per_s={n / wall:,.0f} "
              f"batches={int(batches.sum())}")


if __name__ == "__main__":
    main()
