"""The per-process trace cache (``sim.workload.cache``): a data file is parsed once per process while it is
unchanged, a changed file is read again, cached data never leaks between runs, results are the same with
and without the cache, and a sweep's worker process parses each trace once for all its runs."""

from __future__ import annotations

import concurrent.futures as cf
import copy
import hashlib
import multiprocessing
import os
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

import sim
from sim.workload import TraceError, cache, read_trace
from sim.workload.distributions import empirical_values
from tests.conftest import BASE, REPO

AZURE = REPO / "sim" / "workload" / "traces" / "azure-llm-2023" / "AzureLLMInferenceTrace_conv.csv"


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.set_enabled(True)
    yield
    cache.set_enabled(True)
    cache.set_max_bytes(cache.MAX_CACHE_BYTES)


def _write_trace(folder, rows: int = 300):
    lines = AZURE.read_text().splitlines(keepends=True)[:rows + 1]
    (folder / "trace.csv").write_text("".join(lines))
    return folder / "trace.csv"


@pytest.fixture
def traced(tmp_path):
    """A small scenario reading a request trace and an empirical distribution from its own folder."""
    _write_trace(tmp_path)
    (tmp_path / "runtimes.csv").write_text("seconds\n600\n1200\n3600\n7200\n")
    data = copy.deepcopy(BASE)
    data["duration"] = "2h"
    data["workloads"]["training"]["generator"].update(jobs=10, duration_s={"empirical": "runtimes.csv"})
    data["workloads"]["inference"] = [{
        "name": "chat", "model": "llama3-70b", "replicas": [{"pool": "gpu", "count": 1, "chips_per_replica": 8}],
        "traffic": {"trace": {"format": "azure-llm-2023", "path": "trace.csv", "scale": 2}}}]
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return tmp_path / "s.yaml"


def _trace(path="trace.csv", limit=None):
    return sim.Scenario.model_validate({**BASE, "workloads": {"inference": [{
        "name": "chat", "model": "llama3-70b", "replicas": [{"pool": "gpu", "count": 1, "chips_per_replica": 8}],
        "traffic": {"trace": {"format": "azure-llm-2023", "path": path, "limit": limit}}}]}}
    ).workloads.inference[0].traffic.trace


def test_a_trace_is_parsed_once_and_each_caller_gets_its_own_copy(tmp_path):
    _write_trace(tmp_path)
    first = read_trace(_trace(), tmp_path)
    first.loc[0, "prompt_tokens"] = -1  # a caller that mutates its table
    second = read_trace(_trace(), tmp_path)
    assert cache.stats()["parses"] == 1 and cache.stats()["hits"] == 1
    assert second.loc[0, "prompt_tokens"] > 0
    assert len(read_trace(_trace(limit=10), tmp_path)) == 10  # other parse parameters: their own entry
    assert cache.stats()["parses"] == 2


def test_a_modified_file_is_read_again(tmp_path):
    path = _write_trace(tmp_path, rows=300)
    assert len(read_trace(_trace(), tmp_path)) == 300
    _write_trace(tmp_path, rows=200)
    assert len(read_trace(_trace(), tmp_path)) == 200
    info = os.stat(path)  # same size, new modification time: read again
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    read_trace(_trace(), tmp_path)
    assert cache.stats()["parses"] == 3 and cache.stats()["hits"] == 0


def test_empirical_values_are_read_only_and_follow_their_file(tmp_path):
    (tmp_path / "d.csv").write_text("x\n1\n2\n")
    values = empirical_values("d.csv", str(tmp_path))
    with pytest.raises(ValueError, match="read-only"):
        values[0] = 5.0
    assert empirical_values("d.csv", str(tmp_path)) is values
    (tmp_path / "d.csv").write_text("x\n1\n2\n3\n")
    assert empirical_values("d.csv", str(tmp_path)).tolist() == [1.0, 2.0, 3.0]


def test_failures_are_not_cached(tmp_path):
    (tmp_path / "trace.csv").write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n")
    with pytest.raises(TraceError, match="no requests"):
        read_trace(_trace(), tmp_path)
    _write_trace(tmp_path, rows=5)
    assert len(read_trace(_trace(), tmp_path)) == 5


