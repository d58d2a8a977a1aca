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


def kernels_need_compiling(dispatchers) -> bool:
    """Whether any of the Numba ``dispatchers`` (the serving and training kernels) has no on-disk cache
    yet where Numba looks for it, so the first call compiles (tens of seconds). Pure-Python twins, or a
    Numba whose cache layout is not the one read here, never claim a compile."""
    for dispatcher in dispatchers:
        try:
            index = dispatcher._cache._cache_file._index_path  # Numba's own cache locator for this kernel
        except AttributeError:
            continue
        if not Path(index).exists():
            return True
    return False
