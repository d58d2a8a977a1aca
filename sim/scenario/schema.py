"""Scenario schema v1: typed, frozen models; unknown keys are rejected; units are in the field names.

Each field is defined once, here, with its default, unit and a one-line description; the scenario
reference (``dcsim schema``) is generated from these definitions. Cross-references to the catalog
(accelerator and model names) and registry keys (``policy.scheduler.kind``) are checked afterwards by
``sim.validation.checks``, which needs the catalog and can list the accepted names.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from sim.catalog.specs import AcceleratorSpec, ModelSpec
from sim.scenario.base import MAX_CHIPS, MAX_JOBS, WHY_CHIPS, WHY_JOBS, DurationS, Strict, bounded, require_exactly_one
from sim.scenario.distributions import Distribution
from sim.scenario.facility_schema import CarbonValue, DataCsv, PriceValue
from sim.scenario.failures_schema import Failures, no_failures
from sim.scenario.growth import Growth
from sim.scenario.inference_schema import PRIORITY_RANGE, WHY_PRIORITY, InferenceService
from sim.scenario.procurement_schema import Procurement, Supply

CapMw = Annotated[float, Field(gt=0, le=100_000)]


class SiteNetwork(Strict):
    """The site's data-center network beyond the top-of-rack switches (``sim.fleet.network``)."""

    spine_oversubscription: float = bounded(
        1.0, ge=1.0, le=100, why="a spine carrying under 1 % of what its racks send",
        description="ratio of what a rack's servers can send to what its uplinks to the spine carry [-]; "
                    "1 = non-blocking; traffic between racks gets 1/ratio of the NIC bandwidth")


