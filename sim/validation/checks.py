"""Checks that need more than the schema: catalog names, registry keys, and physical feasibility.

Each check returns problems rather than raising, so a scenario's mistakes are reported together.
Feasibility checks (rack power against rack cooling, fleet idle power against the site cap) use the
same resolved fleet the engine will use, so they cannot disagree with the simulation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

from sim.catalog import STACKS, AcceleratorSpec, builtin_catalog
from sim.catalog.efficiency import SERVING_STACKS, framework_table, ports_at, stack_efficiency
from sim.scenario.errors import Problem, format_path, suggest
from sim.scenario.schema import Scenario


def _check_own_ids(scenario, add) -> None:
    """A scenario's own accelerator may not reuse an id with different numbers (built-in or its own)."""
    builtin = builtin_catalog().accelerators
    seen: dict[str, AcceleratorSpec] = {}
    specs = [(("accelerators", i), a) for i, a in enumerate(scenario.accelerators)]
    specs += [(("fleet", i, "accelerator"), p.accelerator) for i, p in enumerate(scenario.fleet)
              if isinstance(p.accelerator, AcceleratorSpec)]
    for path, spec in specs:
        other = seen.get(spec.id) or builtin.get(spec.id)
        if other is not None and other != spec:
            add(path + ("id",), f"accelerator id {spec.id!r} is already defined with other numbers; "
                                "give your variant its own id")
        seen[spec.id] = spec


def _check_files(scenario, origin, add) -> None:
    """Files a scenario refers to exist and parse (training trace, empirical distributions), before simulating."""
    from sim.workload import read_trace
    from sim.workload.distributions import empirical_values
    from sim.workload.errors import TraceError

    training = scenario.workloads.training
    base = ("workloads", "training")
    if training is not None and training.trace is not None:
        try:
            read_trace(training.trace, origin.directory)
        except (FileNotFoundError, TraceError) as exc:
            add(base + ("trace", "path"), str(exc))
    gen = training.generator if training is not None else None
    dists = [(base + ("generator", field), getattr(gen, field, None)) for field in ("duration_s", "samples")]
    for s, service in enumerate(scenario.workloads.inference):
        requests = service.traffic.generator
        dists += [(("workloads", "inference", s, "traffic", "generator", field), getattr(requests, field, None))
                  for field in ("prompt_tokens", "output_tokens", "items_per_request")]
    for path, dist in dists:
        if dist is None or dist.empirical is None:
            continue
        try:
            empirical_values(dist.empirical, str(origin.directory))
        except TraceError as exc:
            add(path + ("empirical",), str(exc))


def _check_facility(scenario, origin, add) -> None:
    """The site's location is known and its weather, price and carbon files parse, before simulating."""
    from sim.facility import LOCATIONS, read_weather_csv
    from sim.facility.tariff import hourly_values
    from sim.workload.errors import TraceError

    site = scenario.site
    if site.climate is not None and site.climate not in LOCATIONS:
        add(("site", "climate"), f"unknown location {site.climate!r}; accepted: {', '.join(sorted(LOCATIONS))} "
                                 "(or weather: {csv: path} with your own hourly weather)")
    if site.weather is not None:
        try:
            read_weather_csv(site.weather.csv, origin.directory)
        except (FileNotFoundError, TraceError) as exc:
            add(("site", "weather", "csv"), str(exc))
    for field in ("electricity_usd_per_kwh", "carbon_g_per_kwh"):
        value = getattr(site, field)
        if hasattr(value, "csv"):
            try:
                hourly_values(value, field, origin.directory)
            except (FileNotFoundError, TraceError) as exc:
                add(("site", field, "csv"), str(exc))


MAX_TIMESERIES_BINS = 1_000_000


def scenario_catalog(scenario: Scenario):
    """The built-in catalog plus the scenario's own accelerators (top level and inline) and models."""
    inline = [p.accelerator for p in scenario.fleet if isinstance(p.accelerator, AcceleratorSpec)]
    return builtin_catalog().with_additions(tuple(scenario.accelerators) + tuple(inline), scenario.models)


def check_raw_names(data: dict, origin) -> list[Problem]:
    """Catalog and registry names checked on the raw data, for files the schema already rejected."""
    from sim.policies.registry import registry

    problems = []
    own = {a.get("id") for a in data.get("accelerators") or [] if isinstance(a, dict)}
    known = set(builtin_catalog().accelerators) | own
    fleet = data.get("fleet")
    for index, pool in enumerate(fleet if isinstance(fleet, list) else []):
        name = pool.get("accelerator") if isinstance(pool, dict) else None
        if isinstance(name, str) and name not in known:
            path = ("fleet", index, "accelerator")
            problems.append(Problem(origin.locate(path), format_path(path),
                                    f"unknown accelerator {name!r}" + suggest(name, known)))
    policy = data.get("policy")
    scheduler = policy.get("scheduler") if isinstance(policy, dict) else None
    kind = scheduler.get("kind") if isinstance(scheduler, dict) else None
    if isinstance(kind, str) and kind not in registry("scheduler"):
        path = ("policy", "scheduler", "kind")
        problems.append(Problem(origin.locate(path), format_path(path),
                                f"unknown scheduler {kind!r}" + suggest(kind, registry("scheduler"))))
    capping = policy.get("power_cap") if isinstance(policy, dict) else None
    kind = capping.get("kind") if isinstance(capping, dict) else None
    if isinstance(kind, str) and kind not in registry("capping"):
        path = ("policy", "power_cap", "kind")
        problems.append(Problem(origin.locate(path), format_path(path),
                                f"unknown power-cap policy {kind!r}" + suggest(kind, registry("capping"))))
    burst = policy.get("burst") if isinstance(policy, dict) else None
    pools = {p["name"]: p for p in (fleet if isinstance(fleet, list) else [])
             if isinstance(p, dict) and isinstance(p.get("name"), str)}  # other names are the schema's mistakes
    for k, entry in enumerate(burst if isinstance(burst, list) else []):
        name = entry.get("pool") if isinstance(entry, dict) else None
        if isinstance(name, str) and name not in pools:
            path = ("policy", "burst", k, "pool")
            names = [n for n in pools if isinstance(n, str)]
            problems.append(Problem(origin.locate(path), format_path(path),
                                    f"unknown pool {name!r}" + suggest(name, names)))
    return problems


def check_scenario(scenario: Scenario, origin) -> list[Problem]:
    catalog = scenario_catalog(scenario)
    problems: list[Problem] = []

    def add(path: tuple, message: str) -> None:
        problems.append(Problem(origin.locate(path), format_path(path), message))

    _check_own_ids(scenario, add)
    _check_fleet(scenario, catalog, add)
    _check_procurement(scenario, catalog, add)
    _check_training(scenario, catalog, add)
    _check_policy(scenario, add)
    _check_burst(scenario, catalog, add)
    _check_failures(scenario, catalog, add)
    _check_porting(scenario, catalog, add)
    _check_files(scenario, origin, add)
    _check_facility(scenario, origin, add)
    _check_inference(scenario, catalog, origin, add)
    bins = scenario.duration / scenario.outputs.timeseries_interval
    if bins > MAX_TIMESERIES_BINS:
        add(("outputs", "timeseries_interval"),
            f"found {scenario.outputs.timeseries_interval:g} s: that is {bins:.3g} bins over the horizon; "
            f"accepted: at least {scenario.duration / MAX_TIMESERIES_BINS:.3g} s")
    _check_warmup(scenario, add)
    _check_feasibility(scenario, catalog, add, origin)
    return problems


def _check_warmup(scenario, add) -> None:
    """A warm-up must end before the horizon, or no job would count in the JCT statistics."""
    warmup, horizon = scenario.outputs.warmup, float(scenario.duration)
    if warmup >= horizon:
        add(("outputs", "warmup"), f"found {warmup:g} s: no job could arrive after it within the run's duration "
                                   f"of {horizon:g} s; accepted: a warm-up shorter than duration")


