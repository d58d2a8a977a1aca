"""Checks of an inference service against its family (``llm`` or ``ranking``): which fields belong to
which family, the model's kind, and whether a ranking model fits its replica's chips.

Called from ``sim.validation.checks._check_inference``; like every check it reports through ``add(path,
message)`` so all problems of a file come out together with their line.
"""

from __future__ import annotations

from sim.scenario.errors import suggest
from sim.scenario.inference_schema import LLM_GROUP_FIELDS, RANKING_GROUP_FIELDS, LlmSlo, RankingSlo

OTHER = {"llm": "ranking", "ranking": "llm"}


def check_family(service, base: tuple, add) -> None:
    """Fields of the other family are errors; the fields a family needs are present."""
    family = service.family
    for g, group in enumerate(service.replicas):
        wrong = RANKING_GROUP_FIELDS if family == "llm" else LLM_GROUP_FIELDS
        for field in sorted(group.model_fields_set & set(wrong)):
            add(base + ("replicas", g, field),
                f"{field} is for {OTHER[family]} services; this service has family {family!r}; accepted here: "
                + ", ".join(LLM_GROUP_FIELDS if family == "llm" else RANKING_GROUP_FIELDS))
    slo = service.slo
    if family == "llm" and isinstance(slo, RankingSlo):
        add(base + ("slo", "latency_p99_ms"), "latency_p99_ms is a ranking SLO; an llm service takes "
                                              "ttft_p99_ms and tpot_p99_ms")
    if family == "ranking" and isinstance(slo, LlmSlo):
        add(base + ("slo",), "ttft_p99_ms/tpot_p99_ms are LLM SLOs; a ranking service takes latency_p99_ms")
    if service.router.kind == "slo-aware" and slo is None:
        targets = "{latency_p99_ms}" if family == "ranking" else "{ttft_p99_ms, tpot_p99_ms}"
        add(base + ("router", "kind"), f"found 'slo-aware': it routes by the service's SLO targets; "
                                       f"accepted: give slo: {targets}, or another router")
    if service.fidelity == "fluid":
        for g, group in enumerate(service.replicas):
            if group.autoscale is not None:
                add(base + ("replicas", g, "autoscale"), "autoscaling needs request-level serving (the "
                    "autoscaler reads the requests); accepted: fidelity: request, or no autoscale")
    _check_traffic(service, base + ("traffic",), add)


def _check_traffic(service, base: tuple, add) -> None:
    traffic = service.traffic
    if service.family == "ranking" and traffic.trace is not None:
        add(base + ("trace",), "ranking services take generator traffic (no ranking trace format yet)")
    gen = traffic.generator
    if gen is None:
        return
    path = base + ("generator",)
    if service.family == "llm":
        for field in ("prompt_tokens", "output_tokens"):
            if getattr(gen, field) is None:
                add(path, f"an llm service's generator needs {field}")
        if gen.items_per_request is not None:
            add(path + ("items_per_request",), "items_per_request is for ranking services; an llm service's "
                                               "generator takes prompt_tokens and output_tokens")
    else:
        if gen.items_per_request is None:
            add(path, "a ranking service's generator needs items_per_request (candidates scored per query)")
        for field in ("prompt_tokens", "output_tokens"):
            if getattr(gen, field) is not None:
                add(path + (field,), f"{field} is for llm services; a ranking service's generator takes "
                                     "items_per_request")


def check_ranking_model(service, model, catalog, base: tuple, add) -> None:
    """A ranking service names a ranking model with embedding tables described for lookups."""
    rankers = sorted(m.id for m in catalog.models.values() if _is_ranker(m))
    if model is None:
        add(base + ("model",), f"unknown model {service.model!r}" + suggest(service.model, rankers))
    elif not _is_ranker(model):
        add(base + ("model",), f"not a ranking model with embedding lookups: {service.model!r} (needs family "
                               f"ranking, embedding_dim and lookups_per_item)" + suggest(service.model, rankers))


def check_ranking_fit(service, model, chip, group, path: tuple, add) -> None:
    """Dense weights and embedding tables fit in the replica's device memory (sharded over its chips)."""
    from sim.serving.ranking.model import USABLE_MEMORY_FRAC, free_bytes, model_bytes

    if model is None or not _is_ranker(model) or free_bytes(model, chip, group.chips_per_replica) >= 0:
        return
    chips = group.chips_per_replica
    need = model_bytes(model) / (chip.memory_gb * 1e9 * USABLE_MEMORY_FRAC)
    add(path + ("chips_per_replica",),
        f"found {chips}: {service.model} ({model_bytes(model) / 1e9:.0f} GB of weights and embedding tables) "
        f"does not fit on {chips} × {chip.id} ({chip.memory_gb:g} GB each, {USABLE_MEMORY_FRAC:.0%} usable); "
        f"accepted: at least {int(-(-need // 1))} chips per replica")


def _is_ranker(model) -> bool:
    return model.family == "ranking" and model.embedding_dim > 0 and model.lookups_per_item > 0
