"""Bookkeeping of free chips in one pool: counts per scale-up domain, never per-chip objects.

``DomainAllocator`` places a gang of ``g`` chips:
* ``g <= domain size``: inside one domain, best fit (the domain with the fewest free chips that still
  holds the gang), which keeps large holes open for large gangs;
* ``g > domain size``: on ``ceil(g / D)`` wholly free full-size domains (the gang spans them over the
  scale-out network; the last domain keeps its unused chips for others).
Domains are kept in buckets by their free count, with a bit mask of non-empty buckets, so a placement
costs a few integer operations whatever the pool size.

``SharedChips`` packs fractional jobs (GPU sharing, ``chip_share < 1``) onto chips opened from the
allocator, best fit by free share in thousandths; a chip goes back to its domain when it empties.
"""

from __future__ import annotations

import math


class DomainAllocator:
    def __init__(self, domain_sizes: list[int]):
        self.domain_chips = max(domain_sizes, default=0)
        self.size = list(domain_sizes)
        self.free = list(domain_sizes)
        self.buckets: list[set[int]] = [set() for _ in range(self.domain_chips + 1)]
        for domain, size in enumerate(domain_sizes):
            self.buckets[size].add(domain)
        self.mask = 0
        for level, bucket in enumerate(self.buckets):
            if bucket:
                self.mask |= 1 << level
        self.free_chips = sum(domain_sizes)
        self.capacity = self.free_chips
        self.closed: set[int] = set()  # draining or retired domains (``close``): nothing is placed there
        # chips moved other than by placing and releasing gangs (``take``, ``withdraw``, ``close``, ``reopen``): with
        # ``free_chips`` and ``mask`` it tells whether the state may have changed (budgets' search cache)
        self.moves = 0

    def can_place(self, chips: int) -> bool:
        """Whether ``place(chips)`` would succeed now (a few integer operations)."""
        if chips <= self.domain_chips:
            return (self.mask >> chips) != 0
        return len(self.buckets[self.domain_chips]) * self.domain_chips >= chips

    def largest_gang(self) -> int:
        """The largest gang ``place`` takes now (``can_place(g)`` is ``g <= largest_gang()`` for ``g >= 1``): every
        wholly free full-size domain together, else the most free chips of one domain (0 or -1: nothing)."""
        full = len(self.buckets[self.domain_chips])
        if full and self.domain_chips:
            return full * self.domain_chips
        return self.mask.bit_length() - 1

    def place(self, chips: int) -> tuple | None:
        """Allocate ``chips``; return ((domain, n), ...) or None when it does not fit now."""
        if chips <= self.domain_chips:
            shifted = self.mask >> chips
            if not shifted:
                return None
            level = chips + ((shifted & -shifted).bit_length() - 1)
            domain = self._take(level)
            self._put(domain, level - chips)
            self.free_chips -= chips
            return ((domain, chips),)
        full = self.domain_chips
        if full == 0:
            return None  # a pool of 0 chips holds nothing
        needed = math.ceil(chips / full)
        if len(self.buckets[full]) < needed:
            return None
        parts, left = [], chips
        for _ in range(needed):
            domain = self._take(full)
            used = min(full, left)
            self._put(domain, full - used)
            parts.append((domain, used))
            left -= used
        self.free_chips -= chips
        return tuple(parts)

    def release(self, parts: tuple) -> None:
        for domain, chips in parts:
            if self.closed and domain in self.closed:  # a closed domain's chips stay out of the buckets
                self.free[domain] += chips
                continue
            level = self.free[domain]
            self.buckets[level].discard(domain)
            if not self.buckets[level]:
                self.mask &= ~(1 << level)
            new_level = level + chips
            if new_level > self.size[domain]:
                raise RuntimeError(f"domain {domain} would hold {new_level} free chips of {self.size[domain]}")
            self._put(domain, new_level)
            self.free_chips += chips

    def withdraw(self, domain: int) -> tuple:
        """Take the wholly free ``domain`` out of the pool (an unrented domain of a burst pool); ``release``
        of the returned placement brings it back."""
        size = self.size[domain]
        if self.free[domain] != size:
            raise RuntimeError(f"domain {domain} has {size - self.free[domain]} chips in use; only a free one leaves")
        self.moves += 1
        bucket = self.buckets[size]
        bucket.discard(domain)
        if not bucket:
            self.mask &= ~(1 << size)
        self._put(domain, 0)
        self.free_chips -= size
        return ((domain, size),)

    def take(self, domain: int, chips: int) -> tuple:
        """Take ``chips`` free chips of ``domain`` out of placement (a failed server goes to repair,
        ``sim.training.failures``); ``release`` of the returned placement brings them back."""
        level = self.free[domain]
        if chips > level:
            raise RuntimeError(f"domain {domain} has {level} free chips; {chips} cannot leave")
        self.moves += 1
        if domain in self.closed:
            self.free[domain] = level - chips
            return ((domain, chips),)
        bucket = self.buckets[level]
        bucket.discard(domain)
        if not bucket:
            self.mask &= ~(1 << level)
        self._put(domain, level - chips)
        self.free_chips -= chips
        return ((domain, chips),)

    def close(self, domain: int) -> None:
        """Take ``domain`` out of placement for good (it drains, then retires: ``fleet[].retirements``): its free
        chips leave the buckets and ``free_chips``; chips released there later stay out."""
        if domain in self.closed:
            return
        self.moves += 1
        level = self.free[domain]
        bucket = self.buckets[level]
        bucket.discard(domain)
        if not bucket:
            self.mask &= ~(1 << level)
        self.free_chips -= level
        self.closed.add(domain)

    def reopen(self, domain: int) -> None:
        """Put a ``close``d domain back into placement with the chips free there (the end of a maintenance
        window with a drain, ``sim.training.failures``)."""
        if domain not in self.closed:
            return
        self.moves += 1
        self.closed.discard(domain)
        self._put(domain, self.free[domain])
        self.free_chips += self.free[domain]

    def _take(self, level: int) -> int:
        bucket = self.buckets[level]
        domain = bucket.pop()  # sets of ints pop in a deterministic order
        if not bucket:
            self.mask &= ~(1 << level)
        return domain

    def _put(self, domain: int, level: int) -> None:
        self.free[domain] = level
        self.buckets[level].add(domain)
        self.mask |= 1 << level


