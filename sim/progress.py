"""Progress on a terminal for the long phases of a run: one line per phase with its wall time, and a
bar over simulated days for training. Silent unless enabled (the CLI enables it only when standard
error is a terminal, so nothing reaches a pipe or a log file)."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path


class Progress:
    """Phase lines on ``stream`` (standard error) when ``enabled``; a no-op otherwise."""

    def __init__(self, enabled: bool = False, stream=None):
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr

    @contextmanager
    def phase(self, label: str):
        """Print ``dcsim: <label> ...`` now and the phase's wall time when it ends."""
        if not self.enabled:
            yield
            return
        print(f"dcsim: {label} ...", end="", file=self.stream, flush=True)
        start = time.perf_counter()
        try:
            yield
        finally:
            print(f" {time.perf_counter() - start:.1f} s", file=self.stream, flush=True)

    @contextmanager
    def simulated_days(self, horizon_s: float):
        """A bar over simulated time; yields ``update(t_s)`` (``None`` when disabled)."""
        if not self.enabled:
            yield None
            return
        from tqdm import tqdm

        bar = tqdm(total=round(horizon_s / 86400, 1), unit="sim-day", leave=False, desc="dcsim: training",
                   file=self.stream)

        def update(t_s: float) -> None:
            bar.n = round(t_s / 86400, 1)
            bar.refresh()

        try:
            yield update
        finally:
            bar.close()


def kernels_need_compiling(numba_enabled: bool) -> bool:
    """Whether the serving kernel has no Numba cache yet, beside the code or under ``NUMBA_CACHE_DIR``
    (the first run compiles the kernels, tens of seconds)."""
    if not numba_enabled:
        return False
    from numba.core import config

    folders = [Path(__file__).parent / "kernels" / "__pycache__"]
    if config.CACHE_DIR:
        folders.append(Path(config.CACHE_DIR))
    return not any(any(folder.rglob("serving_compiled.serve_llm-*.nbi")) for folder in folders if folder.is_dir())
