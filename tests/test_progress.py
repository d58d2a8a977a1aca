"""Progress on a terminal for every long phase, and nothing when not asked (a pipe, a script)."""

from __future__ import annotations

import subprocess
import sys

import sim
from tests.conftest import REPO, scenario_from
from tests.test_inference import with_service


def test_every_long_phase_reports_when_asked(tmp_path, capsys):
    sim.run(scenario_from(with_service(), tmp_path), progress=True)
    err = capsys.readouterr().err
    for phase in ("reading traces and preparing jobs", "serving chat", "computing results"):
        assert f"dcsim: {phase} ..." in err, err
    assert "dcsim: training" in err  # the bar over simulated days


def test_nothing_is_printed_without_progress(tmp_path, capsys):
    sim.run(scenario_from(with_service(), tmp_path))
    assert capsys.readouterr().err == ""


def test_the_cli_prints_no_progress_on_a_pipe(tmp_path):
    done = subprocess.run([sys.executable, "-m", "sim", "run", str(REPO / "scenarios" / "classroom-hetero.yaml"),
                           "--set", "duration=1d", "--set", "workloads.training.generator.jobs=20",
                           "--out", str(tmp_path / "out"), "--no-plots"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "dcsim:" not in done.stderr and "sim-day" not in done.stderr


def test_the_first_compile_note_follows_numbas_own_cache(tmp_path):
    """A kernel whose cache index is missing where Numba looks (e.g. a fresh NUMBA_CACHE_DIR) needs compiling;
    pure-Python twins never do."""
    from sim.progress import kernels_need_compiling

    class Cache:
        def __init__(self, index):
            self._cache_file = type("CacheFile", (), {"_index_path": str(index)})()

    cached, missing = tmp_path / "k.nbi", tmp_path / "other.nbi"
    cached.write_text("")
    kernel = type("Dispatcher", (), {})
    warm, cold = kernel(), kernel()
    warm._cache, cold._cache = Cache(cached), Cache(missing)
    assert not kernels_need_compiling([warm])
    assert kernels_need_compiling([warm, cold])
    assert not kernels_need_compiling([lambda: None])  # a twin: plain Python