SHARE_UNITS = 1000  # shares are counted in thousandths of a chip, as the Alibaba trace's gpu_milli


class SharedChips:
    """Chips opened for fractional jobs; ``open_chips`` count as allocated in the pool."""

    def __init__(self, allocator: DomainAllocator):
        self.allocator = allocator
        self.free_units: dict[int, int] = {}
        self.domain_of: dict[int, tuple] = {}
        self.buckets: list[set[int]] = [set() for _ in range(SHARE_UNITS + 1)]
        self.mask = 0
        self.next_chip = 0
        self.closed: set[int] = set()  # open chips on closed domains (``close_domains``): no new share there

    @property
    def open_chips(self) -> int:
        return len(self.free_units)

    def can_place(self, units: int) -> bool:
        return (self.mask >> units) != 0 or self.allocator.can_place(1)

    def place(self, units: int) -> int | None:
        """Give ``units`` thousandths of a chip; returns the shared chip's id, or None."""
        shifted = self.mask >> units
        if shifted:
            level = units + ((shifted & -shifted).bit_length() - 1)
            chip = self.buckets[level].pop()
            if not self.buckets[level]:
                self.mask &= ~(1 << level)
        else:
            parts = self.allocator.place(1)
            if parts is None:
                return None
            chip, level = self.next_chip, SHARE_UNITS
            self.next_chip += 1
            self.domain_of[chip] = parts
        self._set(chip, level - units)
        return chip

    def release(self, chip: int, units: int) -> None:
        level = self.free_units[chip]
        self.buckets[level].discard(chip)
        if not self.buckets[level]:
            self.mask &= ~(1 << level)
        if level + units >= SHARE_UNITS:
            del self.free_units[chip]
            self.closed.discard(chip)
            self.allocator.release(self.domain_of.pop(chip))
        elif self.closed and chip in self.closed:
            self.free_units[chip] = level + units  # kept out of the buckets: its domain drains
        else:
            self._set(chip, level + units)

    def close_domains(self, domains: set[int]) -> None:
        """Stop placing shares on the open chips of ``domains`` (closed in the allocator); they empty as their
        jobs end."""
        for chip, parts in self.domain_of.items():
            if parts[0][0] in domains and chip not in self.closed:
                level = self.free_units[chip]
                self.buckets[level].discard(chip)
                if not self.buckets[level]:
                    self.mask &= ~(1 << level)
                self.closed.add(chip)

    def _set(self, chip: int, level: int) -> None:
        self.free_units[chip] = level
        self.buckets[level].add(chip)
        self.mask |= 1 << level


def reserve(allocators: list[DomainAllocator], reservations) -> None:
    """Place ``(pool, chips, count)`` reservations (inference replicas) before anything else runs.

    Each replica is one gang; raises ``ValueError`` when the pool cannot hold them (validation checks
    this first, with the same function)."""
    for pool, chips, count in reservations:
        for _ in range(count):
            if allocators[pool].place(chips) is None:
                raise ValueError(f"pool {pool}: no room for a {chips}-chip replica")


def hold_deliveries(allocator: DomainAllocator, deliveries: list[int]) -> list[tuple]:
    """Take the whole domains of chips delivered later (``deliveries``: chips each, whole domains) out of a
    fresh allocator; return one placement per delivery, which ``release`` brings online at its date."""
    held = []
    for chips in deliveries:
        parts = allocator.place(chips)
        if parts is None:
            raise ValueError(f"no room for a delivery of {chips} chips")
        held.append(parts)
    return held


def max_gang_chips(allocator: DomainAllocator, multi_domain: bool) -> int:
    """Largest gang the allocator can place in its current state (used after reservations)."""
    if multi_domain and len(allocator.buckets[allocator.domain_chips]) > 1:
        return len(allocator.buckets[allocator.domain_chips]) * allocator.domain_chips
    return allocator.mask.bit_length() - 1 if allocator.mask > 1 else 0
