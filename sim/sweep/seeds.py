"""Replica seeds: ``N`` independent seeds spawned from a scenario's seed.

``numpy.random.SeedSequence(seed).spawn(N)`` gives children that are independent of each other and of the
parent's own streams; each child is turned into a plain integer seed (its first 64 bits of state, shifted
to fit the schema's 63-bit range) so a replica is an ordinary scenario with another ``seed``, runnable and
reportable like any other. The same seed and ``N`` always give the same list, and the first ``k`` seeds
do not depend on ``N``.
"""

from __future__ import annotations

import numpy as np


def replica_seeds(seed: int, replicas: int) -> list[int]:
    """The ``replicas`` child seeds of ``seed`` (each in ``[0, 2**63)``), in spawn order."""
    children = np.random.SeedSequence(seed).spawn(replicas)
    return [int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for child in children]