class Site(Strict):
    """The site's power, pinned PUE, energy price and grid carbon. Unset values come from the catalog."""

    power_cap_mw: CapMw | dict[dt.date, CapMw] | None = Field(
        None, json_schema_extra={"accepted": "above 0, up to 100,000 MW (larger than any grid connection)"},
        description="site power cap, facility side [MW]: a number, or a dated schedule {2026-01-01: 120, "
                    "2026-07-01: 100} in date order (the first value holds before its date); none = no cap; each above "
                    "0, up to 100,000 MW (larger than any grid connection)")
    pue: float | None = bounded(None, ge=1.0, le=5.0, why="beyond any operating facility",
                                description="power usage effectiveness, pinned [-]")
    electricity_usd_per_kwh: PriceValue | None = Field(
        None, description="energy price [USD/kWh]: a number (0 to 100), a profile {mean, daily, monthly} or an "
                          "hourly CSV {csv: path} with columns hour,value",
        json_schema_extra={"accepted": "0 to 100 USD/kWh (far above any market price)"})
    carbon_g_per_kwh: CarbonValue | None = Field(
        None, description="grid carbon intensity [gCO2e/kWh]: a number (0 to 2,000), a profile {mean, daily, "
                          "monthly} or an hourly CSV {csv: path} with columns hour,value",
        json_schema_extra={"accepted": "0 to 2,000 gCO2e/kWh (twice a coal plant's)"})
    climate: str | None = Field(
        None, description="built-in typical-year weather of a named location (miami, greensboro, sand-point): "
                          "turns the cooling model on, so PUE follows the weather unless pue is pinned")
    weather: DataCsv | None = Field(
        None, description="the site's own hourly weather, CSV with columns hour,dry_bulb_c,relative_humidity_pct "
                          "(instead of climate)")
    embodied_kg_per_accelerator: float | None = bounded(
        None, ge=0, le=100_000, unit="kgCO2e", why="a hundred tonnes for one chip",
        description="manufacturing carbon of one accelerator, amortized over amortization_years [kgCO2e]")
    embodied_kg_per_server: float | None = bounded(
        None, ge=0, le=1_000_000, unit="kgCO2e", why="a thousand tonnes for one server",
        description="manufacturing carbon of one server beyond its accelerators [kgCO2e]")
    air_cooling_kw_per_rack: float | None = bounded(None, gt=0, le=2_000, unit="kW", why="beyond any rack cooling",
                                                    description="heat an air-cooled rack removes [kW]")
    liquid_cooling_kw_per_rack: float | None = bounded(
        None, gt=0, le=2_000, unit="kW", why="beyond any rack cooling",
        description="heat a liquid-cooled rack removes [kW]")
    rear_door_cooling_kw_per_rack: float | None = bounded(
        None, gt=0, le=2_000, unit="kW", why="beyond any rack cooling",
        description="heat a rack with a rear-door heat exchanger removes [kW]")
    cooling_over_capacity: Literal["error", "throttle"] = Field(
        "error", description="a rack drawing more than its cooling removes: error (refused before the run), or "
                             "throttle (its chips run under the power limit whose rack power fits the cooling, "
                             "at the slower clock that gives: sim.fleet.power_limit; summary.heat_throttled_pools)")
    cooling_plant_mw: float | None = bounded(
        None, gt=0, le=100_000, unit="MW", why="larger than any grid connection",
        description="heat the cooling plant rejects at its design dry-bulb [MW]; above it the capacity falls "
                    "(sim.facility.cooling), and the IT power it can cool each hour is a cap on training (with "
                    "policy.power_cap) [default: sized to the fleet, no limit; needs climate or weather]")
    cooling_plant_design_c: float | None = bounded(
        None, ge=-20, le=60, unit="C", why="outside any plant's rating",
        description="outside dry-bulb at which cooling_plant_mw is rated [C] [default: 35, AHRI 550/590]")
    server_power_overhead_frac: float | None = bounded(
        None, ge=0, le=10, why="the host would draw ten times its accelerators",
        description="non-accelerator server power per unit of accelerator power [-]"
    )
    amortization_years: float | None = bounded(None, gt=0, le=100, unit="years", why="longer than any building lasts",
                                               description="capex amortization period [years]")
    maintenance_frac_per_year: float | None = bounded(
        None, ge=0, le=1, unit="1/year", why="a year of upkeep costing more than the hardware",
        description="yearly maintenance of owned chips, as a share of their purchase price [1/year]")
    server_usd: float | None = bounded(
        None, ge=0, le=10_000_000, unit="USD", why="far above any server's price",
        description="purchase price of a server beyond its accelerators (host CPUs, memory, NICs, chassis) [USD]")
    rack_usd: float | None = bounded(
        None, ge=0, le=100_000_000, unit="USD", why="far above any rack's price",
        description="purchase price of a rack beyond its servers (rack, PDUs, top-of-rack switch and its share of "
                    "the spine network) [USD]")
    installation_usd_per_rack: float | None = bounded(
        None, ge=0, le=10_000_000, unit="USD", why="far above any rack's installation",
        description="one-off installation of a rack (integration, cabling, commissioning) [USD]")
    checkpoint_storage_gb_per_s: float | None = bounded(
        None, gt=0, le=1_000_000, unit="GB/s", why="beyond any storage system",
        description="the site's checkpoint storage bandwidth, shared by the jobs saving or restoring at once (with "
                    "failures) [GB/s]")
    engineer_week_usd: float | None = bounded(
        None, ge=0, le=1_000_000, unit="USD", why="far above any engineer's fully loaded cost",
        description="fully loaded cost of one engineer-week, for porting projects' engineer_weeks [USD]")
    capex_accounting: Literal["depreciation", "cash"] = Field(
        "depreciation", description="owned hardware in the money ledger: depreciation (straight line over "
                                    "amortization_years) or cash (the whole purchase a cost on its date)")
    network: SiteNetwork = Field(default_factory=SiteNetwork, description="the data-center network: spine "
                                                                            "oversubscription")

    @model_validator(mode="after")
    def _one_weather(self):
        if self.climate is not None and self.weather is not None:
            raise ValueError("give at most one of climate, weather (found both)")
        if self.cooling_plant_mw is not None and self.climate is None and self.weather is None:
            raise ValueError(f"cooling_plant_mw {self.cooling_plant_mw:g} needs the outside temperature; accepted: "
                             "with climate or weather, or no cooling_plant_mw")
        return self

    @field_validator("power_cap_mw", mode="before")
    @classmethod
    def _cap_number_or_schedule(cls, value):
        """Text that is not a number gets the number's message, not one per member of the union."""
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise ValueError("Input should be a valid number, unable to parse string as a number") from None
        return value

    @field_validator("power_cap_mw")
    @classmethod
    def _cap_dates_in_order(cls, value):
        if isinstance(value, dict):
            dates = list(value)
            if not dates:
                raise ValueError("found an empty schedule; accepted: a number or {date: MW, ...}")
            for before, after in zip(dates, dates[1:]):
                if after <= before:
                    raise ValueError(f"found {after} after {before}: schedule dates must increase")
        return value