def _check_fleet(scenario, catalog, add) -> None:
    names = set()
    for index, pool in enumerate(scenario.fleet):
        if pool.name in names:
            add(("fleet", index, "name"), f"duplicate pool name {pool.name!r}; pool names must be unique")
        names.add(pool.name)
        if isinstance(pool.accelerator, str) and pool.accelerator not in catalog.accelerators:
            add(("fleet", index, "accelerator"),
                f"unknown accelerator {pool.accelerator!r}" + suggest(pool.accelerator, catalog.accelerators))
        if pool.online_from is not None and pool.online_from < scenario.start:
            add(("fleet", index, "online_from"),
                f"found {pool.online_from}: a pool cannot come online before the scenario start {scenario.start}")
        _check_pool_window(scenario, index, pool, add)
        _check_delivery_dates(scenario, index, pool, add)
        _check_retirement_dates(scenario, index, pool, add)


def _check_dated_events(scenario, pool, paths, dates, add, words: dict[str, str]) -> None:
    """Dated pool events (deliveries, retirements) come in date order, one per date, after the pool comes online,
    before it leaves and before the end of the run; ``words`` give each message its wording."""
    begins = pool.online_from or scenario.start
    end_date = scenario.start + dt.timedelta(seconds=float(scenario.duration))
    previous = None
    for path, date in zip(paths, dates):
        if date <= begins:
            add(path, f"found {date}: {words['early']}")
        elif previous is not None and date <= previous:
            add(path, f"found {date}: {words['order']}; accepted: a date after {previous}")
        elif (date - scenario.start).days * 86400.0 >= float(scenario.duration):
            add(path, f"found {date}: {words['late']} ({end_date:%Y-%m-%d %H:%M}); accepted: a date before it"
                      f"{words['late_tail']}")
        elif pool.online_until is not None and date >= pool.online_until:
            add(path, f"found {date}: {words['leaves']} {pool.online_until}; accepted: a date before it")
        previous = date


def _check_retirement_dates(scenario, index: int, pool, add) -> None:
    """Retirements (``fleet[].retirements``) come in date order, one per date, after the pool comes online, before
    it leaves and before the end of the run (their chips are checked against the pool in
    ``_check_retirement_chips``)."""
    begins = pool.online_from or scenario.start
    paths = [("fleet", index, "retirements", k, "date") for k in range(len(pool.retirements))]
    _check_dated_events(scenario, pool, paths, [r.date for r in pool.retirements], add, {
                            "early": f"a retirement takes chips from a pool already online; accepted: a date after "
                                     f"{begins} (the pool's online_from, else the scenario start)",
                            "order": "retirements must come in date order, one per date",
                            "late": "the chips would leave at or after the end of the run", "late_tail": "",
                            "leaves": "the whole pool leaves on"})


def _check_retirement_chips(scenario, pool, add) -> None:
    """Each retirement takes whole scale-up domains (and servers), at most the chips online on its date
    (deliveries up to then, earlier retirements taken off), and none of the chips the inference replica groups
    active from its drain on hold (``sim.fleet.windows``; counted in chips: retiring domains are the highest
    indices not holding a replica)."""
    from sim.fleet.windows import group_window_s

    unit = max(pool.domain_chips, pool.chips_per_server)
    horizon = float(scenario.duration)
    groups = [((s, g), group) for s, service in enumerate(scenario.workloads.inference)
              for g, group in enumerate(service.replicas) if group.pool == pool.name]
    retired = 0
    for k, (at, chips) in enumerate(pool.retirements):
        path = ("fleet", pool.index, "retirements", k, "chips")
        drain_from = max(0.0, at - pool.drain_s)  # the domains are chosen then: deliveries up to then count
        online = pool.initial_chips + sum(n for t, n in pool.deliveries if t <= drain_from) - retired
        when = dt.datetime.combine(scenario.start, dt.time()) + dt.timedelta(seconds=drain_from)
        if chips % unit:
            add(path, f"found {chips}: a retirement takes whole scale-up domains of {pool.domain_chips} chips in "
                      f"servers of {pool.chips_per_server} from the pool; accepted: a multiple of {unit}, e.g. "
                      f"{chips - chips % unit or unit}")
        elif chips > online:
            add(path, f"found {chips}: pool {pool.name!r} has {online} chips online on {when:%Y-%m-%d %H:%M} (its "
                      f"retiring domains are chosen then, when the drain begins); accepted: at most {online}")
        elif chips == online:
            add(path, f"found {chips}: pool {pool.name!r} would keep no chip on {when:%Y-%m-%d %H:%M}; accepted: "
                      f"at most {online - unit}, or online_until (the whole pool leaves)")
        else:
            held = 0
            for (s, g), group in groups:
                window = group_window_s(group, pool, scenario.start, horizon)
                if window[0] < window[1] and window[1] > drain_from:
                    held += group.count * group.chips_per_replica
                    if held > online - chips:
                        add(path, f"found {chips}: pool {pool.name!r} keeps {online - chips} chips, but replica "
                                  f"group workloads.inference[{s}].replicas[{g}] (with the groups before it) holds "
                                  f"{held} chips there from the retirement's drain on; accepted: at most "
                                  f"{max(0, online - held + group.count * group.chips_per_replica) // unit * unit} "
                                  "chips, or the group's active_until before the drain")
                        break
        retired += chips


def _check_pool_window(scenario, index: int, pool, add) -> None:
    """A pool's online window [online_from, online_until) must be non-empty and overlap the run."""
    start_s = (pool.online_from - scenario.start).days * 86400.0 if pool.online_from else 0.0
    horizon = float(scenario.duration)
    end_date = scenario.start + dt.timedelta(seconds=horizon)
    if start_s >= horizon:
        add(("fleet", index, "online_from"),
            f"found {pool.online_from}: the pool would come online at or after the end of the run "
            f"({end_date:%Y-%m-%d %H:%M}); accepted: a date before it")
    until = pool.online_until
    if until is None:
        return
    begins = pool.online_from or scenario.start
    if pool.online_from is not None and until <= pool.online_from:
        what = "a contract that ends" if pool.owner == "rented" else "a pool that leaves"
        add(("fleet", index, "online_until"),
            f"found {until}: {what} on or before it comes online ({pool.online_from}); accepted: a date after "
            "online_from")
    elif until <= begins:
        add(("fleet", index, "online_until"),
            f"found {until}: the pool would leave on or before the scenario start {scenario.start}, so it is "
            "never online; accepted: a date after the start (or remove the pool)")


def _check_delivery_dates(scenario, index: int, pool, add) -> None:
    """Deliveries (``fleet[].deliveries``) come in date order, after the pool comes online, before it leaves and
    before the end of the run, and add up to at most ``count`` (the rest is online from the start)."""
    begins = pool.online_from or scenario.start
    paths = [("fleet", index, "deliveries", k, "date") for k in range(len(pool.deliveries))]
    _check_dated_events(scenario, pool, paths, [d.date for d in pool.deliveries], add, {
                            "early": f"a delivery joins a pool already online; accepted: a date after {begins} (the "
                                     "pool's online_from, else the scenario start; chips there from the start count "
                                     "in count without a delivery)",
                            "order": "deliveries must come in date order, one per date",
                            "late": "the chips would arrive at or after the end of the run",
                            "late_tail": " (or leave them out of count)", "leaves": "the pool leaves on"})
    delivered = sum(d.chips for d in pool.deliveries)
    if delivered > pool.count:
        add(("fleet", index, "deliveries"),
            f"found {delivered} chips delivered in all, above the pool's count {pool.count}; count is the total "
            f"after every delivery (count - delivered chips are online from the start); accepted: count >= "
            f"{delivered}, or smaller deliveries")


