"""How much of a chip's peak a software stack reaches there, with porting grants where it is not native.

Shared by training (job run times) and serving (replica iteration times), so both read one table.
An inference service may also name ``native``: each chip runs it on the best stack it lists (serving
frameworks run on each vendor's own runtime), so its replica groups on different chips each get their
chip's best efficiency. Training jobs name a concrete stack.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.catalog.specs import STACKS

NATIVE_STACK = "native"
SERVING_STACKS = (NATIVE_STACK, *STACKS)  # the stacks an inference service may name


def stack_efficiency(accel, stack: str, porting=()) -> float:
    """Fraction of ``accel``'s peak a job or service written for ``stack`` reaches there: the chip's own
    figure; else the best granted port (the chip's best figure × the port's ``efficiency_frac``); 0 when
    it does not run. ``native`` is the best figure the chip lists."""
    if stack == NATIVE_STACK:
        return max(accel.stacks.values())
    eff = accel.stack_efficiency(stack)
    if eff <= 0:
        for port in porting:
            if port.from_stack == stack and port.accelerator in ("*", accel.id):
                eff = max(eff, max(accel.stacks.values()) * port.efficiency_frac)
    return eff


def efficiency_matrix(stacks: np.ndarray, accelerators: list, porting=()) -> np.ndarray:
    """Fraction of peak each job's stack reaches on each chip; ports apply where the stack is not native."""
    codes, unique = pd.factorize(stacks, use_na_sentinel=False)
    table = np.zeros((len(unique), len(accelerators)))
    for s, stack in enumerate(unique):
        for p, accel in enumerate(accelerators):
            table[s, p] = stack_efficiency(accel, stack, porting)
    return table[codes.reshape(-1)] if len(stacks) else np.zeros((0, len(accelerators)))