class Delivery(Strict):
    """Chips that join a pool on a date (``fleet[].deliveries``): the pool grows by whole scale-up domains."""

    date: dt.date = Field(description="date the chips come online (00:00 of that day)")
    chips: int = bounded(gt=0, le=MAX_CHIPS, unit="chips", why=WHY_CHIPS,
                         description="chips delivered: whole scale-up domains of the pool")


class Retirement(Strict):
    """Chips that leave a pool on a date (``fleet[].retirements``): the pool shrinks by whole scale-up domains."""

    date: dt.date = Field(description="date the chips leave (00:00 of that day); the pool's drain ends then")
    chips: int = bounded(gt=0, le=MAX_CHIPS, unit="chips", why=WHY_CHIPS,
                         description="chips retired: whole scale-up domains of the pool")


class Pool(Strict):
    """Identical chips of one accelerator type, cooling and owner, grouped into servers and racks."""

    name: str = Field(description="unique pool name")
    accelerator: str | AcceleratorSpec = Field(description="catalog id, or a custom spec inline")
    count: int = bounded(ge=0, le=MAX_CHIPS, unit="chips", why=WHY_CHIPS,
                         description="number of chips, procurement orders not included (they add the chips they "
                                     "deliver; 0 is allowed: --set fleet.NAME.count=0 runs without the pool)")
    chips_per_server: int | None = bounded(None, gt=0, le=1_024, why="no server holds more",
                                           description="chips per server [default: min(8, domain)]")
    servers_per_rack: int = bounded(4, gt=0, le=1_024, why="no rack holds more", description="servers per rack")
    scale_up_domain_chips: int | None = bounded(None, gt=0, le=100_000, why="larger than any scale-up fabric",
                                                description="chips per fast-fabric domain [default: catalog]")
    cooling: Literal["air", "rear-door", "liquid"] | None = Field(
        None, description="rack cooling: air, rear-door (heat exchanger on the rack's water) or liquid (cold "
                          "plates) [default: as the chip ships]")
    online_from: dt.date | None = Field(None, description="date the pool comes online [default: scenario start]")
    online_until: dt.date | None = Field(
        None, description="date the pool leaves: retirement of an owned pool, end of a rented pool's contract "
                          "(a rented pool costs nothing outside [online_from, online_until)) [default: never]")
    deliveries: list[Delivery] = Field(
        default_factory=list,
        description="later deliveries joining this pool, in date order; count is the total after all of them, "
                    "and count minus their chips is online from online_from (the start) [default: none]")
    retirements: list[Retirement] = Field(
        default_factory=list,
        description="chips leaving this pool before online_until, in date order (whole scale-up domains, highest "
                    "domain index first; owned chips write off their remaining book value, oldest first) "
                    "[default: none]")
    drain: DurationS = bounded(
        0.0, ge=0, le=10 * 365 * 86400.0, unit="s", why="longer than any chip's service life",
        description="how long before each retirement and online_until the leaving domains take no new training "
                    "job (jobs already there finish if they can; the rest are preempted at the date) [s or '7d'; "
                    "default 0: they leave at once]")
    power_limit_w: float | None = bounded(
        None, gt=0, le=100_000, unit="W", why="above any chip's power",
        description="board power limit per chip, as nvidia-smi -pl sets it, between the chip's idle and TDP [W]: "
                    "its busy power, and a clock whose dynamic power fits it slows compute (sim.fleet.power_limit) "
                    "[default: TDP]")
    rack_budget_kw: float | None = bounded(
        None, gt=0, le=10_000, unit="kW", why="above any rack's power feed",
        description="IT power budget of each rack of the pool (its chips with their server share, at the rack's "
                    "PDU): training is admitted, throttled or shed per rack as policy.power_cap says; below the "
                    "rack's full load is oversubscription (docs/fleet.md) [default: none]")
    racks_per_row: int | None = bounded(
        None, ge=1, le=100_000, unit="racks", why="more than any hall holds",
        description="racks per row (one row PDU or busway): the pool's racks in index order, row k holding racks "
                    "k·racks_per_row onward; needs row_budget_kw [default: none]")
    row_budget_kw: float | None = bounded(
        None, gt=0, le=1_000_000, unit="kW", why="above any row's power feed",
        description="IT power budget of each row of racks_per_row racks; Σ rack peaks / budget > 1 is "
                    "oversubscription, reported in summary power_capping.budgets (docs/fleet.md) [default: none]")
    owner: Literal["owned", "rented"] = Field("owned", description="owned chips cost capex; rented cost per hour")
    purchase_usd_per_chip: float | None = bounded(
        None, ge=0, le=10_000_000, unit="USD", why="far above any accelerator's price",
        description="purchase price per chip of an owned pool, amortized over site.amortization_years "
                    "[default: the chip's catalog price_usd]")
    rental_usd_per_chip_hour: float | None = bounded(
        None, ge=0, le=10_000, unit="USD/chip-hour", why="far above any cloud rate",
        description="rental rate of a rented pool [default: the chip's catalog rate for the pool's rental_term: "
                    "cloud_usd_per_chip_hour, cloud_reserved_1y_usd_per_chip_hour or "
                    "cloud_reserved_3y_usd_per_chip_hour]")
    rental_term: Literal["on-demand", "reserved-1y", "reserved-3y"] = Field(
        "on-demand", description="a rented pool's terms: on-demand is charged per online chip-hour; a reserved term "
                                 "is a commitment charged for every hour of its whole 1- or 3-year terms from "
                                 "online_from (the window rounded up to whole terms), even after online_until")
    multi_domain_gangs: bool = Field(
        True, description="a gang larger than a domain may span whole domains (false: one domain, like a k8s pod)"
    )
    sharing: Literal["dedicated", "shared"] = Field(
        "dedicated", description="dedicated: inference replicas hold their chips all run; shared: chips of "
                                 "inactive (autoscaled-down) replicas are lent to training, which inference preempts"
    )

    @property
    def accelerator_id(self) -> str:
        return self.accelerator if isinstance(self.accelerator, str) else self.accelerator.id


