"""Inference serving: every family behind one interface (``sim.serving.family``), run as one stage.

Families: ``llm-request`` (every request through continuous batching), ``llm-fluid`` (rates per time
bin), ``ranking`` (DLRM-class dynamic batching), ``ranking-fluid`` (rates per time bin through
batch-service queues). A new family is a folder with a ``ServiceRun`` subclass and a line here.
"""

from sim.serving.fluid.family import FluidService
from sim.serving.llm.family import LlmRequestService
from sim.serving.ranking.family import RankingFluidService, RankingService

FAMILIES = {"llm-request": LlmRequestService, "llm-fluid": FluidService, "ranking": RankingService,
            "ranking-fluid": RankingFluidService}

__all__ = ["FAMILIES"]
