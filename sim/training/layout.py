"""Parallel layouts of transformer training jobs, and the search that picks one per (job shape, pool).

A layout splits a gang of ``chips = tp · pp · dp · cp`` into tensor (tp), pipeline (pp), data (dp), context
(cp) and expert (ep, a divisor of dp) parallel groups, with a ZeRO stage (0–3; 3 = FSDP), a micro-batch
[sequences] and an activation-recomputation mode. A job either gives its layout or leaves it to the search
(``auto``), which, as planners' calculators do, enumerates the layouts of the gang and keeps the fastest
one that fits memory on that pool (the step-time kernel, ``sim.kernels.step_time_s``, is the judge):

* tp: powers of 2 up to the largest scale-up domain of the fleet, dividing the model's attention heads;
* cp: 1, or powers of 2 that keep at least ``MIN_CP_TOKENS`` tokens of the sequence per rank;
* pp: divisors of the layer count; dp = chips / (tp·pp·cp) must be whole;
* ep (mixture of experts): powers of 2 dividing both the expert count and dp;
* ZeRO 1 (distributed optimizer) or 3 (FSDP); micro-batch 1, 2, 4 or 8 sequences dividing the global
  batch per data-parallel rank; selective or full recomputation; with pp > 1, 1, 2 or 4 virtual stages per
  device (interleaved schedule) dividing the layers of a stage.

Ties keep the earlier candidate (smaller tp, pp, cp, ep; ZeRO 1; micro-batch 1; selective), so the search is
deterministic. The kernel marks layouts that do not fit (memory, tp wider than the pool's domain, gang
larger than the pool) and the search never returns one of those.

Job-table encoding: column ``layout`` is '' (auto) or
``tp=8,pp=4,dp=64,cp=1,ep=1,zero=1,mb=1,recompute=selective,vp=1``; ``global_batch`` [sequences] and
``seq_len`` [tokens] are NaN for the defaults (one sequence per chip per step; the model's
``microbatch_samples`` tokens per sequence).
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.workload.jobs import layout_text

RECOMPUTE = ("none", "selective", "full")
ZERO_STAGES = (1, 3)
MICRO_BATCHES = (1, 2, 4, 8)
VIRTUAL_STAGES = (1, 2, 4)
MIN_CP_TOKENS = 4096
MAX_CP = 16


@dataclass(frozen=True)
class Layout:
    tp: int = 1
    pp: int = 1
    dp: int = 1
    cp: int = 1
    ep: int = 1
    zero: int = 1
    micro_batch: int = 1
    recompute: int = 1  # index into RECOMPUTE
    vp: int = 1  # virtual pipeline stages per device (interleaved schedule)

    @property
    def chips(self) -> int:
        return self.tp * self.pp * self.dp * self.cp

    def encode(self) -> str:
        return layout_text(self.tp, self.pp, self.dp, self.cp, self.ep, self.zero, self.micro_batch,
                           RECOMPUTE[self.recompute], self.vp)

    def label(self) -> str:
        """Short form for jobs.csv, e.g. ``tp8-pp4-dp64-z1-mb1-sel`` (vp, cp, ep shown when above 1)."""
        parts = [f"tp{self.tp}", f"pp{self.pp}", f"dp{self.dp}"]
        parts += [f"vp{self.vp}"] if self.vp > 1 else []
        parts += [f"cp{self.cp}"] if self.cp > 1 else []
        parts += [f"ep{self.ep}"] if self.ep > 1 else []
        parts += [f"z{self.zero}", f"mb{self.micro_batch}", RECOMPUTE[self.recompute][:3]]
        return "-".join(parts)


def decode(text: str) -> Layout:
    """The layout of a job-table ``layout`` string (see the module docstring)."""
    fields = dict(item.split("=", 1) for item in text.split(","))
    return Layout(tp=int(fields["tp"]), pp=int(fields["pp"]), dp=int(fields["dp"]), cp=int(fields["cp"]),
                  ep=int(fields["ep"]), zero=int(fields["zero"]), micro_batch=int(fields["mb"]),
                  recompute=RECOMPUTE.index(fields["recompute"]), vp=int(fields.get("vp", 1)))


def _powers_of_two(limit: int) -> list[int]:
    out, v = [], 1
    while v <= limit:
        out.append(v)
        v *= 2
    return out


def candidates(model, chips: int, global_batch: int, seq_len: int, max_domain: int) -> list[Layout]:
    """Every layout the search tries for a gang of ``chips`` (see the module docstring); may be empty."""
    heads = model.heads
    out = []
    for tp in _powers_of_two(min(max_domain, chips, heads)):
        if heads % tp or model.hidden_size % tp:
            continue
        for cp in _powers_of_two(min(MAX_CP, chips // tp)):
            if cp > 1 and seq_len / cp < MIN_CP_TOKENS:
                break
            rest = chips // (tp * cp)
            if rest * tp * cp != chips:
                continue
            for pp in range(1, min(model.layers, rest) + 1):
                if model.layers % pp or rest % pp:
                    continue
                dp = rest // pp
                eps = [e for e in _powers_of_two(min(model.experts, dp)) if model.experts % e == 0 and dp % e == 0] \
                    if model.experts else [1]
                for ep in eps:
                    for zero in ZERO_STAGES:
                        for mb in MICRO_BATCHES:
                            if global_batch % (dp * mb):
                                continue
                            for recompute in (1, 2):
                                for vp in VIRTUAL_STAGES:
                                    if vp > 1 and (pp == 1 or (model.layers // pp) % vp):
                                        continue
                                    out.append(Layout(tp, pp, dp, cp, ep, zero, mb, recompute, vp))
    return out
