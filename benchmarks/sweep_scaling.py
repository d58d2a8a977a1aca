"""Sweep benchmark: 100 points of the classroom scenario in this process, on 2 local worker processes, and
on a Dask LocalCluster of 2 worker processes.

Usage:  python benchmarks/sweep_scaling.py [--points 100] [--workers 2]

The points are a Latin hypercube over the power cap (50-200 kW) and the CUDA-to-TPU porting efficiency
(0.3-1.0), one run each with the scenario's seed. Figures printed (JSON):
* ``serial_s``, ``pool_s``, ``dask_s``: wall time of the whole sweep (the pool's start-up included: its
  workers are forked from this process, which has run the scenario once; the Dask cluster's start-up and
  the same warm-up of its workers, ``dask_startup_s``, apart: a real cluster is up before the sweep);
* ``parallel_efficiency``: ``serial_s / (workers · pool_s)`` (1 is perfect);
* ``overhead_per_point_s``: ``(workers · pool_s − serial_s) / points``, the worker-seconds a point costs on the
  pool beyond its own simulation (start-up, shipping the scenario, writing the row);
* ``dask_over_pool``: ``dask_s / pool_s``;
* ``machine_efficiency``: the same ratio for a pure-Python loop run alone and as ``workers`` processes at
  once: what this machine's cores give at best (on a 2-vCPU machine whose vCPUs share one core it is
  about 0.5, and no sweep can do better); ``parallel_efficiency`` is to be read against it;
* ``overhead_per_point_beyond_machine_s``: the overhead per point once the pool's worker-seconds are scaled
  by ``machine_efficiency`` (what is left is the sweep's own cost, not the cores' contention).
The three tables are checked to be identical. Numba's kernels are compiled (cached) before timing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sim  # noqa: E402

GRID = {"site.power_cap_mw": [0.05, 0.2], "porting.0.efficiency_frac": [0.3, 1.0]}


def _burn(_=None) -> float:
    start = time.perf_counter()
    total = 0
    for i in range(5_000_000):
        total += i
    return time.perf_counter() - start


def _warm() -> None:
    import sim

    sim.run(sim.load(REPO / "scenarios" / "classroom-hetero.yaml").with_overrides({"duration": "1d"}))


def machine_efficiency(workers: int) -> float:
    import concurrent.futures as cf
    import multiprocessing

    alone = min(_burn() for _ in range(2))
    with cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_burn, range(workers)))  # start-up
        start = time.perf_counter()
        list(pool.map(_burn, range(2 * workers)))
        together = time.perf_counter() - start
    return 2 * alone / together


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    scenario = sim.load(REPO / "scenarios" / "classroom-hetero.yaml")
    options = {"design": "lhs", "samples": args.points}
    sim.run(scenario)  # warm the kernel cache
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        serial = sim.sweep(scenario, GRID, **options)
        serial_s = time.perf_counter() - start
        start = time.perf_counter()
        pool = sim.sweep(scenario, GRID, workers=args.workers, out=Path(folder) / "pool", **options)
        pool_s = time.perf_counter() - start
    import dask
    from distributed import Client, LocalCluster

    dask.config.set({"distributed.worker.profile.enabled": False})  # as dcsim sweep --dask local does
    start = time.perf_counter()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
            Client(c) as client:
        client.wait_for_workers(args.workers)
        client.run(_warm)  # as the forked pool's workers are: the simulator imported, its kernels loaded
        dask_startup_s = time.perf_counter() - start
        start = time.perf_counter()
        dask = sim.sweep(scenario, GRID, executor=client, **options)
        dask_s = time.perf_counter() - start
    machine = machine_efficiency(args.workers)
    pd.testing.assert_frame_equal(serial, pool)
    pd.testing.assert_frame_equal(serial, dask)
    print(json.dumps({
        "points": args.points, "workers": args.workers, "serial_s": round(serial_s, 2), "pool_s": round(pool_s, 2),
        "dask_startup_s": round(dask_startup_s, 2), "dask_s": round(dask_s, 2),
        "parallel_efficiency": round(serial_s / (args.workers * pool_s), 3),
        "overhead_per_point_s": round((args.workers * pool_s - serial_s) / args.points, 3),
        "dask_over_pool": round(dask_s / pool_s, 3), "machine_efficiency": round(machine, 3),
        "overhead_per_point_beyond_machine_s": round((args.workers * pool_s * machine - serial_s) / args.points, 3),
    }, indent=2))


if __name__ == "__main__":
    main()
