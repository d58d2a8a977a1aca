"""``sim.sweep``: run a scenario at every point of a design, with replicas, on an executor; one tidy table.

Every point is built and validated in the calling process before anything runs (a bad path or value is
reported with file, line and field, for every point at once). Each (point, replica) is one task: the
built scenario goes to the executor, its figures (or its error) come back, the row is written to the
table at once. Executors: in this process (``workers=1``), a local process pool (``workers=N``), any
``concurrent.futures.Executor``, or a ``dask.distributed.Client`` (local or a real cluster).

Replica seeds: with ``replicas=None`` each point runs once with its own seed; with ``replicas=k`` each
point runs ``k`` times with the seeds spawned from its seed (``sim.sweep.seeds``). Points that share a
seed share their replica seeds (common random numbers), so differences between points are not noise
between seeds.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import math
import multiprocessing
import sys
import threading
import time
from pathlib import Path

import pandas as pd

from sim.results.manifest import scenario_hash
from sim.scenario import Scenario, ScenarioError
from sim.sweep.design import Design, SweepError, make_design
from sim.sweep.seeds import replica_seeds
from sim.sweep.table import (
    build_frame,
    check_resumable,
    read_records,
    sweep_manifest,
    write_manifest,
    write_scenario,
    write_table,
)
from sim.sweep.tasks import init_worker, run_task, run_tasks

# A finished row is written at once unless the last write ended less than WRITE_SPACING times its own
# duration ago: the table is rewritten whole, and on a long sweep this keeps the writing under ~10 % of the
# parent's time; rows finished meanwhile go out with the next write (and on Ctrl-C, before it stops).
WRITE_SPACING = 10.0
# On Dask the points go in about this many batches per worker thread: a task's round trip through the
# scheduler (~10 ms) would otherwise cost as much as a small scenario's run; a few batches per worker keep
# the load balanced while points of unequal length finish (rows are recorded as each batch completes).
DASK_BATCHES_PER_WORKER = 4


class SweepRun:
    """What one call of ``run_sweep`` did, beside the table: rows computed now and rows found done."""

    def __init__(self, table: pd.DataFrame, computed: int, resumed: int, folder: Path | None):
        self.table, self.computed, self.resumed, self.folder = table, computed, resumed, folder


def sweep(scenario: Scenario, grid: dict | None = None, *, design: str = "grid", samples: int | None = None,
          lhs_seed: int | None = None, replicas: int | None = None, executor=None, workers: int = 1,
          out: str | Path | None = None, resume: bool = False, progress: bool = False,
          via: str = "override") -> pd.DataFrame:
    """Run ``scenario`` at every point of the design over ``grid`` and return the tidy table (see
    ``run_sweep``, which also says how many rows it computed)."""
    return run_sweep(scenario, grid, design=design, samples=samples, lhs_seed=lhs_seed, replicas=replicas,
                     executor=executor, workers=workers, out=out, resume=resume, progress=progress,
                     via=via).table


def run_sweep(scenario: Scenario, grid: dict | None = None, *, design: str = "grid", samples: int | None = None,
              lhs_seed: int | None = None, replicas: int | None = None, executor=None, workers: int = 1,
              out: str | Path | None = None, resume: bool = False, progress: bool = False,
              via: str = "override") -> SweepRun:
    """Run the sweep; write ``out/sweep.parquet`` and ``out/sweep.json`` as rows finish when ``out`` is given
    (and ``out/scenario.json``, the scenario swept, before any point: the report reads it).

    ``grid``: parameter path -> list of values (``design="grid"`` or ``"zip"``), or -> ``(low, high)`` for
    ``design="lhs"`` with ``samples`` points drawn with ``lhs_seed`` (default: the scenario's seed).
    ``resume``: keep the rows of an earlier run of the same sweep in ``out`` and compute only the others.
    Raises ``ScenarioError`` for points that fail validation and ``SweepError`` for a sweep that cannot run.
    """
    if replicas is not None and (not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1):
        raise SweepError(f"--replicas: give a whole number of at least 1, got {replicas!r}")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise SweepError(f"--workers: give a whole number of at least 1, got {workers!r}")
    plan = make_design(grid, design, samples, scenario.seed if lhs_seed is None else lhs_seed)
    scenarios = _build_points(scenario, plan, via)
    seeds = [[s.seed] if replicas is None else replica_seeds(s.seed, replicas) for s in scenarios]
    folder = Path(out) if out is not None else None
    records: dict[tuple[int, int], dict] = {}
    if folder is not None:
        from sim import __version__

        manifest = sweep_manifest(scenario.name, scenario_hash(scenario), plan, replicas, seeds, __version__)
        records = _open_folder(folder, manifest, plan, resume)
        write_scenario(folder, scenario)
    resumed = len(records)
    todo = [(p, r) for p in range(len(plan.points)) for r in range(len(seeds[p])) if (p, r) not in records]
    tasks = {key: _replica(scenarios[key[0]], seeds[key[0]][key[1]], replicas) for key in todo}
    computed = _compute(tasks, records, plan, seeds, folder, executor, workers, progress, total=resumed + len(todo))
    table = build_frame(plan, seeds, records)
    if folder is not None:
        write_table(folder, table)
    return SweepRun(table, computed, resumed, folder)


def _build_points(scenario: Scenario, plan: Design, via: str) -> list[Scenario]:
    """Every point's scenario, validated; all problems of all points raised together."""
    built, problems = [], []
    for point in plan.points:
        try:
            built.append(scenario.with_overrides(point, via=via) if point else scenario)
        except ScenarioError as exc:
            problems += [p for p in exc.problems if str(p) not in {str(q) for q in problems}]
    if problems:
        raise ScenarioError(problems)
    return built


def _replica(point: Scenario, seed: int, replicas: int | None) -> Scenario:
    return point if replicas is None else point.with_overrides({"seed": seed}, via="replica")


def _open_folder(folder: Path, manifest: dict, plan: Design, resume: bool) -> dict:
    from sim.results.output_folder import OutputError, check_writable_folder
    from sim.sweep.table import MANIFEST, TABLE

    try:
        check_writable_folder(folder, option="sweep folder")
    except OutputError as exc:
        raise SweepError(str(exc)) from None
    if resume:
        check_resumable(folder, manifest)
        records = read_records(folder, plan)
    else:
        if (folder / TABLE).exists() or (folder / MANIFEST).exists():
            raise SweepError(f"sweep folder {folder}: holds an earlier sweep; --resume continues it (the same "
                             "sweep only), or give another --out")
        records = {}
    folder.mkdir(parents=True, exist_ok=True)
    write_manifest(folder, manifest)
    import pyarrow.parquet  # noqa: F401  (now: the first table write is timed for WRITE_SPACING without it)

    return records


def _compute(tasks: dict, records: dict, plan: Design, seeds, folder, executor, workers: int, progress: bool,
             total: int) -> int:
    """Run ``tasks`` ((point, replica) -> scenario), adding each outcome to ``records`` and rewriting the
    table as it comes. Returns the number of rows computed; raises ``SweepError`` when the executor lost
    tasks (the rows it did finish are kept)."""
    bar = _bar(progress, total, len(records))
    done = 0
    last = {"end": 0.0, "took": 0.0}  # the last table write: when it ended and how long it took
    unwritten = False

    def write():
        nonlocal unwritten
        start = time.perf_counter()
        write_table(folder, build_frame(plan, seeds, records))
        last.update(end=time.perf_counter(), took=time.perf_counter() - start)
        unwritten = False

    def record(key, outcome):
        nonlocal done, unwritten
        records[key] = outcome
        done += 1
        unwritten = True
        if folder is not None and time.perf_counter() - last["end"] >= WRITE_SPACING * last["took"]:
            write()
        if bar is not None:
            bar.update(1)

    try:
        if executor is None and workers == 1:
            for key, scenario in tasks.items():
                record(key, run_task(scenario))
            return done
        lost = _run_parallel(tasks, record, executor, workers)
    finally:
        if folder is not None and unwritten:  # also on Ctrl-C: the rows finished so far reach the file
            write()
        if bar is not None:
            bar.close()
    if lost:
        key, exc = lost[0]
        raise SweepError(f"{len(lost)} of {len(tasks)} rows were not computed: the executor failed "
                         f"(point {key[0]} replica {key[1]}: {type(exc).__name__}: {exc}); the other rows are "
                         "kept: run the same sweep again with --resume")
    return done


def _run_parallel(tasks: dict, record, executor, workers: int) -> list:
    """Submit every task, record outcomes as they complete; return the (key, exception) of lost tasks."""
    owned = executor is None
    keys = list(tasks)
    if _is_dask_client(executor):  # batches of points, submitted at once, collected as they complete
        from distributed import as_completed

        workers_n = max(1, len(executor.nthreads()))
        size = max(1, math.ceil(len(keys) / (DASK_BATCHES_PER_WORKER * workers_n)))
        batches = [tuple(keys[i:i + size]) for i in range(0, len(keys), size)]
        futures = dict(zip(executor.map(run_tasks, [[tasks[k] for k in batch] for batch in batches], pure=False),
                           batches))
        completed, cancel = as_completed(futures), lambda: executor.cancel(list(futures))
    else:
        if owned:
            pool = cf.ProcessPoolExecutor(workers, mp_context=_process_context(), initializer=init_worker)
        elif isinstance(executor, cf.Executor):
            pool = executor
        else:
            raise TypeError("executor: give a concurrent.futures.Executor or a dask.distributed.Client, "
                            f"got {type(executor).__name__}")
        futures = {pool.submit(run_tasks, [tasks[key]]): (key,) for key in keys}
        completed, cancel = cf.as_completed(futures), lambda: [f.cancel() for f in futures]
    lost = []
    try:
        for future in completed:
            batch = futures[future]
            try:
                outcomes = future.result()
            except Exception as exc:  # noqa: BLE001 - the executor's failure, not the point's: leave the rows missing
                lost.extend((key, exc) for key in batch)
                continue
            for key, outcome in zip(batch, outcomes):
                record(key, outcome)
    except BaseException:  # Ctrl-C or a failed table write: stop at once, keep the rows written
        cancel()
        if owned:
            pool.shutdown(wait=False, cancel_futures=True)
        raise
    if owned:
        pool.shutdown()
    return sorted(lost, key=lambda item: item[0])


def _process_context():
    """How local workers start: forked from this process when it runs one thread on a system that forks
    (each worker starts with the simulator imported and its kernels loaded: no per-worker start-up); else a
    fork server that imports the simulator once, then forks the workers from it."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["sim.sweep.tasks"])
        return context
    return multiprocessing.get_context("spawn")


def _is_dask_client(executor) -> bool:
    return type(executor).__module__.startswith("distributed") and hasattr(executor, "get_executor")


def _bar(enabled: bool, total: int, initial: int):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="run", desc="dcsim: sweep", file=sys.stderr, leave=False)


def dask_client(address: str, workers: int | None = None, timeout_s: float = 10.0):
    """A ``dask.distributed.Client``: on a ``LocalCluster`` of ``workers`` processes for ``"local"``, else
    connected to the scheduler at ``address`` (``tcp://host:8786``) within ``timeout_s``. Raises
    ``SweepError`` when dask is not installed or the scheduler cannot be reached."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SweepError("--dask needs dask.distributed: pip install 'dcsim[dask]'") from None
    if address == "local":
        import dask

        # the workers' statistical profiler samples every thread's stack every 10 ms: for this pure-Python
        # engine it costs more than it tells (a remote cluster keeps its own configuration)
        dask.config.set({"distributed.worker.profile.enabled": False})
        cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        return Client(cluster)
    try:
        return Client(address, timeout=f"{timeout_s}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise SweepError(f"--dask {address}: cannot reach a Dask scheduler there ({exc})") from None


__all__ = ["SweepError", "SweepRun", "dask_client", "run_sweep", "sweep"]
