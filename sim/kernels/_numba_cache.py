"""Fallback for a machine where Numba cannot write its on-disk cache (read-only install folder, and an
unwritable ``NUMBA_CACHE_DIR`` and home cache folder): the kernels still compile, into a temporary folder
deleted at exit, so each run compiles them again (a few seconds) instead of failing at import."""

from __future__ import annotations

import atexit
import shutil
import tempfile


def use_throwaway_cache() -> str:
    """Point Numba's cache at a fresh temporary folder; returns the one-line note to show the user.

    Raises ``ImportError`` (so the caller falls back to the pure-Python kernels) when no temporary folder
    can be created either."""
    from numba.core import config

    try:
        folder = tempfile.mkdtemp(prefix="dcsim-numba-cache-")
    except OSError as exc:
        raise ImportError(f"Numba cannot write a cache anywhere ({exc.strerror or exc})") from None
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    config.CACHE_DIR = folder
    return ("Numba cannot write its cache (install folder, NUMBA_CACHE_DIR and home cache are read-only); "
            "compiling the kernels for this run only")
