"""Scenario problems that name the file, line, field path, what was found and what is accepted."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, Sequence


@dataclass(frozen=True)
class Problem:
    """One mistake in a scenario: where it is (``file:line`` or the ``--set`` that caused it) and what."""

    location: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.location} {self.path}: {self.message}" if self.path else f"{self.location}: {self.message}"


class ScenarioError(ValueError):
    """Every problem found in a scenario, reported together."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def format_path(path: Iterable[object]) -> str:
    """``('fleet', 2, 'accelerator')`` -> ``fleet[2].accelerator``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def suggest(name: str, known: Iterable[str], listed: int = 30) -> str:
    """`` (did you mean 'x'?); known: a, b, c`` for an unknown name."""
    known = sorted(known)
    close = _closest(str(name), known)
    hint = f" (did you mean {close!r}?)" if close else ""
    shown = ", ".join(known[:listed]) + (", …" if len(known) > listed else "")
    return f"{hint}; known: {shown}"


def _closest(name: str, known: list[str]) -> str | None:
    """The known name sharing the longest prefix with ``name`` (at least 2 characters), ties and the
    rest decided by similarity; ids like 'h100-sxm' are typed from their start ('h1000', 'h100')."""
    def prefix(other: str) -> int:
        length = 0
        for a, b in zip(name.lower(), other.lower()):
            if a != b:
                break
            length += 1
        return length

    ratio = {k: difflib.SequenceMatcher(None, name, k).ratio() for k in known}
    best = max(known, key=lambda k: (min(prefix(k), 4), ratio[k]), default=None)
    if best is not None and (prefix(best) >= 2 or ratio[best] >= 0.6):
        return best
    return None
