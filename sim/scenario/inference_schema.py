"""Scenario schema for inference services (``workloads.inference``): replicas, traffic, SLO, router.

Two families, served request by request: ``llm`` (continuous batching, tokens) and ``ranking``
(DLRM-class: dynamic batching of scored items). Which fields belong to which family is checked in
``sim.validation.family``. A service of either family is simulated request by request or, with
``fidelity: fluid``, as arrival rates per ``fluid_bin``. On a ``sharing: shared`` pool an LLM replica
group may autoscale and lend the chips of its inactive replicas to training.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator, model_validator

from sim.scenario.base import (
    MAX_CHIPS,
    MAX_REQUESTS,
    MAX_TOKENS,
    WHY_TOKENS,
    DurationS,
    Strict,
    bounded,
    number_text,
    require_exactly_one,
)
from sim.scenario.distributions import Distribution, mean_or_none
from sim.scenario.growth import Growth

LLM_GROUP_FIELDS = ("token_budget", "max_seqs", "chunked_prefill", "autoscale")
RANKING_GROUP_FIELDS = ("max_batch", "max_queue_delay_ms")
MAX_REPLICAS = 1_000_000
MAX_MS = 86_400_000.0  # a day, in milliseconds: no latency target or batching delay is longer
WHY_REPLICAS = "more replicas than any fleet holds"


class Autoscale(Strict):
    """Reactive autoscaling of a replica group on a shared pool (``sim.serving.autoscale``).

    Every ``interval`` the active replica count is set from the load observed in the previous interval:
    ``ceil(work / (interval × target_utilization_frac))``, clamped to [``min_count``, the group's ``count``]."""

    min_count: int = bounded(1, ge=1, le=MAX_REPLICAS, why=WHY_REPLICAS,
                             description="replicas always active (held for the whole run)")
    interval: DurationS = Field(300.0, gt=0, description="decision interval [s or '5min']")
    target_utilization_frac: float = Field(
        0.7, gt=0, le=1, description="busy share one replica should run at (lower = more headroom) [-]")


class ServingBurst(Strict):
    """Rent a replica group on an on-demand rented pool only while its service misses its SLO
    (``sim.serving.burst``): a reactive two-pass model. The service is served once without the group; every
    ``interval`` whose arrivals meet the SLO less often than ``slo_attainment_below`` rents the group from the
    interval's end + ``provisioning_delay`` for ``min_rental`` (rentals that overlap or touch merge into one
    window); the service is then served again with the group active in those windows."""

    slo_attainment_below: float = Field(
        gt=0, le=1, description="rent when an interval's SLO attainment (met / offered arrivals) is below this [-]")
    provisioning_delay: DurationS = Field(600.0, ge=0, description="from the decision (the interval's end) to the "
                                                                   "replicas taking requests [s or '10min']")
    min_rental: DurationS = Field(3600.0, gt=0, description="shortest rental; a later low interval extends it "
                                                            "[s or '1h']")
    interval: DurationS = Field(3600.0, gt=0, description="decision interval: attainment is measured per interval "
                                                          "of arrivals from t = 0 [s or '1h']")


class ReplicaGroup(Strict):
    """Identical replicas of the service's model on one pool, on chips reserved for them while the group is
    active: over [max(active_from, the pool's online_from), min(active_until, the pool's online_until)), cut to
    the run (``sim.serving.windows``)."""

    pool: str = Field(description="fleet pool the replicas run on")
    count: int = bounded(gt=0, le=MAX_REPLICAS, why=WHY_REPLICAS,
                         description="number of replicas (the maximum, with autoscale)")
    chips_per_replica: int = bounded(1, gt=0, le=MAX_CHIPS, unit="chips", why="larger fleets do not fit in memory",
                                     description="chips one replica spans (tensor parallel, one domain)")
    token_budget: int = bounded(8192, gt=0, le=MAX_TOKENS, unit="tokens", why="more than any replica's memory holds",
                                description="tokens one batched iteration may process (llm)")
    max_seqs: int = bounded(256, gt=0, le=1_000_000, why="more than any replica's memory holds",
                            description="requests a replica runs at once (llm)")
    chunked_prefill: bool = Field(True, description="split long prompts over iterations (llm)")
    max_batch: int = bounded(64, gt=0, le=1_000_000, why="more than any replica's memory holds",
                             description="requests per batch (ranking)")
    max_queue_delay_ms: float = bounded(
        2.0, ge=0, le=MAX_MS, unit="ms", why="a day", description="a batch closes when full or once its oldest "
        "request waited this long (ranking) [ms]")
    autoscale: Autoscale | None = Field(
        None, description="scale between min_count and count by load (shared pools only); none = count always")
    burst: ServingBurst | None = Field(
        None, description="rent this group's replicas only while the service misses its SLO (an LLM or ranking "
                          "service; the pool: rented, on-demand, holding this group alone); none = always active")
    active_from: dt.date | None = Field(
        None, description="date the group starts taking requests (its chips are held from then on) [default: its "
                          "pool's online_from, else the scenario start]")
    active_until: dt.date | None = Field(
        None, description="date the group stops taking requests: it finishes the requests it holds, and its chips "
                          "go back to training (a service moves between pools with one group's active_until equal "
                          "to another's active_from) [default: its pool's online_until, else never]")


class RequestTrace(Strict):
    """A real request trace, replayed at ``scale`` times its rate from ``start_offset``."""

    format: Literal["azure-llm-2023", "mooncake"] = Field(description="trace format")
    path: str = Field(description="file path, relative to the scenario file or to the packaged traces")
    scale: float = Field(1.0, gt=0, le=10_000, description="rate multiplier (superposed shifted copies)")
    start_offset: DurationS = Field(0.0, description="when the trace starts in the scenario [s or '2h']")
    limit: int | None = bounded(None, gt=0, le=MAX_REQUESTS, unit="requests", why="each request is held in memory",
                                description="read only the first N requests")
    growth: Growth | None = Field(
        None, description="demand growth: a time-varying scale (copies superposed as for `scale`, each request kept "
                          "with probability clip(scale × growth − copy, 0, 1)); none = the trace's own rate")


class Diurnal(Strict):
    """Rate follows the time of day: ``rate · (1 + amplitude · cos(2π (hour − peak_hour) / 24))``."""

    amplitude_frac: float = Field(0.5, ge=0, le=1, description="swing around the mean rate [-]")
    peak_hour: float = Field(14.0, ge=0, lt=24, description="hour of day with the highest rate [h]")


MAX_PERIOD_S = 365 * 86400.0
WHY_PERIOD = "a millisecond to a year; the horizon also bounds how many periods there are"


class Bursty(Strict):
    """Calm and burst periods alternate (exponential lengths); bursts run ``burst_factor`` × the calm rate.

    The calm rate is set so that the long-run mean stays ``rate_per_s``."""

    burst_factor: float = bounded(4.0, gt=1, le=1_000, why="calm traffic would be all but off",
                                  description="burst rate over calm rate [-]")
    mean_burst_s: float = bounded(60.0, ge=0.001, le=MAX_PERIOD_S, unit="s", why=WHY_PERIOD,
                                  description="mean length of a burst [s]")
    mean_calm_s: float = bounded(600.0, ge=0.001, le=MAX_PERIOD_S, unit="s", why=WHY_PERIOD,
                                 description="mean length of a calm period [s]")


class RequestGenerator(Strict):
    """Synthetic requests: Poisson arrivals (optionally diurnal or bursty) with size distributions:
    prompt and output tokens (llm) or items per request (ranking)."""

    rate_per_s: float = bounded(gt=0, le=10_000_000, unit="requests/s", why="beyond any single service",
                                description="mean arrival rate [requests/s]")
    prompt_tokens: Distribution | None = Field(None, description="prompt length (llm) [tokens, rounded up to >= 1]")
    output_tokens: Distribution | None = Field(None, description="output length (llm) [tokens, rounded up to >= 1]")
    items_per_request: Distribution | None = Field(
        None, description="candidates scored per query (ranking) [items, rounded up to >= 1]")
    diurnal: Diurnal | None = Field(None, description="time-of-day rate pattern")
    bursty: Bursty | None = Field(None, description="burst/calm rate pattern")
    growth: Growth | None = Field(None, description="demand growth over the run, multiplying the rate (and the "
                                                    "diurnal or bursty pattern); none = a steady mean rate")

    @field_validator("prompt_tokens", "output_tokens", "items_per_request")
    @classmethod
    def _sane_lengths(cls, dist: Distribution | None, info) -> Distribution | None:
        mean = mean_or_none(dist) if dist is not None else None
        if mean is not None and mean > MAX_TOKENS:
            unit = "items" if info.field_name == "items_per_request" else "tokens"
            why = "more candidates than any ranking stage scores" if unit == "items" else WHY_TOKENS
            raise ValueError(f"found a mean of {mean:.3g} {unit}; accepted: a mean up to "
                             f"{number_text(MAX_TOKENS)} {unit} ({why})")
        return dist

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
    ttft_p99_ms: float = bounded(gt=0, le=MAX_MS, unit="ms", why="a day",
                                 description="time to first token target [ms]")
    tpot_p99_ms: float = bounded(gt=0, le=MAX_MS, unit="ms", why="a day",
                                 description="time per output token target [ms]")


class RankingSlo(Strict):
    latency_p99_ms: float = bounded(gt=0, le=MAX_MS, unit="ms", why="a day",
                                    description="request latency target, arrival to scores (ranking) [ms]")


class Router(Strict):
    kind: Literal["round-robin", "jsq", "least-work", "central", "slo-aware"] = Field(
        "least-work", description="how a request picks one of the service's replicas, across all its groups "
        "(central: one shared queue; slo-aware: the cheapest replica predicted to meet the SLO)")
    slo_headroom_frac: float = Field(
        0.7, gt=0, le=1, description="slo-aware: a replica qualifies when its predicted TTFT and TPOT are within "
        "this fraction of the targets (the targets are p99s; the prediction is of one request) [-]")


PRIORITY_RANGE = 1_000_000  # power-cap priorities: integers, higher = more important (sim.policies.capping)
WHY_PRIORITY = "an ordering, not a quantity"
DEFAULT_INFERENCE_PRIORITY = 100  # above training's default 0: inference is slowed last, as before priorities


class InferenceService(Strict):
    """One deployed model: its replicas, the traffic it receives, its SLO."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="service name (a key of the results)")
    model: str = Field(description="catalog model id (llm: with kv_bytes_per_token; ranking: with embedding tables)")
    family: Literal["llm", "ranking"] = Field("llm", description="service family")
    stack: str = Field("native", description="software stack the service runs on: native = each replica group on "
                       "its chip's best listed stack (the vendor runtime); portable or a named stack (cuda, xla, ...): "
                       "that stack on every chip, ports included")
    framework: str | None = Field(None, description="framework the service is written in (pytorch, jax, "
                                  "tensorflow), instead of stack: each chip runs it on the best stack the "
                                  "framework supports there")
    replicas: tuple[ReplicaGroup, ...] = Field(min_length=1, description="replica groups, one per pool")
    traffic: Traffic = Field(description="the requests")
    slo: LlmSlo | RankingSlo | None = Field(
        None, description="latency targets for SLO attainment and goodput (llm: ttft/tpot; ranking: latency_p99_ms)")
    router: Router = Field(Router(), description="how each request picks a replica among all the service's groups")
    fidelity: Literal["request", "fluid"] = Field(
        "request", description="request: every request through continuous (llm) or dynamic (ranking) batching; "
                               "fluid: arrival rates per time bin served by replica capacity, latency from queueing "
                               "formulas (long runs)")
    fluid_bin: DurationS = Field(60.0, gt=0, description="time bin of the fluid fidelity [s or '1min']")
    priority: int = bounded(DEFAULT_INFERENCE_PRIORITY, ge=-PRIORITY_RANGE, le=PRIORITY_RANGE, why=WHY_PRIORITY,
                            description="power-cap priority (higher: slowed last; training jobs default to 0): under "
                                        "throttle or shed, a service below the training jobs' priority has its "
                                        "LLM replicas slowed while a cap is in force (sim.serving.throttle)")

    @model_validator(mode="after")
    def _stack_or_framework(self):
        if self.framework is not None and "stack" in self.model_fields_set:
            raise ValueError("give stack or framework, not both")
        return self

    @property
    def software(self) -> str:
        """What the efficiency table is looked up by: the framework when one is named, else the stack."""
        return self.framework if self.framework is not None else self.stack