def _check_procurement(scenario, catalog, add) -> None:
    """Orders name an owned pool of the fleet, come in whole units of it (scale-up domains and servers) and are
    placed inside the run; price points name known accelerators in date order; shocks name a known vendor or
    accelerator. (Lead times, rates, factors and windows are checked by the schema.)"""
    from sim.fleet.build import pool_layout

    pools = {p.name: i for i, p in enumerate(scenario.fleet)}
    end_date = scenario.start + dt.timedelta(seconds=float(scenario.duration))
    for k, order in enumerate(scenario.procurement.orders):
        path = ("procurement", "orders", k)
        if order.pool not in pools:
            add(path + ("pool",), f"unknown pool {order.pool!r}" + suggest(order.pool, pools))
        else:
            layout = pool_layout(scenario, pools[order.pool], catalog)
            if scenario.fleet[pools[order.pool]].owner != "owned":
                add(path + ("pool",), f"pool {order.pool!r} is rented: orders buy chips for an owned pool; accepted: "
                                      "an owned pool (owner: owned)")
            elif layout is not None and order.chips % layout.unit_chips:
                add(path + ("chips",),
                    f"found {order.chips}: an order joins pool {order.pool!r} as whole scale-up domains and servers "
                    f"of {layout.unit_chips} chips; accepted: a multiple of {layout.unit_chips}, e.g. "
                    f"{order.chips - order.chips % layout.unit_chips or layout.unit_chips}")
        if not scenario.start <= order.order_date < end_date:
            add(path + ("order_date",),
                f"found {order.order_date}: orders are placed inside the run; accepted: a date from {scenario.start} "
                f"to before {end_date:%Y-%m-%d}")
    last: dict[str, dt.date] = {}
    for k, point in enumerate(scenario.procurement.price_schedule):
        path = ("procurement", "price_schedule", k)
        if point.accelerator not in catalog.accelerators:
            add(path + ("accelerator",),
                f"unknown accelerator {point.accelerator!r}" + suggest(point.accelerator, catalog.accelerators))
        elif point.accelerator in last and point.date <= last[point.accelerator]:
            add(path + ("date",), f"found {point.date}: the points of {point.accelerator} must come in date order, "
                                  f"one per date; accepted: a date after {last[point.accelerator]}")
        last[point.accelerator] = max(point.date, last.get(point.accelerator, point.date))
    vendors = sorted({a.vendor for a in catalog.accelerators.values()})
    for k, shock in enumerate(scenario.supply.shocks):
        path = ("supply", "shocks", k)
        if shock.vendor is not None and shock.vendor not in vendors:
            add(path + ("vendor",), f"unknown vendor {shock.vendor!r}" + suggest(shock.vendor, vendors))
        if shock.accelerator is not None and shock.accelerator not in catalog.accelerators:
            add(path + ("accelerator",),
                f"unknown accelerator {shock.accelerator!r}" + suggest(shock.accelerator, catalog.accelerators))


def _check_delivery_sizes(pool, entry, add) -> None:
    """Each delivery is whole scale-up domains and whole servers (it joins the pool as free domains)."""
    unit = max(pool.domain_chips, pool.chips_per_server)  # one divides the other (resolve_pool checks it)
    for k, delivery in enumerate(entry.deliveries):
        if delivery.chips % unit:
            add(("fleet", pool.index, "deliveries", k, "chips"),
                f"found {delivery.chips}: a delivery joins the pool as whole scale-up domains of "
                f"{pool.domain_chips} chips in servers of {pool.chips_per_server}; accepted: a multiple of {unit}, "
                f"e.g. {delivery.chips - delivery.chips % unit or unit}")


def _check_training(scenario, catalog, add) -> None:
    training = scenario.workloads.training
    if training is None:
        return
    base = ("workloads", "training")
    gen = training.generator
    if gen is not None:
        g = base + ("generator",)
        _check_mix(g + ("chips",), gen.chips, add)
        _check_mix(g + ("models",), gen.models, add)
        _check_mix(g + ("stacks",), gen.stacks, add)
        for framework in gen.frameworks or {}:
            if framework not in framework_table():
                add(g + ("frameworks", framework), f"unknown framework {framework!r}"
                    + suggest(framework, framework_table()))
        if gen.frameworks is not None:
            _check_mix(g + ("frameworks",), gen.frameworks, add)
        if isinstance(gen.priority, dict):
            _check_mix(g + ("priority",), gen.priority, add)
        for model, mix in gen.chips_by_model.items():
            _check_mix(g + ("chips_by_model", model), mix, add)
            if model not in gen.models:
                add(g + ("chips_by_model", model), f"model {model!r} is not in the models mix; known: "
                    + ", ".join(gen.models))
        for path, mix in [(g + ("chips",), gen.chips)] + [
                (g + ("chips_by_model", m), mix) for m, mix in gen.chips_by_model.items()]:
            for size in mix:
                if size <= 0:
                    add(path + (str(size),), f"found {size}: a gang size must be a positive number of chips")
        for model in gen.models:
            if model not in catalog.models:
                add(g + ("models", model), f"unknown model {model!r}" + suggest(model, catalog.models))
        for stack in gen.stacks:
            if stack not in STACKS:
                add(g + ("stacks", stack), f"unknown stack {stack!r}" + suggest(stack, STACKS))
        _check_layout(scenario, catalog, gen, g, add)
        ref = gen.reference_accelerator
        if ref is not None and ref not in catalog.accelerators:
            add(g + ("reference_accelerator",), f"unknown accelerator {ref!r}" + suggest(ref, catalog.accelerators))
    if training.trace is not None and training.trace.accelerator_map:
        for trace_name, accel in training.trace.accelerator_map.items():
            if accel not in catalog.accelerators:
                add(base + ("trace", "accelerator_map", trace_name),
                    f"unknown accelerator {accel!r}" + suggest(accel, catalog.accelerators))


def _largest_domain(scenario, catalog) -> int | None:
    domains = []
    for pool in scenario.fleet:
        accel = pool.accelerator if isinstance(pool.accelerator, AcceleratorSpec) \
            else catalog.accelerators.get(pool.accelerator)
        if accel is not None:
            domains.append(pool.scale_up_domain_chips or accel.scale_up_domain_chips)
    return max(domains) if domains else None


def _check_layout(scenario, catalog, gen, g: tuple, add) -> None:
    """A given parallel layout fits every model and gang size of the generator; global batches divide."""
    layout = gen.layout
    gangs = {size for mix in [gen.chips, *gen.chips_by_model.values()] for size in mix if size > 0}
    if layout == "auto":
        return
    at = g + ("layout",)
    for name in gen.models:
        spec = catalog.models.get(name)
        if spec is None:
            continue
        if not spec.has_layout:
            add(at, f"found a layout for model {name!r}, which has no layers and hidden_size; accepted: "
                    "transformer models with both (or layout: auto)")
            continue
        if layout.pp > spec.layers:
            add(at + ("pp",), f"found {layout.pp} pipeline stages for model {name!r}; accepted: at most its "
                              f"{spec.layers} layers")
        elif spec.layers % (layout.pp * layout.vp):
            field, found = ("vp", f"pp·vp = {layout.pp}·{layout.vp}") if layout.vp > 1 else \
                ("pp", f"{layout.pp} pipeline stages")
            add(at + (field,), f"found {found} for model {name!r}; accepted: a divisor of its {spec.layers} layers "
                               "(each stage holds whole layers)")
        if layout.ep > 1 and (not spec.experts or spec.experts % layout.ep):
            add(at + ("ep",), f"found ep {layout.ep} for model {name!r} with {spec.experts} experts; accepted: a "
                              "divisor of the expert count (1 for a dense model)")
    domain = _largest_domain(scenario, catalog)
    if domain is not None and layout.tp > domain:
        add(at + ("tp",), f"found {layout.tp}; accepted: at most {domain} chips, the widest scale-up domain of the "
                          "fleet (tensor parallelism stays inside one domain)")
    split = layout.tp * layout.pp * layout.cp
    for gang in sorted(gangs):
        if layout.dp is not None and split * layout.dp != gang:
            add(at + ("dp",), f"found tp·pp·cp·dp = {layout.tp}·{layout.pp}·{layout.cp}·{layout.dp} = "
                              f"{split * layout.dp}; accepted: the gang size {gang} of the chips mix")
            continue
        if layout.dp is None and gang % split:
            add(at, f"found tp·pp·cp = {split}, which does not divide the gang size {gang}; accepted: a divisor")
            continue
        dp = layout.dp or gang // split
        if dp % layout.ep:
            add(at + ("ep",), f"found ep {layout.ep} with dp {dp} (gang {gang}); accepted: a divisor of dp")
        for batch in gen.global_batch or {}:
            if batch % (dp * layout.micro_batch):
                add(g + ("global_batch", str(batch)),
                    f"found {batch} sequences for gang {gang}: not a whole number of micro-batches of "
                    f"dp·micro_batch = {dp}·{layout.micro_batch}; accepted: a multiple of {dp * layout.micro_batch}")