class TraceSource(Strict):
    """A real job trace on disk."""

    format: Literal["alibaba-gpu-2023"] = Field(description="trace format")
    path: str = Field(description="file path, relative to the scenario file or to the packaged traces")
    limit: int | None = bounded(None, gt=0, le=MAX_JOBS, unit="rows", why=WHY_JOBS,
                                description="read only the first N rows")
    accelerator_map: dict[str, str] | None = Field(
        None, description="trace GPU model -> catalog accelerator id [default: the format's own map]"
    )
    time_scale: float = bounded(1.0, ge=1e-6, le=1e6, why="times would collapse to 0 or pass any horizon",
                                description="multiply trace times by this factor")
    priority: int = bounded(0, ge=-PRIORITY_RANGE, le=PRIORITY_RANGE, why=WHY_PRIORITY,
                            description="power-cap priority of every job of the trace (higher: slowed or paused "
                                        "last, sim.policies.capping)")


class LayoutSpec(Strict):
    """A given parallel layout of a transformer training job (``sim.training.layout``)."""

    tp: int = bounded(1, gt=0, le=1_024, why="no scale-up domain is wider", description="tensor-parallel ranks")
    pp: int = bounded(1, gt=0, le=1_024, why="deeper than any model's layers", description="pipeline stages")
    dp: int | None = bounded(None, gt=0, le=MAX_CHIPS, unit="ranks", why=WHY_CHIPS,
                             description="data-parallel ranks [default: gang / (tp·pp·cp)]")
    cp: int = bounded(1, gt=0, le=1_024, why="longer than any context split", description="context-parallel ranks")
    ep: int = bounded(1, gt=0, le=4_096, why="more than any model's experts",
                      description="expert-parallel ranks (mixture of experts; a divisor of dp)")
    zero: int = bounded(1, ge=0, le=3, why="ZeRO has stages 0 to 3",
                        description="ZeRO stage: 0 replicated, 1 optimizer, 2 + gradients, 3 + weights sharded (FSDP)")
    micro_batch: int = bounded(1, gt=0, le=65_536, unit="sequences", why="no chip holds more",
                               description="sequences per micro-batch")
    recompute: Literal["none", "selective", "full"] = Field("selective", description="activation recomputation")
    vp: int = bounded(1, gt=0, le=128, why="no schedule interleaves more",
                      description="virtual pipeline stages per device (interleaved 1F1B schedule; 1 = plain 1F1B)")


