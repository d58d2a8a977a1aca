"""Random streams of one run: one ``SeedSequence`` from the scenario seed, spawned in a fixed order.

Adding a stream at the end of ``STREAMS`` leaves the numbers of the existing streams unchanged.
"""

from __future__ import annotations

import numpy as np

STREAMS = ("arrivals", "service", "failures", "supply", "policy", "sizes", "models", "stacks", "inference", "ranking",
           "batches", "serving_failures", "priorities")


def streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children)}