def _check_mix(path: tuple, mix: dict, add) -> None:
    weights = list(mix.values())
    if not weights:
        add(path, "a mix needs at least one entry")
    elif any(w < 0 for w in weights) or abs(sum(weights) - 1.0) > 1e-6:
        add(path, f"probabilities must be non-negative and sum to 1 (they sum to {sum(weights):.6g})")


def _check_policy(scenario, add) -> None:
    from sim.policies.registry import registry

    kind = scenario.policy.scheduler.kind
    known = registry("scheduler")
    if kind not in known:
        add(("policy", "scheduler", "kind"), f"unknown scheduler {kind!r}" + suggest(kind, known))
    kind, known = scenario.policy.power_cap.kind, registry("capping")
    if kind not in known:
        add(("policy", "power_cap", "kind"), f"unknown power-cap policy {kind!r}" + suggest(kind, known))
    training = scenario.workloads.training
    if training is not None and training.deferrable and scenario.policy.shifting is None:
        add(("workloads", "training", "deferrable"), "found true without policy.shifting; accepted: give "
            "policy.shifting {signal, threshold, max_delay_h}, or deferrable: false")


def _check_failures(scenario, catalog, add) -> None:
    """``failures``: accelerator ids known; hot spares on a pool of the fleet that gets failures (not a burst
    pool, not one whose inference replicas hold chips), in whole servers, fewer than the pool's chips."""
    from sim.fleet.build import FleetError, resolve_pool, resolve_site

    failures = scenario.failures
    if failures is None:
        return
    for accel in failures.accelerator_rates_per_1000_chip_days:
        if accel not in catalog.accelerators:
            add(("failures", "accelerator_rates_per_1000_chip_days", accel),
                f"unknown accelerator {accel!r}" + suggest(accel, catalog.accelerators))
    names = {pool.name: index for index, pool in enumerate(scenario.fleet)}
    burst = {entry.pool for entry in scenario.policy.burst}
    replica_chips, replica_pools = _replica_holdings(scenario)
    for name, chips in failures.hot_spares.items():
        path = ("failures", "hot_spares", name)
        index = names.get(name)
        if index is None:
            add(path, f"unknown pool {name!r}" + suggest(name, names))
            continue
        if name in burst or name in replica_pools:
            what = 'rented for burst' if name in burst else 'with autoscaled, windowed or burst inference replicas'
            add(path, f"found {name!r}, a pool {what}: hot spares stand in for chips held all run only; accepted: "
                      "a pool of training and fixed replica groups")
            continue
        if scenario.fleet[index].accelerator_id not in catalog.accelerators:
            continue  # already reported as unknown
        try:
            pool = resolve_pool(scenario, index, catalog, resolve_site(scenario.site, catalog))
        except FleetError:
            continue  # reported by the fleet checks
        server = min(pool.chips_per_server, pool.domain_chips)
        held = replica_chips.get(name, 0)
        if chips % server or chips + held >= pool.initial_chips:
            add(path, f"found {chips} chips; accepted: whole servers of {server} chips, fewer than the pool's "
                      f"{pool.initial_chips} chips online from the start"
                      + (f" less the {held} its inference replicas hold" if held else ""))
    _check_maintenance(scenario, failures, names, burst | replica_pools, add)


def _check_maintenance(scenario, failures, names: dict, excluded: set, add) -> None:
    """``failures.maintenance``: each window on a pool of the fleet that gets failures, opening inside the run
    and while its pool is online."""
    run_start = dt.datetime.combine(scenario.start, dt.time())
    run_end = run_start + dt.timedelta(seconds=float(scenario.duration))
    for k, window in enumerate(failures.maintenance):
        path = ("failures", "maintenance", k)
        if window.pool not in names:
            add(path + ("pool",), f"unknown pool {window.pool!r}" + suggest(window.pool, names))
            continue
        if window.pool in excluded:
            add(path + ("pool",), f"found {window.pool!r}, a pool rented for burst or with autoscaled, windowed or "
                                  "burst inference replicas: windows take domains held all run only; accepted: a "
                                  "pool of training and fixed replica groups")
            continue
        start = window.start if isinstance(window.start, dt.datetime) else dt.datetime.combine(window.start,
                                                                                               dt.time())
        entry = scenario.fleet[names[window.pool]]
        online_from = dt.datetime.combine(entry.online_from or scenario.start, dt.time())
        online_until = dt.datetime.combine(entry.online_until, dt.time()) if entry.online_until else run_end
        if not run_start <= start < run_end:
            add(path + ("start",), f"found {start:%Y-%m-%d %H:%M}: outside the run; accepted: from "
                                   f"{run_start:%Y-%m-%d %H:%M} to before {run_end:%Y-%m-%d %H:%M}")
        elif not online_from <= start < min(online_until, run_end):
            add(path + ("start",), f"found {start:%Y-%m-%d %H:%M}: pool {window.pool!r} is not online then; "
                                   f"accepted: from {online_from:%Y-%m-%d %H:%M} to before "
                                   f"{min(online_until, run_end):%Y-%m-%d %H:%M}")