class JobGenerator(Strict):
    """Synthetic training jobs: Poisson arrivals, and mixes of gang size, model and software stack."""

    jobs: int = bounded(gt=0, le=MAX_JOBS, unit="jobs", why=WHY_JOBS, description="number of jobs to generate")
    arrival_rate_per_hour: float = bounded(
        ge=1e-4, le=1e7, unit="jobs/hour", why="slower would not reach a second job in a year; faster than any "
        "scheduler admits jobs", description="Poisson arrival rate [jobs/hour]")
    chips: dict[int, float] = Field(description="gang size [chips] -> probability")
    models: dict[str, float] = Field(description="catalog model id -> probability")
    chips_by_model: dict[str, dict[int, float]] = Field(
        {}, description="model id -> its own gang-size mix, replacing `chips` for that model"
    )
    stacks: dict[str, float] = Field({"portable": 1.0}, description="software stack -> probability")
    frameworks: dict[str, float] | None = Field(
        None, description="framework (pytorch, jax, tensorflow) -> probability, instead of stacks: a framework job "
                          "runs on every stack its framework supports (sim/catalog/data/frameworks.yaml)")
    duration_s: Distribution | None = Field(None, description="run time on reference_accelerator [s]")
    reference_accelerator: str | None = Field(
        None, description="where duration_s was measured; other chips scale by throughput ratio"
    )
    samples: Distribution | None = Field(None, description="work per job [samples, e.g. tokens]")
    growth: Growth | None = Field(None, description="arrival-rate growth over the run (a non-homogeneous Poisson "
                                                    "process); none = a steady rate")
    layout: Literal["auto"] | LayoutSpec = Field(
        "auto", description="parallel layout of transformer jobs: given, or auto (the fastest that fits memory on "
                            "each pool)")
    global_batch: dict[int, float] | None = Field(
        None, description="global batch [sequences per step] -> probability [default: one sequence per chip]")
    seq_len: dict[int, float] | None = Field(
        None, description="sequence length [tokens] -> probability [default: the model's microbatch_samples]")
    priority: int | dict[int, float] = Field(
        0, description="power-cap priority of the jobs (higher: slowed or paused last, sim.policies.capping): one "
                       "integer, or priority -> probability (drawn from its own random stream)")

    @field_validator("chips")
    @classmethod
    def _gang_sizes(cls, mix: dict[int, float]) -> dict[int, float]:
        _check_gang_sizes(mix)
        return mix

    @field_validator("priority")
    @classmethod
    def _priorities(cls, value: int | dict[int, float]) -> int | dict[int, float]:
        for p in value if isinstance(value, dict) else (value,):
            if abs(p) > PRIORITY_RANGE:
                raise ValueError(f"found priority {p}; accepted: -{PRIORITY_RANGE} to {PRIORITY_RANGE} "
                                 f"({WHY_PRIORITY})")
        return value

    @field_validator("chips_by_model")
    @classmethod
    def _gang_sizes_by_model(cls, mixes: dict[str, dict[int, float]]) -> dict[str, dict[int, float]]:
        for mix in mixes.values():
            _check_gang_sizes(mix)
        return mixes

    @model_validator(mode="after")
    def _one_work_form(self):
        require_exactly_one(self, "duration_s", "samples")
        if self.frameworks is not None and "stacks" in self.model_fields_set:
            raise ValueError("give stacks or frameworks, not both")
        return self


def _check_gang_sizes(mix: dict[int, float]) -> None:
    too_large = [size for size in mix if size > MAX_CHIPS]
    if too_large:
        raise ValueError(f"gang size {too_large[0]:.3g} is too large; accepted: 1 to {MAX_CHIPS:,} chips "
                         f"({WHY_CHIPS})")


class TrainingWorkload(Strict):
    """Training jobs from a trace or a generator."""

    trace: TraceSource | None = Field(None, description="replay a real job trace")
    generator: JobGenerator | None = Field(None, description="synthetic jobs")
    deferrable: bool = Field(False, description="the jobs may wait for cheap or clean hours (policy.shifting; "
                                                "needs that section)")

    @model_validator(mode="after")
    def _one_source(self):
        require_exactly_one(self, "trace", "generator")
        return self


class Workloads(Strict):
    training: TrainingWorkload | None = Field(None, description="training jobs (a trace or a generator)")
    inference: tuple[InferenceService, ...] = Field((), description="inference services (LLM, request level)")


