"""The command line in unfriendly surroundings, each in a fresh interpreter: a reader that closes the pipe
early, an ASCII-only locale with non-ASCII file names, and a machine where Numba cannot write its cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import yaml

from tests.conftest import BASE, REPO

TINY = {**BASE, "name": "tiny", "duration": "6h",
        "workloads": {"training": {"generator": {**BASE["workloads"]["training"]["generator"], "jobs": 12}}}}


def _env(**changes) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "PYTHONUTF8", "LANG", "LC_ALL")}
    env.update(changes)
    return env


def test_closed_pipe_ends_quietly():
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before dcsim writes anything, as after `| head -1`
    try:
        result = subprocess.run([sys.executable, "-m", "sim", "schema"], stdout=write_end, stderr=subprocess.PIPE,
                                text=True, cwd=REPO, timeout=120)
    finally:
        os.close(write_end)
    assert result.stderr == "" and result.returncode == 1


def test_non_ascii_names_under_an_ascii_locale(tmp_path):
    """``LC_ALL=C`` without locale coercion or UTF-8 mode gives an ASCII stdout; nothing may fail to print."""
    scenario = tmp_path / "café.yaml"
    scenario.write_text(yaml.safe_dump({**TINY, "description": "Ünïcode fleet — 12 jobs"}, allow_unicode=True),
                        encoding="utf-8")
    env = _env(LC_ALL="C", PYTHONCOERCECLOCALE="0", PYTHONUTF8="0", PYTHONPATH=str(REPO))
    both = ("import sys; from sim.cli import main; "
            "sys.exit(main(['run', sys.argv[1], '--no-plots', '--out', sys.argv[2]]) or main(['schema']))")
    result = subprocess.run([sys.executable, "-c", both, scenario.name, "résultats"], capture_output=True,
                            cwd=tmp_path, env=env, timeout=120)
    stdout, stderr = result.stdout.decode("ascii"), result.stderr.decode("ascii")
    assert result.returncode == 0 and stderr == "", stderr
    assert "about      \\xdcn\\xefcode fleet \\u2014 12 jobs" in stdout
    assert "results in r\\udcc3\\udca9sultats/" in stdout  # the undecodable bytes of the name, escaped
    assert (tmp_path / "résultats" / "summary.json").exists()
    assert "\\xb5" in stdout  # the micro sign of the scenario reference


def test_unwritable_numba_cache_falls_back_with_a_one_line_note(tmp_path):
    """No folder Numba could cache in: the installed package's own (here its ``__pycache__`` is a file, which
    stops root as well), ``NUMBA_CACHE_DIR`` and the home cache (both under a file)."""
    install = tmp_path / "site"
    shutil.copytree(REPO / "sim", install / "sim", ignore=shutil.ignore_patterns("__pycache__"))
    (install / "sim" / "kernels" / "__pycache__").write_text("not a folder")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, so nothing can be created under it")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    env = _env(PYTHONPATH=str(install), HOME=str(blocker), XDG_CACHE_HOME=str(blocker / "cache"),
               NUMBA_CACHE_DIR=str(blocker / "numba"), PYTHONDONTWRITEBYTECODE="1", SIM_DISABLE_NUMBA="0",
               TMPDIR=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "sim", "run", "tiny.yaml", "--no-plots", "--out", "out"],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("\n") == 1 and "Numba cannot write its cache" in result.stderr, result.stderr
    assert "(numba on)" in result.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("dcsim-numba-cache-")]  # removed at exit