def _check_serving_burst(scenario, service, base: tuple, add) -> None:
    """A replica group with ``burst`` (``sim.serving.burst``): one per service, in an LLM or ranking service
    with an SLO and other groups (a ranking service not under the ``central`` router, whose queue does not follow
    windows), without autoscale or dates, alone on a rented on-demand pool without deliveries,
    retirements or a drain that ``policy.burst`` does not use and whose count is the group's chips (so training
    never holds them)."""
    names = {pool.name: index for index, pool in enumerate(scenario.fleet)}
    bursting = [g for g, group in enumerate(service.replicas) if group.burst is not None]
    for n, g in enumerate(bursting):
        group, path = service.replicas[g], base + ("replicas", g, "burst")
        if service.slo is None:
            targets = "{latency_p99_ms}" if service.family == "ranking" else "{ttft_p99_ms, tpot_p99_ms}"
            add(path, "found burst without an SLO: rentals follow SLO attainment; accepted: give the service "
                      f"slo: {targets}, or no burst")
        if service.family == "ranking" and service.router.kind == "central":
            add(base + ("router", "kind"), f"found central with a burst group (replicas[{g}]): a ranking service's "
                                           "central queue does not follow windows yet; accepted: another router")
        if n > 0:
            add(path, f"found a second burst group (replicas[{bursting[0]}] has one); accepted: one burst group per "
                      "service")
        if len(bursting) == len(service.replicas):
            add(path, "found burst on every replica group: the service is first served without its burst group; "
                      "accepted: at least one group without burst")
        if group.autoscale is not None:
            add(path, "found burst together with autoscale: a burst group is rented whole while attainment is "
                      "low; accepted: one of burst and autoscale")
        for field in ("active_from", "active_until"):
            if getattr(group, field) is not None:
                add(path, f"found burst together with {field}: a burst group's windows are its rentals; accepted: "
                          f"drop {field}")
        if service.fidelity == "fluid" and group.burst.interval < service.fluid_bin:
            add(path + ("interval",), f"found {group.burst.interval:g} s: shorter than the service's fluid_bin "
                                      f"({service.fluid_bin:g} s), so some intervals hold no bin; accepted: an "
                                      f"interval >= {service.fluid_bin:g} s")
        index = names.get(group.pool)
        if index is None:
            continue  # reported with the pool
        pool = scenario.fleet[index]
        where = f"pool {group.pool!r}"
        if pool.owner != "rented":
            add(path, f"found burst on {where}, an owned pool: only rented chips can be rented on demand; "
                      f"accepted: a pool with owner: rented and rental_term: on-demand (fleet[{index}])")
        elif pool.rental_term != "on-demand":
            add(path, f"found burst on {where}, rented under {pool.rental_term}: a reserved pool is charged whether "
                      "used or not; accepted: a pool with rental_term: on-demand")
        if pool.deliveries or pool.retirements or pool.drain:
            add(path, f"found burst on {where}, which has deliveries, retirements or a drain: its chips come and go "
                      "with the rentals; accepted: a pool without them")
        if any(b.pool == group.pool for b in scenario.policy.burst):
            add(path, f"found burst on {where}, which policy.burst rents for training; accepted: a pool of its own")
        others = [(s, k) for s, other in enumerate(scenario.workloads.inference) for k, o in enumerate(other.replicas)
                  if o.pool == group.pool and o is not group]
        if others:
            s, k = others[0]
            add(path, f"found burst on {where}, which also holds workloads.inference[{s}].replicas[{k}]; accepted: "
                      "a pool that holds the burst group alone")
        chips = group.count * group.chips_per_replica
        if pool.count != chips:
            add(path, f"found burst on {where} of {pool.count} chips: the pool is rented only as the group's "
                      f"{group.count} × {group.chips_per_replica} chips (training never holds it); accepted: "
                      f"fleet[{index}].count: {chips}")


def _replica_holdings(scenario) -> tuple[dict[str, int], set[str]]:
    """Per pool name, the chips its inference replica groups hold (as if all run: the groups that fail one by one,
    ``sim.serving.failures``), and the pools with a replica group that autoscales, bursts or has a window."""
    groups = [group for service in scenario.workloads.inference for group in service.replicas]
    chips: dict[str, int] = {}
    for group in groups:
        chips[group.pool] = chips.get(group.pool, 0) + group.count * group.chips_per_replica
    scheduled = {group.pool for group in groups
                 if any(getattr(group, key, None) is not None
                        for key in ("autoscale", "burst", "active_from", "active_until"))}
    return chips, scheduled


def _check_burst(scenario, catalog, add) -> None:
    """``policy.burst``: each entry names a distinct rented, on-demand pool that only training uses, with no
    deliveries, and a quota of at least one scale-up domain and at most the pool's count."""
    from sim.fleet.build import FleetError, resolve_pool, resolve_site

    names = {pool.name: index for index, pool in enumerate(scenario.fleet)}
    _, replica_pools = _replica_holdings(scenario)
    seen: set[str] = set()
    for k, entry in enumerate(scenario.policy.burst):
        path = ("policy", "burst", k)
        index = names.get(entry.pool)
        if index is None:
            add(path + ("pool",), f"unknown pool {entry.pool!r}" + suggest(entry.pool, names))
            continue
        pool = scenario.fleet[index]
        if entry.pool in seen:
            add(path + ("pool",), f"found {entry.pool!r} again: one burst entry per pool")
        seen.add(entry.pool)
        if pool.owner != "rented":
            add(path + ("pool",), f"found {entry.pool!r}, an owned pool: only rented chips can be rented on "
                                  f"demand; accepted: a pool with owner: rented (set fleet[{index}].owner: rented)")
        elif pool.rental_term != "on-demand":
            add(path + ("pool",), f"found {entry.pool!r}, rented under {pool.rental_term}: a reserved pool is "
                                  "charged whether used or not, so bursting onto it saves nothing; accepted: a "
                                  "pool with rental_term: on-demand")
        if pool.deliveries:
            add(path + ("pool",), f"found {entry.pool!r}, which has deliveries: a burst pool's chips come and go "
                                  "with its rentals; accepted: a pool without deliveries")
        if pool.retirements or pool.drain:
            add(path + ("pool",), f"found {entry.pool!r}, which has retirements or a drain: a burst pool's chips "
                                  "come and go with its rentals; accepted: a pool without retirements and drain")
        if entry.pool in replica_pools:
            add(path + ("pool",), f"found {entry.pool!r}, which holds inference replicas: bursting is for "
                                  "training only (serving does not follow a pool's capacity); accepted: a pool "
                                  "no replica group uses")
        if entry.quota_chips > pool.count:
            add(path + ("quota_chips",), f"found {entry.quota_chips}: more than the pool's count {pool.count} "
                                         f"(the most the cloud gives); accepted: 1 to {pool.count}, or a larger count")
            continue
        if pool.accelerator_id not in catalog.accelerators:
            continue
        try:
            resolved = resolve_pool(scenario, index, catalog, resolve_site(scenario.site, catalog))
        except FleetError:
            continue  # reported by the feasibility check
        if entry.quota_chips < resolved.domain_sizes[0]:
            add(path + ("quota_chips",), f"found {entry.quota_chips}: a burst rents whole scale-up domains of "
                                         f"{resolved.domain_sizes[0]} chips; accepted: {resolved.domain_sizes[0]} "
                                         f"to {pool.count}")


def _check_porting(scenario, catalog, add) -> None:
    end = scenario.start + dt.timedelta(seconds=float(scenario.duration))
    for index, port in enumerate(scenario.porting):
        path = ("porting", index)
        if port.from_stack not in STACKS:
            add(path + ("from_stack",), f"unknown stack {port.from_stack!r}" + suggest(port.from_stack, STACKS))
        if port.to_stack is not None and port.to_stack not in STACKS:
            add(path + ("to_stack",), f"unknown stack {port.to_stack!r}" + suggest(port.to_stack, STACKS))
        if port.accelerator != "*" and port.accelerator not in catalog.accelerators:
            add(path + ("accelerator",),
                f"unknown accelerator {port.accelerator!r}" + suggest(port.accelerator, catalog.accelerators))
        elif port.to_stack in STACKS and port.accelerator != "*":
            chip = catalog.accelerators[port.accelerator]
            if chip.stack_efficiency(port.to_stack) <= 0:
                add(path + ("to_stack",), f"found {port.to_stack!r}: {chip.id} lacks that stack; accepted: "
                                          f"{', '.join(chip.stacks)}")
        if port.start is not None and not scenario.start <= port.start < end:
            add(path + ("start",), f"found {port.start}: outside the run; accepted: {scenario.start} to "
                                   f"{end - dt.timedelta(days=1)}")
        if port.ramp is not None and port.start is None:
            add(path + ("ramp",), "a ramp needs the port's start date (porting[].start)")


MAX_FLUID_BINS = 20_000_000  # a fluid service holds a few float arrays per bin