class PortRamp(Strict):
    """How a port's efficiency grows after its start: linear in monthly steps (``sim.catalog.efficiency``)."""

    initial_frac: float = bounded(gt=0, le=1, why="a share of the target stack's efficiency",
                                  description="efficiency fraction from the port's start [-]")
    final_frac: float = bounded(gt=0, le=1, why="a share of the target stack's efficiency",
                                description="efficiency fraction once the ramp is over [-]")
    months: int = bounded(gt=0, le=240, unit="months", why="longer than any run",
                          description="months from the start to final_frac; the fraction steps up each month")


class Port(Strict):
    """A port of a stack onto a chip: jobs written for ``from_stack`` run on ``accelerator`` at a fraction of
    the chip's best native efficiency (or of ``to_stack``'s there). Without ``start`` it is in place from before
    the run; with one it is a project: nothing runs through it before ``start``, its one-off cost (``cost_usd``
    plus ``engineer_weeks`` × ``site.engineer_week_usd``) goes into the money ledger on that date, and its
    efficiency follows ``ramp`` from then."""

    from_stack: str = Field(description="stack the job is written for")
    accelerator: str = Field(description="accelerator id it is ported to, or '*' for every chip")
    to_stack: str | None = Field(None, description="the chip's stack the code is ported onto (e.g. xla); "
                                                   "none = the chip's best stack")
    efficiency_frac: float | None = bounded(None, gt=0, le=1, why="a share of the target stack's efficiency",
                                            description="fraction of the target stack's efficiency (give it or "
                                                        "ramp)")
    ramp: PortRamp | None = Field(None, description="efficiency fraction ramping over months from start "
                                                    "(instead of efficiency_frac)")
    start: dt.date | None = Field(None, description="date the port becomes usable (00:00), within the run; none = "
                                                    "before the run")
    cost_usd: float = bounded(0.0, ge=0, le=1e12, unit="USD", why="above any porting budget",
                              description="one-off cost of the port, into the ledger on its start [USD]")
    engineer_weeks: float = bounded(0.0, ge=0, le=1e6, unit="engineer-weeks", why="above any porting team",
                                    description="engineering effort of the port, costed at site.engineer_week_usd")

    @model_validator(mode="after")
    def _one_efficiency(self):
        require_exactly_one(self, "efficiency_frac", "ramp")
        return self


class SchedulerPolicy(Strict):
    kind: str = Field("fifo", description="scheduler registry key: fifo, fifo-backfill, hetero-aware")
    objective: Literal["earliest-finish", "cheapest"] = Field(
        "earliest-finish", description="what hetero-aware minimises"
    )


class PreemptionPolicy(Strict):
    """How a training job preempted by inference on a shared pool loses work."""

    checkpoint_interval: DurationS = Field(
        3600.0, gt=0, description="a running job checkpoints every this much run time [s or '1h']; a preempted "
                                  "job restarts from its last checkpoint")


class BurstPolicy(Strict):
    """Rent whole scale-up domains of an on-demand rented pool while training jobs wait (``policy.burst``)."""

    pool: str = Field(description="name of a rented, on-demand pool that is online only while rented")
    quota_chips: int = bounded(gt=0, le=MAX_CHIPS, unit="chips", why=WHY_CHIPS,
                               description="most chips rented at once (requested ones included), at most the "
                                           "pool's count")
    queue_wait_threshold: DurationS = Field(
        ge=0, description="rent when the oldest waiting training job that may use the pool has waited this long "
                          "since its arrival [s or '2h']")
    provisioning_delay: DurationS = Field(
        ge=0, description="from a request to the rented chips being online (and charged) [s or '15min']")
    min_rental: DurationS = Field(
        ge=0, description="a rented domain is released once it has been online this long and is idle [s or '1h']")


class PowerCapPolicy(Strict):
    """What training does at the site power cap (``sim.policies.capping``)."""

    kind: str = Field("admission", description="capping registry key: admission (jobs start only within the cap), "
                                               "throttle (slow the last-started jobs' clocks), shed (pause them)")
    min_clock_frac: float = bounded(0.5, gt=0.1, le=1.0, why="no GPU power limit goes that low",
                                    description="lowest clock fraction throttle sets [-]")


