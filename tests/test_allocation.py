"""Property tests of the per-domain chip bookkeeping against a naive per-chip model."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from sim.fleet.allocation import DomainAllocator, SharedChips


@settings(max_examples=150, deadline=None)
@given(sizes=st.lists(st.integers(1, 16), min_size=1, max_size=12),
       ops=st.lists(st.tuples(st.booleans(), st.integers(1, 40)), max_size=80))
def test_domain_allocator_never_overcommits(sizes, ops):
    alloc = DomainAllocator(sizes)
    held = []
    for is_place, chips in ops:
        if is_place or not held:
            parts = alloc.place(chips)
            if parts is None:
                continue
            assert sum(n for _, n in parts) == chips
            if chips <= alloc.domain_chips:
                assert len(parts) == 1  # a gang that fits in one domain stays in one domain
            held.append(parts)
        else:
            alloc.release(held.pop(chips % len(held)))
        used = [0] * len(sizes)
        for parts in held:
            for domain, n in parts:
                used[domain] += n
        assert all(0 <= used[d] <= sizes[d] for d in range(len(sizes)))
        assert alloc.free == [sizes[d] - used[d] for d in range(len(sizes))]
        assert alloc.free_chips == sum(sizes) - sum(used)
        # can_place agrees with place, and place is best fit (checked on a copy)
        for gang in range(1, 2 * max(sizes) + 2):
            probe = copy.deepcopy(alloc)
            parts = probe.place(gang)
            assert alloc.can_place(gang) == (parts is not None), gang
            assert alloc.can_place(gang) == (gang <= alloc.largest_gang()), gang  # the scheduler's room test
            if parts is not None and gang <= alloc.domain_chips:
                (domain, _), = parts
                assert alloc.free[domain] == min(f for f in alloc.free if f >= gang)


@settings(max_examples=100, deadline=None)
@given(ops=st.lists(st.tuples(st.booleans(), st.integers(1, 1000)), max_size=120))
def test_shared_chips_pack_within_one_chip(ops):
    alloc = DomainAllocator([4, 4])
    shared = SharedChips(alloc)
    held = []
    for is_place, units in ops:
        if is_place or not held:
            chip = shared.place(units)
            if chip is not None:
                held.append((chip, units))
        else:
            chip, u = held.pop(units % len(held))
            shared.release(chip, u)
        load: dict[int, int] = {}
        for chip, u in held:
            load[chip] = load.get(chip, 0) + u
        assert all(v <= 1000 for v in load.values())
        assert shared.open_chips == len(load)
        assert alloc.free_chips == 8 - shared.open_chips