def _check_inference(scenario, catalog, origin, add) -> None:
    """Services name known models and pools; replicas fit their chips (weights + KV, or weights + tables
    for ranking) and their pools; fields match the service's family (``sim.validation.family``)."""
    from sim.fleet.build import FleetError, resolve_pool, resolve_site
    from sim.kernels.serving_reference import kv_capacity_tokens
    from sim.validation.family import check_family, check_ranking_fit, check_ranking_model
    from sim.workload import TraceError, read_trace

    pools = {p.name: i for i, p in enumerate(scenario.fleet)}
    llms = sorted(m.id for m in catalog.models.values() if m.kv_bytes_per_token > 0)
    names = set()
    site = resolve_site(scenario.site, catalog)
    sizes_by_pool: dict[str, set[int]] = {}  # replica sizes on each pool, for the shared-pool rule
    windowed_pools = set()  # pools with a group active only part of the run (own dates, or the pool's window)
    horizon = float(scenario.duration)
    for service in scenario.workloads.inference:
        for group in service.replicas:
            sizes_by_pool.setdefault(group.pool, set()).add(group.chips_per_replica)
            if group.pool in pools and _windowed(scenario, scenario.fleet[pools[group.pool]], group, horizon):
                windowed_pools.add(group.pool)
    for s, service in enumerate(scenario.workloads.inference):
        base = ("workloads", "inference", s)
        if service.name in names:
            add(base + ("name",), f"duplicate service name {service.name!r}")
        names.add(service.name)
        model = catalog.models.get(service.model)
        check_family(service, base, add)
        ranking = service.family == "ranking"
        if ranking:
            check_ranking_model(service, model, catalog, base, add)
        elif model is None or model.kv_bytes_per_token <= 0:
            what = "unknown model" if model is None else "not an LLM with a KV cache:"
            add(base + ("model",), f"{what} {service.model!r}" + suggest(service.model, llms))
        if service.stack not in SERVING_STACKS:
            add(base + ("stack",), f"unknown stack {service.stack!r}" + suggest(service.stack, SERVING_STACKS))
        if service.framework is not None and service.framework not in framework_table():
            add(base + ("framework",), f"unknown framework {service.framework!r}"
                + suggest(service.framework, framework_table()))
        bins = float(scenario.duration) / service.fluid_bin
        if service.fidelity == "fluid" and bins > MAX_FLUID_BINS:
            add(base + ("fluid_bin",), f"found {service.fluid_bin:g} s: {bins:,.0f} bins over the horizon; "
                                       f"accepted: at most {MAX_FLUID_BINS:,} bins (a longer fluid_bin)")
        if service.traffic.trace is not None:
            try:
                frame = read_trace(service.traffic.trace, origin.directory)
            except (FileNotFoundError, TraceError) as exc:
                add(base + ("traffic", "trace", "path"), str(exc))
            else:
                _check_trace_requests(service, frame, base, add, scenario.start)
        _check_serving_burst(scenario, service, base, add)
        for g, group in enumerate(service.replicas):
            path = base + ("replicas", g)
            if group.pool not in pools:
                add(path + ("pool",), f"unknown pool {group.pool!r}" + suggest(group.pool, pools))
                continue
            _check_autoscale(scenario, pools[group.pool], group, path, add)
            if ranking and service.router.kind == "central" and _windowed(
                    scenario, scenario.fleet[pools[group.pool]], group, horizon):
                add(base + ("router", "kind"), f"found central with replicas[{g}] active only part of the run "
                                               "(active_from/active_until or its pool's dates): a ranking service's "
                                               "central queue does not follow windows yet; accepted: another router")
            _check_replica_pool(scenario, pools[group.pool], sizes_by_pool[group.pool], group, path, add,
                                windowed_pool=group.pool in windowed_pools)
            if scenario.fleet[pools[group.pool]].accelerator_id not in catalog.accelerators:
                continue
            try:
                pool = resolve_pool(scenario, pools[group.pool], catalog, site)
            except FleetError:
                continue  # reported with the fleet
            chip = pool.accelerator
            if group.chips_per_replica > pool.domain_chips:
                add(path + ("chips_per_replica",),
                    f"found {group.chips_per_replica}: a replica stays inside one scale-up domain of pool "
                    f"{pool.name!r}; accepted: at most {pool.domain_chips}")
            if (service.framework is None or service.framework in framework_table()) and stack_efficiency(
                    chip, service.software, ports_at(scenario.porting, 0.0, scenario.start)) <= 0:
                later = [p.start for p in scenario.porting if p.start is not None and p.start > scenario.start
                         and p.accelerator in ("*", chip.id)]
                why = (f"; serving uses the ports in force at the run's start, and the port onto it starts {later[0]}"
                       if later else "; grant a port under porting:")
                add(path + ("pool",), f"{'framework' if service.framework else 'stack'} {service.software!r} does "
                                      f"not run on {chip.id} (it runs {', '.join(chip.stacks)}){why}")
            if ranking:
                check_ranking_fit(service, model, chip, group, path, add)
            elif model is not None and model.kv_bytes_per_token > 0 and kv_capacity_tokens(
                    group.chips_per_replica, chip.memory_gb * 1e9, 2.0 * model.params, model.kv_bytes_per_token) < 1:
                add(path + ("chips_per_replica",),
                    f"found {group.chips_per_replica}: {service.model} does not fit on {group.chips_per_replica} × "
                    f"{chip.id} ({chip.memory_gb:g} GB each, weights {2 * model.params / 1e9:.0f} GB); "
                    f"accepted: more chips per replica")


def _check_trace_requests(service, frame, base: tuple, add, start) -> None:
    """A request-level service holds every request of its scaled trace in memory: refuse more than
    ``MAX_REQUESTS`` before allocating them. A grown trace superposes ``scale`` × the growth's peak copies
    (at either fidelity): refuse more than the 10,000 ``scale`` allows."""
    from sim.scenario.base import MAX_REQUESTS

    trace, rows = service.traffic.trace, len(frame)
    if trace.growth is not None and rows:
        arrival = frame["arrival_s"].to_numpy() + trace.start_offset
        peak = trace.growth.peak(start, float(arrival.min()), float(arrival.max()))
        if trace.scale * peak > 10_000:
            add(base + ("traffic", "trace", "growth"),
                f"found a peak multiplier of {peak:.3g} over the trace: {trace.scale:g} × {peak:.3g} = "
                f"{trace.scale * peak:.3g} superposed copies; accepted: scale × the growth's peak up to 10,000 "
                f"(each copy is held in memory)")
            return
    requests = rows * trace.scale * (peak if trace.growth is not None and rows else 1.0)
    if service.fidelity == "request" and requests > MAX_REQUESTS:
        add(base + ("traffic", "trace", "scale"),
            f"found {service.traffic.trace.scale:g}: {rows:,} trace requests at this scale make {requests:,.0f}, "
            f"each held in memory; accepted: at most {MAX_REQUESTS:,} requests at fidelity request (scale <= "
            f"{MAX_REQUESTS // max(rows, 1):,}), or fidelity: fluid")


def _windowed(scenario, pool, group, horizon: float) -> bool:
    """Whether a replica group is active only part of the run: its own dates, or its pool's (``sim.fleet.windows``;
    a date at or beyond the horizon cuts nothing)."""
    def inside(date) -> bool:
        return date is not None and 0 < (date - scenario.start).days * 86400.0 < horizon

    return any(inside(d) for d in (group.active_from, group.active_until, pool.online_from, pool.online_until)) or (
        group.active_until is not None and group.active_until <= scenario.start)


