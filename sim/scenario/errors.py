"""Scenario problems that name the file, line, field path, what was found and what is accepted."""

from __future__ import annotations

import difflib
import re
import reprlib
from dataclasses import dataclass
from typing import Iterable, Sequence

# C0 and C1 control characters and the Unicode line/paragraph separators: a problem is one line
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
SUGGEST_CUTOFF = 0.6  # difflib similarity below which a known name is too far off to suggest
_REPR = reprlib.Repr()  # bounded: deep or self-referring data from Python is shown as [[...]]
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 200, 200, 40


def escape_controls(text: str) -> str:
    """``'a\\nb'`` with a real newline -> ``'a\\\\nb'``: control characters shown as escapes."""
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


def shown(value: object, limit: int = 80) -> str:
    """A user value for a message: its repr, at most ``limit`` characters, control characters escaped;
    integers beyond 20 digits in short form (``1e+30``)."""
    text = number_text(value) if isinstance(value, int) and not isinstance(value, bool) else _REPR.repr(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return escape_controls(text)


def number_text(value: int | float) -> str:
    """``1e+30`` for a huge integer (even one Python would refuse to print in full); others as repr."""
    if isinstance(value, float) or abs(value) < 10**20:
        return repr(value)
    if abs(value) < 10**300:
        return f"{float(value):.3g}"
    digits = int(abs(value).bit_length() * 0.30103) + 1  # exact after the correction below
    digits -= 10 ** (digits - 1) > abs(value)
    return f"an integer of {digits:,} digits"


@dataclass(frozen=True)
class Problem:
    """One mistake in a scenario: where it is (``file:line`` or the override that caused it) and what."""

    location: str
    path: str
    message: str

    def __str__(self) -> str:
        text = f"{self.location} {self.path}: {self.message}" if self.path else f"{self.location}: {self.message}"
        return escape_controls(text)  # user text never breaks the one-line-per-problem report


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
    known = sorted(str(k) for k in known)
    close = _closest(str(name), known)
    hint = f" (did you mean {close!r}?)" if close else ""
    shown_names = ", ".join(known[:listed]) + (", …" if len(known) > listed else "")
    return f"{hint}; known: {shown_names}"


def _closest(name: str, known: list[str]) -> str | None:
    """The known name most like ``name`` (difflib ratio at least ``SUGGEST_CUTOFF``, so a far-off name is
    never suggested); among those, the one sharing the longest prefix (up to 4 characters) wins, since ids
    like 'h100-sxm' are typed from their start ('h1000', 'h100')."""
    def prefix(other: str) -> int:
        length = 0
        for a, b in zip(name.lower(), other.lower()):
            if a != b:
                break
            length += 1
        return length

    ratio = {k: difflib.SequenceMatcher(None, name.lower(), k.lower()).ratio() for k in known}
    close = [k for k in known if ratio[k] >= SUGGEST_CUTOFF]
    return max(close, key=lambda k: (min(prefix(k), 4), ratio[k]), default=None)
