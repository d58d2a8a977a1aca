"""Shared building blocks of the scenario schema: strict frozen models and duration fields."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict

from sim.scenario.units import parse_duration_s

DurationS = Annotated[float, BeforeValidator(parse_duration_s)]


class Strict(BaseModel):
    """Unknown keys are errors; instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def require_exactly_one(model: BaseModel, *fields: str) -> None:
    """For sections with alternative forms (a trace *or* a generator): exactly one must be given."""
    given = [name for name in fields if getattr(model, name) is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(fields)} (found {', '.join(given) or 'none'})")