def test_the_cache_is_bounded_by_bytes_least_recently_used_first(tmp_path):
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        _write_trace(tmp_path / name, rows=100)
    read_trace(_trace(), tmp_path / "a")
    one = cache.stats()["bytes"]
    cache.set_max_bytes(2 * one + one // 2)  # room for two tables
    read_trace(_trace(), tmp_path / "b")
    read_trace(_trace(), tmp_path / "a")  # a is now the most recently used
    read_trace(_trace(), tmp_path / "c")  # evicts b
    assert cache.stats()["entries"] == 2 and cache.stats()["bytes"] <= 2 * one + one // 2
    read_trace(_trace(), tmp_path / "a")
    assert cache.stats()["parses"] == 3
    read_trace(_trace(), tmp_path / "b")
    assert cache.stats()["parses"] == 4
    cache.set_max_bytes(one // 2)  # smaller than any table: nothing kept, tables still read
    assert cache.stats()["entries"] == 0
    assert len(read_trace(_trace(), tmp_path / "a")) == 100 and cache.stats()["entries"] == 0


def test_one_run_opens_each_data_file_once_and_the_manifest_hashes_match(traced):
    run = sim.run(sim.load(traced))
    stats = cache.stats()
    assert stats["parses"] == 2 and stats["opens"] == 2  # validation, the run and the manifest share them
    for name in ("trace.csv", "runtimes.csv"):
        path = traced.parent / name
        assert run.manifest["input_files"][str(path)] == hashlib.sha256(path.read_bytes()).hexdigest()
    sim.run(sim.load(traced))
    assert cache.stats()["opens"] == 2


def _summary(path) -> str:
    return yaml.safe_dump(sim.run(sim.load(path)).summary)


def test_results_are_identical_with_and_without_the_cache(traced):
    first, second = _summary(traced), _summary(traced)
    assert cache.stats()["hits"] > 0
    cache.set_enabled(False)
    uncached = _summary(traced)
    assert cache.stats()["hits"] == 0 and cache.stats()["parses"] >= 4
    assert first == second == uncached


def _run_and_count(scenario) -> dict:
    sim.run(scenario)
    return cache.stats()


def _worker_start() -> None:
    cache.clear()


def test_a_worker_process_parses_each_trace_once_for_all_its_runs(traced):
    scenario = sim.load(traced)
    seeds = [scenario.with_overrides({"seed": seed}) for seed in (1, 2, 3)]
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with cf.ProcessPoolExecutor(1, mp_context=context, initializer=_worker_start) as pool:
        counts = list(pool.map(_run_and_count, seeds))
    assert [c["parses"] for c in counts] == [2, 2, 2]  # the trace and the empirical file, in the first run only
    assert counts[-1]["hits"] >= 4


def test_a_table_handed_out_is_a_dataframe_of_the_readers_columns(tmp_path):
    _write_trace(tmp_path, rows=20)
    table = read_trace(_trace(), tmp_path)
    assert isinstance(table, pd.DataFrame) and list(table.columns) == [
        "arrival_s", "prompt_tokens", "output_tokens", "source_row", "copy"]
    assert np.array_equal(table["source_row"], np.arange(1, 21))


def test_a_dask_worker_process_parses_each_trace_once_for_all_its_runs(traced):
    from distributed import Client, LocalCluster

    scenario = sim.load(traced)
    seeds = [scenario.with_overrides({"seed": seed}) for seed in (1, 2, 3)]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        counts = [client.submit(_run_and_count, s, pure=False).result() for s in seeds]
    assert [c["parses"] for c in counts] == [2, 2, 2]  # its own process: parsed in its first run only
    assert counts[-1]["hits"] >= 4


def _llm(fidelity: str) -> dict:
    from tests.test_inference import SERVICE, with_service

    generator = {**SERVICE["traffic"]["generator"], "rate_per_s": 0.5, "prompt_tokens": {"empirical": "p.csv"}}
    return with_service({**SERVICE, "fidelity": fidelity, "traffic": {"generator": generator}}, duration="1h")


def _ranking() -> dict:
    from tests.test_fluid_ranking import MTIA
    from tests.test_ranking import with_ranking

    return with_ranking({"replicas": [MTIA], "router": {"kind": "least-work"}, "fidelity": "fluid", "traffic": {
        "generator": {"rate_per_s": 200.0, "items_per_request": {"empirical": "p.csv"}}}}, duration="3min")


@pytest.mark.parametrize("kind", ["fluid", "request", "ranking"])
def test_a_changed_empirical_file_changes_the_next_run_in_the_same_process(tmp_path, kind):
    """The fluid models' cached pmfs key on the file too: after the file changes, a run equals a run of a
    folder that never held the old file."""
    data = _ranking() if kind == "ranking" else _llm(kind)
    for folder in ("old", "new"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "s.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (tmp_path / "old" / "p.csv").write_text("tokens\n100\n200\n")
    before = _summary(tmp_path / "old" / "s.yaml")
    for folder in ("old", "new"):
        (tmp_path / folder / "p.csv").write_text("tokens\n4000\n8000\n16000\n")
    after, fresh = _summary(tmp_path / "old" / "s.yaml"), _summary(tmp_path / "new" / "s.yaml")
    assert after != before and after == fresh
