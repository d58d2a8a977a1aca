"""How much of a chip's peak a software stack reaches there, with porting grants where it is not native.

Shared by training (job run times) and serving (replica iteration times), so both read one table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def efficiency_matrix(stacks: np.ndarray, accelerators: list, porting=()) -> np.ndarray:
    """Fraction of peak each job's stack reaches on each chip; ports apply where the stack is not native."""
    codes, unique = pd.factorize(stacks, use_na_sentinel=False)
    table = np.zeros((len(unique), len(accelerators)))
    for s, stack in enumerate(unique):
        for p, accel in enumerate(accelerators):
            eff = accel.stack_efficiency(stack)
            if eff <= 0:
                for port in porting:
                    if port.from_stack == stack and port.accelerator in ("*", accel.id):
                        eff = max(eff, max(accel.stacks.values()) * port.efficiency_frac)
            table[s, p] = eff
    return table[codes.reshape(-1)] if len(stacks) else np.zeros((0, len(accelerators)))