def _check_replica_pool(scenario, pool_index: int, sizes: set[int], group, path: tuple, add,
                        windowed_pool: bool = False) -> None:
    """A group's own dates (``active_from``, ``active_until``) make a non-empty window inside the run and the
    pool's online window (``sim.fleet.windows``); an autoscaled group is active all run (the autoscaler's
    reservation schedule has no window); and on a shared pool, or a pool with a windowed group, every replica
    group has the same size: replicas then fit any domain a replica of another group left, so placing them in
    whatever order the autoscaler, the windows and training produce can never fragment the domains into holes
    too small for a replica."""
    pool = scenario.fleet[pool_index]
    start, horizon = scenario.start, float(scenario.duration)
    end_date = start + dt.timedelta(seconds=horizon)
    begins, until = group.active_from, group.active_until
    pool_from = pool.online_from or start
    if begins is not None and begins < start:
        add(path + ("active_from",), f"found {begins}: before the scenario start {start}; accepted: a date on or "
                                     "after it (or leave active_from out: the group is active from the start)")
    elif begins is not None and (begins - start).days * 86400.0 >= horizon:
        add(path + ("active_from",), f"found {begins}: at or after the end of the run ({end_date:%Y-%m-%d %H:%M}), "
                                     "so the group would never serve; accepted: a date before it")
    elif begins is not None and pool.online_until is not None and begins >= pool.online_until:
        add(path + ("active_from",), f"found {begins}: pool {pool.name!r} leaves on {pool.online_until}, so the "
                                     f"group would never serve; accepted: a date before {pool.online_until}")
    if until is not None and begins is not None and until <= begins:
        add(path + ("active_until",), f"found {until}: on or before active_from ({begins}), an empty window; "
                                      "accepted: a date after active_from")
    elif until is not None and until <= start:
        add(path + ("active_until",), f"found {until}: on or before the scenario start {start}, so the group "
                                      "would never serve; accepted: a date after the start")
    elif until is not None and until <= pool_from:
        add(path + ("active_until",), f"found {until}: pool {pool.name!r} comes online on {pool_from}, so the "
                                      f"group would never serve; accepted: a date after {pool_from}")
    if group.autoscale is not None:
        leaves = pool.online_until is not None and (pool.online_until - start).days * 86400.0 < horizon
        if begins is not None or until is not None or pool_from > start or leaves:
            what = ("active_from/active_until" if begins is not None or until is not None
                    else f"pool {pool.name!r} online only part of the run")
            add(path + ("autoscale",), f"found autoscale with {what}: an autoscaled group is active for the "
                                       "whole run; accepted: drop autoscale, or the window (a pool online from "
                                       "the start to the end)")
    if pool.sharing != "shared" and not windowed_pool:
        return
    if len(sizes) > 1:
        what = "shared pool" if pool.sharing == "shared" else "pool (with a group active only part of the run)"
        add(path + ("chips_per_replica",),
            f"found {group.chips_per_replica}: replica groups on {what} {pool.name!r} use sizes "
            f"{sorted(sizes)}; mixed sizes could leave holes no replica fits when they come and go; "
            "accepted: one chips_per_replica for every group on the pool")


def _check_autoscale(scenario, pool_index: int, group, path: tuple, add) -> None:
    """Autoscaling needs a shared pool (a dedicated pool holds its replicas' chips all run, so scaling
    down would free nothing), a minimum no larger than the group's count, and a sane interval."""
    scale, pool = group.autoscale, scenario.fleet[pool_index]
    if scale is None:
        return
    decisions = scenario.duration / scale.interval
    if decisions > MAX_TIMESERIES_BINS:
        add(path + ("autoscale", "interval"),
            f"found {scale.interval:g} s: that is {decisions:.3g} decisions over the horizon; "
            f"accepted: at least {scenario.duration / MAX_TIMESERIES_BINS:.3g} s")
    if pool.sharing != "shared":
        add(path + ("autoscale",), f"pool {pool.name!r} is dedicated: its replicas hold their chips all run, so "
                                   f"autoscaling would lend nothing; accepted: set fleet[{pool_index}].sharing: "
                                   "shared, or drop autoscale")
    if scale.min_count > group.count:
        add(path + ("autoscale", "min_count"),
            f"found {scale.min_count}: more than the group's count {group.count} (the maximum); "
            f"accepted: 1 to {group.count}")