class ShiftingPolicy(Strict):
    """Deferrable training waits for cheap or clean hours (``sim.training.shifting``): a deferrable job arriving while
    the hourly signal is above the threshold waits until it is at or below it, or until it has waited max_delay_h."""

    signal: Literal["price", "carbon"] = Field(description="hourly signal: site.electricity_usd_per_kwh (price) or "
                                                           "site.carbon_g_per_kwh (carbon)")
    threshold: float | str = Field(description="start at or below this value (USD/kWh or gCO2e/kWh), or a quantile "
                                               "of the year's hourly values: p0 to p100 (e.g. p30)")
    max_delay_h: float = bounded(gt=0, le=8_760, unit="h", why="a year of hours",
                                 description="a deferred job starts anyway once it has waited this long [h]")

    @field_validator("threshold", mode="before")
    @classmethod
    def _threshold(cls, value):
        accepted = "accepted: a number from 0 to 1e6 (USD/kWh or gCO2e/kWh) or a quantile p0 to p100 (e.g. p30)"
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"neither a number nor a quantile; {accepted}")
        if isinstance(value, str):
            text = value.strip()
            if not (text[:1] == "p" and text[1:].isdigit() and 0 <= int(text[1:]) <= 100):
                raise ValueError(f"not a quantile; {accepted}")
            return text
        if not 0 <= value <= 1e6:
            raise ValueError(f"out of range; {accepted}")
        return float(value)


class Policy(Strict):
    scheduler: SchedulerPolicy = Field(SchedulerPolicy(), description="training-job scheduler")
    power_cap: PowerCapPolicy = Field(PowerCapPolicy(), description="what training does at the site power cap")
    preemption: PreemptionPolicy = Field(PreemptionPolicy(), description="training preemption on shared pools")
    burst: tuple[BurstPolicy, ...] = Field(
        (), description="cloud burst for training: one entry per rented pool used for bursting [default: none]")
    shifting: ShiftingPolicy | None = Field(
        None, description="deferrable training waits for cheap or clean hours [default: none]")


class Outputs(Strict):
    timeseries_interval: DurationS = Field(
        3600.0, gt=0, description="time-series bin width [s or '1h']; at most 1e6 bins")
    plots: bool = Field(True, description="write PNG plots with the results")
    warmup: DurationS = Field(0.0, ge=0, description="jobs arriving before this time are left out of the JCT and "
                                                     "queue-wait statistics (the empty-cluster start) [s or '1d']")
    requests_csv: bool = Field(False, description="write one row per inference request (large for big runs)")
    requests_csv_fraction: float = Field(
        1.0, gt=0, le=1, description="share of the request rows written, a systematic sample in arrival order "
        "per service (e.g. 0.01 for big runs) [-]")


class Scenario(Strict):
    """A complete what-if: site, fleet, workloads, policy and outputs."""

    schema_version: Literal[1] = Field(description="scenario schema version")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="run name; outputs go to outputs/<name>")
    description: str = Field("", description="free text shown in reports")
    seed: int = bounded(0, ge=0, le=2**63 - 1, why="a 64-bit seed", description="seed of the run's random streams")
    start: dt.date = Field(description="calendar date of simulated time 0")
    duration: DurationS = Field(gt=0, description="simulated horizon [s, or '90d', '2y'; at most 20y]")
    site: Site = Field(Site(), description="power, cooling, energy price and carbon of the site")
    fleet: tuple[Pool, ...] = Field(min_length=1, description="pools of identical chips")
    accelerators: tuple[AcceleratorSpec, ...] = Field((), description="scenario's own accelerators")
    models: tuple[ModelSpec, ...] = Field((), description="scenario's own models")
    porting: tuple[Port, ...] = Field((), description="granted ports of stacks onto chips")
    workloads: Workloads = Field(Workloads(), description="what runs on the fleet")
    procurement: Procurement = Field(Procurement(), description="chip orders for owned pools and price schedules")
    supply: Supply = Field(Supply(), description="supply shocks on orders")
    policy: Policy = Field(Policy(), description="decision policies, each chosen by `kind`")
    outputs: Outputs = Field(Outputs(), description="what a run records")
    failures: Failures | None = Field(None, description="failures of training chips, repair, spares and "
                                                        "checkpoints; none = no failures")

    @field_validator("failures", mode="before")
    @classmethod
    def _failures_none(cls, value):
        return no_failures(value)

    # ``with_overrides(overrides)`` is attached by ``sim.scenario`` (it lives in the loader, which imports this)
