"""How much of a chip's peak a software stack reaches there, with porting grants where it is not native.

Shared by training (job run times) and serving (replica iteration times), so both read one table.
An inference service may also name ``native``: each chip runs it on the best stack it lists (serving
frameworks run on each vendor's own runtime), so its replica groups on different chips each get their
chip's best efficiency. Training jobs name a concrete stack or a framework.

**Frameworks** (``sim/catalog/data/frameworks.yaml``): a job or service written in ``pytorch``, ``jax`` or
``tensorflow`` runs on every stack its framework supports, at that stack's efficiency on the chip (ports
included) × the framework's fraction for the stack, the best such stack on each chip.

**Ports as projects** (scenario ``porting[]``): a port with a ``start`` date is usable from 00:00 of that day
only; a ``ramp`` raises its fraction linearly in monthly steps: ``initial_frac`` from the start, then
``initial + (final − initial) · k / months`` from the k-th calendar month after the start (the same day of
the month, clamped to the month's last day), ``final_frac`` from month ``months`` on. ``ports_at(t)`` freezes
the ports in force at a time into fixed grants (``Grant``); ``port_epochs`` lists the instants at which they
change, so training can prepare one run-time column per epoch (``sim.training.prepare``).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd
import yaml

from sim.catalog.specs import STACKS

DAY_S = 86400.0

NATIVE_STACK = "native"
SERVING_STACKS = (NATIVE_STACK, *STACKS)  # the stacks an inference service may name


@lru_cache(maxsize=1)
def framework_table() -> dict[str, dict]:
    """``frameworks.yaml``: framework -> {"stacks": {stack: fraction}, "sources": {...}} (read once)."""
    text = resources.files("sim.catalog").joinpath("data", "frameworks.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def framework_stacks(name: str) -> dict[str, float] | None:
    """The stacks a framework runs on with their fractions; None when ``name`` is not a framework."""
    entry = framework_table().get(name)
    return None if entry is None else entry["stacks"]


@dataclass(frozen=True)
class Grant:
    """A port in force at one time: ``from_stack`` runs on ``accelerator`` ('*': every chip) at
    ``efficiency_frac`` of ``to_stack``'s efficiency there (None: of the chip's best stack)."""

    from_stack: str
    accelerator: str
    efficiency_frac: float
    to_stack: str | None = None


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months later, clamped to the last day of that month."""
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    month += 1
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))


def _seconds(day: dt.date, start: dt.date) -> float:
    return (day - start).days * DAY_S


def port_steps_s(port, start: dt.date) -> list[tuple[float, float]]:
    """(time [s since ``start``], efficiency fraction from then) of one scenario port, in time order: one
    step at its start (−inf when it has none), then one per month of its ramp."""
    begin = _seconds(port.start, start) if port.start is not None else -math.inf
    if port.ramp is None:
        return [(begin, port.efficiency_frac)]
    ramp = port.ramp
    steps = [(begin, ramp.initial_frac)]
    for k in range(1, ramp.months + 1):
        at = _seconds(add_months(port.start, k), start) if port.start is not None else -math.inf
        steps.append((at, ramp.initial_frac + (ramp.final_frac - ramp.initial_frac) * k / ramp.months))
    return steps


def ports_at(porting, t_s: float, start: dt.date) -> tuple[Grant, ...]:
    """The scenario's ports in force at ``t_s`` [s since ``start``], frozen into fixed grants. Ports without
    a start or ramp keep their ``efficiency_frac`` (as before ports had dates)."""
    grants = []
    for port in porting:
        frac = None
        for at, value in port_steps_s(port, start):
            if at <= t_s:
                frac = value
        if frac is not None:
            grants.append(Grant(port.from_stack, port.accelerator, frac, getattr(port, "to_stack", None)))
    return tuple(grants)


def port_epochs(porting, start: dt.date, horizon_s: float) -> list[float]:
    """Instants inside the run (0, horizon) at which some port's grant changes [s], sorted."""
    times = {at for port in porting for at, _ in port_steps_s(port, start) if 0.0 < at < horizon_s}
    return sorted(times)


def port_costs(porting, start: dt.date, engineer_week_usd: float) -> list[tuple[float, float, object]]:
    """(time [s], USD, port) of every port with a one-off cost: ``cost_usd`` + ``engineer_weeks`` ×
    ``engineer_week_usd``, on its start (time 0 for a port with no start)."""
    out = []
    for port in porting:
        usd = port.cost_usd + port.engineer_weeks * engineer_week_usd
        if usd > 0:
            out.append((max(0.0, _seconds(port.start, start)) if port.start is not None else 0.0, usd, port))
    return out


def stack_efficiency(accel, stack: str, porting=()) -> float:
    """Fraction of ``accel``'s peak a job or service written for ``stack`` reaches there: the chip's own
    figure; else the best granted port (the chip's best figure, or its ``to_stack`` figure, × the grant's
    ``efficiency_frac``); 0 when it does not run. ``native`` is the best figure the chip lists; a framework
    takes the best of its stacks × its fraction for each. ``porting`` holds fixed grants (``ports_at``)."""
    if stack == NATIVE_STACK:
        return max(accel.stacks.values())
    stacks = framework_stacks(stack)
    if stacks is not None:
        return max(_one_stack(accel, s, porting) * frac for s, frac in stacks.items())
    return _one_stack(accel, stack, porting)


def _one_stack(accel, stack: str, porting) -> float:
    eff = accel.stack_efficiency(stack)
    if eff <= 0:
        for port in porting:
            if port.from_stack == stack and port.accelerator in ("*", accel.id):
                base = accel.stack_efficiency(port.to_stack) if port.to_stack else max(accel.stacks.values())
                eff = max(eff, base * port.efficiency_frac)
    return eff


def efficiency_matrix(stacks: np.ndarray, accelerators: list, porting=()) -> np.ndarray:
    """Fraction of peak each job's stack reaches on each chip; ports apply where the stack is not native."""
    codes, unique = pd.factorize(stacks, use_na_sentinel=False)
    table = np.zeros((len(unique), len(accelerators)))
    for s, stack in enumerate(unique):
        for p, accel in enumerate(accelerators):
            table[s, p] = stack_efficiency(accel, stack, porting)
    return table[codes.reshape(-1)] if len(stacks) else np.zeros((0, len(accelerators)))
