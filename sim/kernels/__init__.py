"""Hot-path kernels: Numba-compiled, each with a pure-NumPy reference twin of the same signature.

If Numba cannot be imported, or ``SIM_DISABLE_NUMBA=1`` is set, the package warns once and uses the
twins; ``NUMBA_ENABLED`` says which ran (it is written to every run's manifest).
"""

from __future__ import annotations

import os
import warnings

from sim.kernels import reference
from sim.kernels.reference import (
    STATUS_GANG_TOO_LARGE,
    STATUS_OK,
    STATUS_OUT_OF_MEMORY,
    STATUS_STACK_UNSUPPORTED,
)
from sim.kernels.step_reference import BOTTLENECKS, STATUS_TP_WIDER_THAN_DOMAIN

NUMBA_ENABLED = False
if os.environ.get("SIM_DISABLE_NUMBA", "") in ("1", "true", "yes"):
    warnings.warn("SIM_DISABLE_NUMBA is set; using the pure-Python kernels", RuntimeWarning, stacklevel=2)
else:
    try:
        try:
            from sim.kernels import compiled as _compiled
        except RuntimeError as exc:  # Numba found no folder it can write its cache to (cache=True)
            if "cannot cache" not in str(exc):
                raise
            from sim.kernels._numba_cache import use_throwaway_cache

            warnings.warn_explicit(use_throwaway_cache(), RuntimeWarning, __file__, 0)  # line 0: one line
            from sim.kernels import compiled as _compiled

        NUMBA_ENABLED = True
    except ImportError as exc:  # pragma: no cover - depends on the machine
        warnings.warn(f"numba unavailable ({exc}); using the pure-Python kernels", RuntimeWarning, stacklevel=2)

training_time_s = _compiled.training_time_s if NUMBA_ENABLED else reference.training_time_s
if NUMBA_ENABLED:
    from sim.kernels.facility_compiled import chiller_terms, cooling_factor, facility_power, hourly_bin_means
    from sim.kernels.ranking_compiled import serve_ranking
    from sim.kernels.serving_compiled import serve_llm
    from sim.kernels.step_compiled import step_time_s
else:
    from sim.kernels.facility_reference import chiller_terms, cooling_factor, facility_power, hourly_bin_means
    from sim.kernels.ranking_reference import serve_ranking
    from sim.kernels.serving_reference import serve_llm
    from sim.kernels.step_reference import step_time_s

STATUS_REASONS = {
    STATUS_STACK_UNSUPPORTED: "stack-unsupported",
    STATUS_OUT_OF_MEMORY: "out-of-memory",
    STATUS_GANG_TOO_LARGE: "gang-larger-than-pool",
    STATUS_TP_WIDER_THAN_DOMAIN: "tensor-parallel-wider-than-domain",
}

__all__ = ["training_time_s", "step_time_s", "BOTTLENECKS", "cooling_factor", "chiller_terms", "facility_power",
           "hourly_bin_means", "serve_llm", "serve_ranking", "NUMBA_ENABLED", "STATUS_OK", "STATUS_REASONS"]
