"""The wait queue, grouped by job *shape*: jobs with the same eligible pools, gang size and chip share.

Jobs of one shape are interchangeable for placement: if the oldest cannot start on any pool, none of
the others can either. So the queue keeps one FIFO per shape, and a scheduler looks at shapes, not at
every waiting job: after chips free up on pool p, only shapes with waiting jobs that may use p are
tried, oldest first. An event's scheduling cost thus depends on the number of waiting shapes, not on
the queue's length (the engine's "pools, not devices" applied to jobs). Job indices are in arrival
order, so a smaller index is an older job.

Under ``hetero-aware`` the oldest job of a shape may also *choose* to wait for a faster, busy pool; the
rest of its shape then waits with it, although a younger job of another model might have preferred
another pool. This simplification keeps the scan short.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque


class WaitQueue:
    def __init__(self, shape_pools: list[tuple[int, ...]], gang_of=None):
        self.shape_pools = shape_pools
        self.fifos: list[deque[int]] = [deque() for _ in shape_pools]
        self.pool_sets = [frozenset(pools) for pools in shape_pools]
        self.waiting_shapes: set[int] = set()
        self.count = 0
        # per shape, ((pool, chips its gang takes there), ...) (-1: a chip share), from ``gang_of(job, shape)`` for
        # its first waiting job; read by ``shapes_by_age`` with ``room``
        self.gang_of = gang_of
        self.gangs: list[tuple | None] = [None] * len(shape_pools)

    def push(self, job: int, shape: int) -> bool:
        """Append a job; True when its shape had no waiting job (so it is worth trying at once)."""
        fifo = self.fifos[shape]
        fifo.append(job)
        self.count += 1
        if len(fifo) == 1:
            self.waiting_shapes.add(shape)
            if self.gangs[shape] is None and self.gang_of is not None:
                self.gangs[shape] = self.gang_of(job, shape)
            return True
        return False

    def requeue(self, job: int, shape: int) -> None:
        """Put a preempted job back in its shape's queue at its arrival position (indices are in arrival
        order), so it keeps its seniority. A FIFO is in arrival order (pushes append newer jobs, requeues insert in
        place), so the position is a bisection (thousands of failures a year requeue into long queues)."""
        fifo = self.fifos[shape]
        fifo.insert(bisect_right(fifo, job), job)
        self.count += 1
        self.waiting_shapes.add(shape)
        if self.gangs[shape] is None and self.gang_of is not None:
            self.gangs[shape] = self.gang_of(job, shape)

    def pop(self, shape: int) -> int:
        """Remove and return the oldest job of ``shape``."""
        fifo = self.fifos[shape]
        job = fifo.popleft()
        self.count -= 1
        if not fifo:
            self.waiting_shapes.discard(shape)
        return job

    def oldest(self) -> tuple[int, int] | None:
        """(job, shape) of the oldest waiting job overall, or None."""
        if not self.waiting_shapes:
            return None
        fifos = self.fifos
        shape = min(self.waiting_shapes, key=lambda s: fifos[s][0])
        return fifos[shape][0], shape

    def shapes_by_age(self, pools: set[int] | None, room: list[int] | None = None) -> list[int]:
        """Shapes with waiting jobs that may use any of ``pools`` (all when None), oldest head first. With ``room``
        (per pool, the largest gang it can place now, ``DomainAllocator.largest_gang``; below -1 for pools not to
        try), only shapes whose gang fits in the room of one of their pools: the others cannot start now."""
        if room is not None and self.gang_of is not None:
            gangs, candidates = self.gangs, []
            for s in self.waiting_shapes:
                for pool, chips in gangs[s]:
                    if chips <= room[pool]:
                        candidates.append(s)
                        break
        elif pools is None:
            candidates = list(self.waiting_shapes)
        else:
            pool_sets = self.pool_sets  # few shapes wait at once, so filtering them is cheap
            candidates = [s for s in self.waiting_shapes if not pool_sets[s].isdisjoint(pools)]
        if len(candidates) < 2:
            return list(candidates)
        fifos = self.fifos
        return sorted(candidates, key=lambda s: fifos[s][0])
