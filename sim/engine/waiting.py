"""The wait queue, grouped by job *shape*: jobs with the same eligible pools, gang size and chip share.

Jobs of one shape are interchangeable for placement: if the oldest cannot start on any pool, none of
the others can either. So the queue keeps one FIFO per shape, and a scheduler looks at shapes, not at
every waiting job: after chips free up on pool p, only shapes that may use p are tried, oldest first.
This keeps an event's scheduling cost independent of the queue's length (the engine's "pools, not
devices" applied to jobs). Job indices are in arrival order, so a smaller index is an older job.
"""

from __future__ import annotations

import heapq
from collections import deque


class WaitQueue:
    def __init__(self, shape_pools: list[tuple[int, ...]], n_pools: int):
        self.shape_pools = shape_pools
        self.fifos: list[deque[int]] = [deque() for _ in shape_pools]
        self.shapes_of_pool: list[list[int]] = [[] for _ in range(n_pools)]
        for shape, pools in enumerate(shape_pools):
            for pool in pools:
                self.shapes_of_pool[pool].append(shape)
        self.heads: list[tuple[int, int]] = []  # (oldest job, shape) per non-empty shape; lazily cleaned
        self.count = 0

    def push(self, job: int, shape: int) -> bool:
        """Append a job; True when its shape had no waiting job (so it is worth trying at once)."""
        fifo = self.fifos[shape]
        fifo.append(job)
        self.count += 1
        if len(fifo) == 1:
            heapq.heappush(self.heads, (job, shape))
            return True
        return False

    def pop(self, shape: int) -> int:
        """Remove and return the oldest job of ``shape``."""
        fifo = self.fifos[shape]
        job = fifo.popleft()
        self.count -= 1
        if fifo:
            heapq.heappush(self.heads, (fifo[0], shape))
        return job

    def oldest(self) -> tuple[int, int] | None:
        """(job, shape) of the oldest waiting job overall, or None."""
        heads = self.heads
        while heads:
            job, shape = heads[0]
            fifo = self.fifos[shape]
            if fifo and fifo[0] == job:
                return job, shape
            heapq.heappop(heads)
        return None

    def shapes_by_age(self, pools: set[int] | None) -> list[int]:
        """Non-empty shapes that may use any of ``pools`` (all when None), oldest head first."""
        if pools is None:
            candidates = range(len(self.fifos))
        elif len(pools) == 1:
            candidates = self.shapes_of_pool[next(iter(pools))]
        else:
            candidates = {s for p in pools for s in self.shapes_of_pool[p]}
        fifos = self.fifos
        return sorted((s for s in candidates if fifos[s]), key=lambda s: fifos[s][0])
