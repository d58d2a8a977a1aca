"""Scenario schema for inference services (``workloads.inference``): replicas, traffic, SLO, router.

Today: LLM services on dedicated replicas, served request by request or, with ``fidelity: fluid``, as
arrival rates per ``fluid_bin`` (see ``docs/inference-plan.md`` for what comes next: ranking services,
shared pools).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sim.scenario.base import DurationS, Strict, require_exactly_one
from sim.scenario.distributions import Distribution


class ReplicaGroup(Strict):
    """Identical replicas of the service's model on one pool, on chips reserved for them."""

    pool: str = Field(description="fleet pool the replicas run on")
    count: int = Field(gt=0, description="number of replicas")
    chips_per_replica: int = Field(1, gt=0, description="chips one replica spans (tensor parallel, one domain)")
    token_budget: int = Field(8192, gt=0, description="tokens one batched iteration may process")
    max_seqs: int = Field(256, gt=0, description="requests a replica runs at once")
    chunked_prefill: bool = Field(True, description="split long prompts over iterations")


class RequestTrace(Strict):
    """A real request trace, replayed at ``scale`` times its rate from ``start_offset``."""

    format: Literal["azure-llm-2023", "mooncake"] = Field(description="trace format")
    path: str = Field(description="file path, relative to the scenario file or to the packaged traces")
    scale: float = Field(1.0, gt=0, le=10_000, description="rate multiplier (superposed shifted copies)")
    start_offset: DurationS = Field(0.0, description="when the trace starts in the scenario [s or '2h']")
    limit: int | None = Field(None, gt=0, description="read only the first N requests")


class Diurnal(Strict):
    """Rate follows the time of day: ``rate · (1 + amplitude · cos(2π (hour − peak_hour) / 24))``."""

    amplitude_frac: float = Field(0.5, ge=0, le=1, description="swing around the mean rate [-]")
    peak_hour: float = Field(14.0, ge=0, lt=24, description="hour of day with the highest rate [h]")


class Bursty(Strict):
    """Calm and burst periods alternate (exponential lengths); bursts run ``burst_factor`` × the calm rate.

    The calm rate is set so that the long-run mean stays ``rate_per_s``."""

    burst_factor: float = Field(4.0, gt=1, description="burst rate over calm rate [-]")
    mean_burst_s: float = Field(60.0, gt=0, description="mean length of a burst [s]")
    mean_calm_s: float = Field(600.0, gt=0, description="mean length of a calm period [s]")


class RequestGenerator(Strict):
    """Synthetic requests: Poisson arrivals (optionally diurnal or bursty) with length distributions."""

    rate_per_s: float = Field(gt=0, description="mean arrival rate [requests/s]")
    prompt_tokens: Distribution = Field(description="prompt length [tokens, rounded up to >= 1]")
    output_tokens: Distribution = Field(description="output length [tokens, rounded up to >= 1]")
    diurnal: Diurnal | None = Field(None, description="time-of-day rate pattern")
    bursty: Bursty | None = Field(None, description="burst/calm rate pattern")

    @model_validator(mode="after")
    def _one_pattern(self):
        if self.diurnal is not None and self.bursty is not None:
            raise ValueError("give at most one of diurnal and bursty")
        return self


class Traffic(Strict):
    trace: RequestTrace | None = Field(None, description="replay a real request trace")
    generator: RequestGenerator | None = Field(None, description="synthetic requests")

    @model_validator(mode="after")
    def _one_source(self):
        require_exactly_one(self, "trace", "generator")
        return self


class LlmSlo(Strict):
    ttft_p99_ms: float = Field(gt=0, description="time to first token target [ms]")
    tpot_p99_ms: float = Field(gt=0, description="time per output token target [ms]")


class Router(Strict):
    kind: Literal["round-robin", "jsq", "least-work", "central"] = Field(
        "least-work", description="how a replica group picks a replica (central: one shared queue)")


class InferenceService(Strict):
    """One deployed model: its replicas, the traffic it receives, its SLO."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="service name (a key of the results)")
    model: str = Field(description="catalog model id (an LLM with kv_bytes_per_token)")
    family: Literal["llm"] = Field("llm", description="service family (ranking services come later)")
    stack: str = Field("portable", description="software stack the serving code is written for")
    replicas: tuple[ReplicaGroup, ...] = Field(min_length=1, description="replica groups, one per pool")
    traffic: Traffic = Field(description="the requests")
    slo: LlmSlo | None = Field(None, description="latency targets for SLO attainment and goodput")
    router: Router = Field(Router(), description="replica choice within a group")
    fidelity: Literal["request", "fluid"] = Field(
        "request", description="request: every request through continuous batching; fluid: arrival rates per "
                               "time bin served by replica capacity, latency from queueing formulas (long runs)")
    fluid_bin: DurationS = Field(60.0, gt=0, description="time bin of the fluid fidelity [s or '1min']")
