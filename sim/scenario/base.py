"""Shared building blocks of the scenario schema: strict frozen models, duration fields and bounded numbers."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticUndefined

from sim.scenario.units import parse_duration_s

DurationS = Annotated[float, BeforeValidator(parse_duration_s)]

# Sizes that decide memory and run time, shared by the fields that hold them
MAX_CHIPS = 10_000_000  # chips in a pool or a gang
MAX_JOBS = 10_000_000  # training jobs generated or read from a trace
MAX_REQUESTS = 100_000_000  # requests one service simulates request by request
MAX_TOKENS = 10_000_000  # tokens in a request or one batched iteration; items in a ranking query
MAX_QUANTITY = 1e15  # any distribution parameter, in the quantity's own unit
MAX_SIGMA = 4.0  # log-normal spread
WHY_CHIPS = "larger fleets do not fit in memory"
WHY_JOBS = "each job is held in memory"
WHY_TOKENS = "longer than any model's context window"


class Strict(BaseModel):
    """Unknown keys are errors; instances are immutable; NaN and infinity are not numbers here."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def bounded(default: Any = PydanticUndefined, *, description: str, why: str, unit: str = "",
            ge: float | None = None, gt: float | None = None, le: float | None = None) -> Any:
    """A numeric field whose range is part of its description, with the reason for the limit.

    ``accepted`` (e.g. "0 to 10,000,000 chips (larger fleets do not fit in memory)") is kept with the
    field, and the loader uses it for the message when a value falls outside the range.
    """
    accepted = f"{accepted_range(ge=ge, gt=gt, le=le)}{' ' + unit if unit else ''} ({why})"
    return Field(default, ge=ge, gt=gt, le=le, description=f"{description}; {accepted}",
                 json_schema_extra={"accepted": accepted})


def accepted_range(ge: float | None = None, gt: float | None = None, le: float | None = None) -> str:
    """``ge=0, le=1e7`` -> ``0 to 10,000,000``; ``gt=0, le=5`` -> ``above 0, up to 5``."""
    if ge is not None:
        return f"{number_text(ge)} to {number_text(le)}" if le is not None else f"at least {number_text(ge)}"
    if gt is not None:
        return f"above {number_text(gt)}" + (f", up to {number_text(le)}" if le is not None else "")
    return f"up to {number_text(le)}"


def number_text(value: float) -> str:
    """Whole numbers with thousands separators, others in short form: ``10,000,000``, ``1e-06``, ``0.5``."""
    if isinstance(value, int):
        return f"{value:,}"
    if float(value).is_integer() and abs(value) < 1e13:
        return f"{int(value):,}"
    return f"{value:g}"


def require_exactly_one(model: BaseModel, *fields: str) -> None:
    """For sections with alternative forms (a trace *or* a generator): exactly one must be given."""
    given = [name for name in fields if getattr(model, name) is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(fields)} (found {', '.join(given) or 'none'})")
