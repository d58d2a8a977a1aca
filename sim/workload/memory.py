"""Will a run's request tables fit in this machine's memory? Checked before they are allocated.

A request-level service holds every request in arrays through the run: the request table (arrival,
prompt and output tokens, source row, copy), the kernel's outputs (state, replica, first token, finish)
and the result tables built from them. Measured: 96.8 million Azure requests at request level peaked at
12.6 GB of resident memory, about 130 bytes per request; ``BYTES_PER_REQUEST`` rounds that up. The
budget is the memory the system reports available now (``MemAvailable`` on Linux) and, when a limit is
set (``ulimit -v``), that limit.
"""

from __future__ import annotations

import os
import resource

BYTES_PER_REQUEST = 160


class RunTooLargeError(MemoryError):
    """The run would need more memory than the machine has; says how much and what to change."""


def available_bytes() -> int | None:
    """Memory a new allocation can use now [bytes]: the smaller of what the system reports available and
    the address-space limit; ``None`` when neither can be read."""
    budgets = []
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    budgets.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        try:
            budgets.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    limit, _ = resource.getrlimit(resource.RLIMIT_AS)
    if limit != resource.RLIM_INFINITY:
        budgets.append(limit)
    return min(budgets) if budgets else None


def ensure_requests_fit(requests: float, what: str, budget: int | None = None) -> None:
    """Raise ``RunTooLargeError`` when ``requests`` simulated one by one would not fit in ``budget`` bytes
    (default: ``available_bytes()``); ``what`` names the service in the message."""
    budget = available_bytes() if budget is None else budget
    needed = requests * BYTES_PER_REQUEST
    if budget is not None and needed > budget:
        raise RunTooLargeError(
            f"{what}: about {requests:,.0f} requests at request level need about {needed / 1e9:,.1f} GB, "
            f"and this machine has {budget / 1e9:,.1f} GB available; accepted: a smaller trace scale or "
            "rate, a shorter duration, or fidelity: fluid")
