"""A pool's power limit (``fleet[].power_limit_w``, as ``nvidia-smi -pl`` sets it): a static clock for its chips.

The limit caps a chip's busy power: the pool's chips draw ``power_limit_w`` at full load instead of their TDP
(idle unchanged), and run at the clock fraction ``f`` whose dynamic power fits, ``power_frac(f) = (limit − idle) /
(TDP − idle)`` (``sim.policies.capping``: dynamic power ~ f·V², V = max(f, 0.7)). The performance model sees the
slower clock through the chip's peak compute rates (BF16, FP8, INT8) and on-chip SRAM bandwidth, all × ``f``; HBM
bandwidth and the fabrics keep their rates. So a memory-bound step (LLM decode, a memory-bound training step) loses
less than a compute-bound one (prefill, a compute-bound training step), in training (the step model and roofline
use the pool's effective peak) and in serving (the iteration time). Simplification: the clock is static (a real
limit lets the clock float with the load: a light load would run faster than ``f``).
"""

from __future__ import annotations

from sim.catalog import AcceleratorSpec
from sim.policies.capping import clock_for_power


def limit_clock_frac(spec: AcceleratorSpec, limit_w: float) -> float:
    """Clock fraction of ``spec`` under a board power limit ``limit_w`` [W] (idle ≤ limit ≤ TDP)."""
    if limit_w >= spec.tdp_w:
        return 1.0
    return clock_for_power((limit_w - spec.idle_w) / (spec.tdp_w - spec.idle_w))


def power_limited(spec: AcceleratorSpec, limit_w: float) -> AcceleratorSpec:
    """``spec`` as a pool with power limit ``limit_w`` sees it: TDP = the limit, compute rates × the clock;
    raises ``ValueError`` (the message) for a limit above TDP or at or below idle."""
    if limit_w > spec.tdp_w or limit_w <= spec.idle_w:
        raise ValueError(f"found {limit_w:g} W: {spec.id} idles at {spec.idle_w:g} W and has a TDP of "
                         f"{spec.tdp_w:g} W; accepted: above {spec.idle_w:g}, up to {spec.tdp_w:g} W")
    f = limit_clock_frac(spec, limit_w)
    if f >= 1.0:
        return spec
    return clocked(spec, f, tdp_w=limit_w)


def clocked(spec: AcceleratorSpec, f: float, tdp_w: float | None = None) -> AcceleratorSpec:
    """``spec`` at clock fraction ``f``: peak compute rates (BF16, FP8, INT8) and SRAM bandwidth × ``f``, HBM and
    fabrics unchanged (module docstring); ``tdp_w`` replaces the TDP when given."""
    scaled = {"bf16_tflops": spec.bf16_tflops * f}
    if tdp_w is not None:
        scaled["tdp_w"] = tdp_w
    for name in ("fp8_tflops", "int8_tops", "sram_bandwidth_tbps"):
        value = getattr(spec, name)
        if value is not None:
            scaled[name] = value * f
    return spec.model_copy(update=scaled)