def _check_feasibility(scenario, catalog, add, origin=None) -> None:
    """Layout, rack cooling and idle power against the cap — for every pool whose chip is known, even
    when other parts of the scenario have problems, so one run reports them all."""
    from sim.fleet.build import FleetError, idle_facility_w, resolve_pool, resolve_site, within_cap

    site = resolve_site(scenario.site, catalog)
    pools = []
    for index, entry in enumerate(scenario.fleet):
        if entry.accelerator_id not in catalog.accelerators:
            continue  # already reported as unknown
        try:
            pools.append(resolve_pool(scenario, index, catalog, site))
        except FleetError as exc:
            add(("fleet", exc.pool_index, exc.field), str(exc))
    for pool in pools:
        index = pool.index
        _check_delivery_sizes(pool, scenario.fleet[index], add)
        _check_retirement_chips(scenario, pool, add)
        cooling_kw = site.cooling_kw_per_rack[pool.cooling]
        if pool.rack_power_w / 1e3 > cooling_kw:
            per_server_kw = pool.rack_power_w / 1e3 / pool.servers_per_rack
            fitting = int(cooling_kw // per_server_kw)
            add(("fleet", index, "servers_per_rack"),
                f"a rack of {pool.servers_per_rack} servers draws {pool.rack_power_w / 1e3:.1f} kW but "
                f"{pool.cooling} cooling removes {cooling_kw:g} kW per rack; accepted: servers_per_rack <= "
                f"{fitting}, or cooling: liquid, or a lower-power chip, or site.cooling_over_capacity: throttle")
    if len(pools) == len(scenario.fleet):
        _check_reservations(scenario, pools, add)
        if origin is not None:
            _check_plant(scenario, origin, pools, add)
        if any(p.rack_budget_w is not None or p.row_budget_w is not None for p in pools):
            _check_budget_replicas(scenario, catalog, add)
    if site.power_cap_dates:  # a dated cap schedule: its lowest value must hold the idle fleet and the replicas
        site = dataclasses.replace(site, power_cap_w=min(w for _, w in site.power_cap_dates))
    if site.power_cap_w is not None and len(pools) == len(scenario.fleet):
        idle_w = idle_facility_w(pools, site.pue)
        if not within_cap(idle_w, site.power_cap_w):
            add(("site", "power_cap_mw"),
                f"found {site.power_cap_w / 1e6:g} MW: the fleet's idle power alone is "
                f"{idle_w / 1e6:.3g} MW at PUE {site.pue:g}; accepted: a cap above that, or a smaller fleet")
        else:
            _check_replica_power(scenario, pools, site, idle_w, add)


def _check_plant(scenario, origin, pools, add) -> None:
    """The cooling plant (``site.cooling_plant_mw``) cools, in the hottest hour of the run, the fleet's idle IT
    power with every inference replica at full load: the floor its cap on IT power leaves to training (nothing
    caps serving while the run goes on). Its IT capacity per hour is rounded down as the runner's cap schedule
    does (``sim.facility.plant_cap_schedule``)."""
    import numpy as np

    from sim.facility import LOCATIONS, builtin_weather, read_weather_csv
    from sim.facility.model import FacilityModel, plant_it_cap_hours
    from sim.workload.errors import TraceError

    site = scenario.site
    if site.cooling_plant_mw is None:
        return
    if site.climate is not None and site.climate not in LOCATIONS:
        return  # reported by _check_facility, as a weather file that does not parse
    try:
        weather = (builtin_weather(site.climate) if site.climate is not None
                   else read_weather_csv(site.weather.csv, origin.directory))
    except (FileNotFoundError, TraceError):
        return
    plant_w = float(site.cooling_plant_mw) * 1e6
    model = FacilityModel(weather, np.zeros(1), np.zeros(1), None, "", plant_w, site.cooling_plant_design_c)
    hours = plant_it_cap_hours(model, scenario.start, float(scenario.duration))
    hottest = int(np.argmin(hours))
    cap_w = np.floor(hours[hottest] / (0.01 * plant_w) + 1e-9) * 0.01 * plant_w
    index = {pool.name: pool for pool in pools}
    floor_w = sum(pool.count * pool.idle_w_with_server for pool in pools)
    for service in scenario.workloads.inference:
        for group in service.replicas:
            pool = index.get(group.pool)
            if pool is not None:
                floor_w += group.count * group.chips_per_replica * (pool.busy_w_with_server - pool.idle_w_with_server)
    if floor_w > cap_w * (1.0 + 1e-9):
        need = (f"cooling_plant_mw >= {math.ceil(floor_w / cap_w * plant_w / 1e3) / 1e3:g}, or "
                if cap_w > 0 else "")
        add(("site", "cooling_plant_mw"),
            f"found {site.cooling_plant_mw:g} MW: in the hottest hour of the run (day {hottest // 24 + 1}) the plant "
            f"cools {cap_w / 1e3:.4g} kW of IT, below the fleet's idle power with the inference replicas at full "
            f"load ({floor_w / 1e3:.4g} kW; serving is not capped while it runs); accepted: {need}a higher "
            "cooling_plant_design_c, or fewer replicas")


def _check_budget_replicas(scenario, catalog, add) -> None:
    """The inference replicas placed at t = 0 (as the engine places them: ``Fleet.new_allocators``), at full load
    with their rack's or row's idle chips, stay within its budget: nothing slows serving, so a rack they take over
    its budget would stay over (``sim.training.budgets``). Reported at the pool's budget field."""
    from sim.fleet.budgets import budget_layout, reserved_w, within
    from sim.fleet.build import build_fleet

    try:
        fleet = build_fleet(scenario, catalog)
        held: list = []
        allocators = fleet.new_allocators(held)
    except (ValueError, KeyError):
        return  # replicas or deliveries that do not fit, an unknown pool: reported by the other checks
    layout = budget_layout(fleet.pools)
    names = {p.name: p.index for p in fleet.pools}
    reported = set()
    for b, inference_w in enumerate(reserved_w(layout, allocators, held)):
        drawn = layout.idle_w[b] + inference_w
        kind, pool_name, k = layout.names[b].split(":")
        if within(drawn, layout.limit_w[b]) or (pool_name, kind) in reported:
            continue
        reported.add((pool_name, kind))
        add(("fleet", names[pool_name], f"{kind}_budget_kw"),
            f"found {layout.limit_w[b] / 1e3:g} kW: the inference replicas placed in {kind} {k} at the start draw "
            f"{drawn / 1e3:.4g} kW at full load with its idle chips (rack and row budgets never slow serving); "
            f"accepted: at least {math.ceil(drawn / 100) / 10:g} kW, or fewer replicas on the pool")


def _check_replica_power(scenario, pools, site, idle_w: float, add) -> None:
    """Inference replicas at full load, with every other chip idle, stay within the site cap: the same
    floor that training admission reserves (``Fleet.committed_floor_w``). Under ``admission`` nothing caps serving's
    power while the run goes on, so a fleet above it would draw more than the cap; under ``throttle`` and ``shed``
    LLM replicas on all run may be slowed (``sim.serving.throttle``), so they count at the minimum clock's power.
    Reported at the service whose replicas (counted in file order) first take the site over the cap."""
    from sim.fleet.build import within_cap
    from sim.fleet.windows import group_window_s, windowed
    from sim.policies.capping import COUNTED_AS_DRAWN, power_frac

    index = {pool.name: pool for pool in pools}
    cap = scenario.policy.power_cap
    slowed = power_frac(cap.min_clock_frac) if cap.kind in COUNTED_AS_DRAWN else 1.0  # sim.serving.throttle
    horizon = float(scenario.duration)
    draw_w, over = idle_w, None
    for s, service in enumerate(scenario.workloads.inference):
        for group in service.replicas:
            pool = index.get(group.pool)
            if pool is None:
                return  # an unknown pool is reported by _check_inference
            increment_w = (pool.busy_w_with_server - pool.idle_w_with_server) * site.pue  # idle to full load
            if (service.family == "llm" and group.autoscale is None and group.burst is None
                    and not windowed(group_window_s(group, pool, scenario.start, horizon), horizon)):
                increment_w *= slowed  # throttle, shed: these replicas may be slowed to the minimum clock
            draw_w += group.count * group.chips_per_replica * increment_w
        if over is None and not within_cap(draw_w, site.power_cap_w):
            over = s
    if over is not None:
        add(("workloads", "inference", over, "replicas"),
            f"the inference replicas draw {draw_w / 1e6:.4g} MW at full load with the fleet's idle power "
            f"(PUE {site.pue:g}), above the site cap of {site.power_cap_w / 1e6:g} MW ("
            + ("serving is not capped while it runs" if slowed == 1.0 else
               f"LLM replicas on all run counted at min_clock_frac {cap.min_clock_frac:g}")
            + f"); accepted: fewer replicas, or power_cap_mw >= {math.ceil(draw_w / 100) / 1e4:g}")


def _check_reservations(scenario, pools, add) -> None:
    """Every pool can hold the inference replicas active on it at every instant, domain by domain, in the
    chips it has then (later deliveries held until their date): the same placement the engine makes with
    ``sim.fleet.allocation.reserve`` at t = 0 and the cluster's schedule at each group's ``active_from``
    (``sim.fleet.windows``). Checked at each instant a group starts, one group at a time to name the group
    that does not fit."""
    from sim.fleet.allocation import DomainAllocator, hold_deliveries, reserve
    from sim.fleet.windows import group_window_s

    horizon = float(scenario.duration)
    index = {pool.name: pool.index for pool in pools}
    by_pool: dict[int, list] = {}
    for s, service in enumerate(scenario.workloads.inference):
        for g, group in enumerate(service.replicas):
            pool = pools[index[group.pool]] if group.pool in index else None
            if pool is None or group.chips_per_replica > pool.domain_chips:
                continue  # reported by _check_inference
            window = group_window_s(group, pool, scenario.start, horizon)
            if window[0] < window[1]:
                by_pool.setdefault(pool.index, []).append(((s, g), group, window))
    reported = set()
    for pool_index, groups in by_pool.items():
        pool = pools[pool_index]
        for at in sorted({window[0] for _, _, window in groups}):
            allocator = DomainAllocator(pool.domain_sizes)
            try:
                hold_deliveries(allocator, [chips for t, chips in pool.deliveries if t > at])
            except ValueError:
                return  # deliveries that are not whole domains or exceed count are reported on their own
            chips_then = pool.count - sum(chips for t, chips in pool.deliveries if t > at)
            for key, group, window in groups:
                if not window[0] <= at < window[1]:
                    continue
                try:
                    reserve([allocator], [(0, group.chips_per_replica, group.count)])
                except ValueError:
                    if key not in reported:
                        reported.add(key)
                        _report_no_room(scenario, pool, key, group, at, chips_then, groups, add)
                    break


def _report_no_room(scenario, pool, key, group, at: float, chips_then: int, groups, add) -> None:
    """The located error of a group whose replicas do not fit in ``pool`` at ``at`` [s], with what would."""
    path = ("workloads", "inference", key[0], "replicas", key[1], "count")
    others = sum(g.count * g.chips_per_replica for k, g, w in groups if w[0] <= at < w[1] and k != key)
    when = scenario.start + dt.timedelta(seconds=at)
    fits = max(0, (chips_then - others) // group.chips_per_replica)
    later = [scenario.start + dt.timedelta(seconds=t) for t, _ in pool.deliveries if t > at]
    hint = (f", or active_from on or after a later delivery ({', '.join(str(d) for d in later)})" if later else "")
    add(path, f"found {group.count}: pool {pool.name!r} ({chips_then} chips on {when:%Y-%m-%d}"
              + (", before its later deliveries" if later else "")
              + f") cannot hold all the replicas active on it then (the other groups hold {others} chips); "
              f"accepted: at most {fits} replicas of {group.chips_per_replica} chips{hint}, or a larger pool")
