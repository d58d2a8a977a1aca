"""Inference request traces: readers for real public formats, and rate scaling by superposition.

A *request table* is a pandas DataFrame, one row per request, sorted by arrival (stable):

==============  =======  ===========================================================
column          dtype    meaning
==============  =======  ===========================================================
arrival_s       float    arrival time, seconds from the first request of the trace
prompt_tokens   int      prompt (context) length [tokens]
output_tokens   int      generated length [tokens]
source_row      int      1-based data row in the source file (for provenance)
copy            int      which superposed copy (0 for the original; see ``scale_requests``)
==============  =======  ===========================================================

Readers: ``azure-llm-2023`` (Splitwise, ISCA'24: ``TIMESTAMP,ContextTokens,GeneratedTokens``) and
``mooncake`` (FAST'25 JSON lines: ``timestamp`` in ms, ``input_length``, ``output_length``). A malformed
row raises ``TraceError`` naming the file, the row and the column. Nothing here knows the engine.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from sim.workload.errors import TraceError

AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


def read_azure_llm(path: Path, limit: int | None = None) -> pd.DataFrame:
    """Read an Azure LLM inference trace CSV (``AzureLLMInferenceTrace_{code,conv}.csv``).

    Timestamps carry 7 fractional digits (100 ns); the 7th is dropped (Python parses microseconds).
    """
    arrivals, prompts, outputs, rows = [], [], [], []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in AZURE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise TraceError(f"{path}:1: missing column(s) {', '.join(missing)}; expected {', '.join(AZURE_COLUMNS)}")
        first = None
        for row_number, row in enumerate(reader, start=2):
            if limit is not None and len(rows) >= limit:
                break
            stamp = _azure_time(row["TIMESTAMP"], path, row_number)
            first = stamp if first is None else first
            arrivals.append((stamp - first).total_seconds())
            prompts.append(_tokens(row["ContextTokens"], path, row_number, "ContextTokens", minimum=1))
            outputs.append(_tokens(row["GeneratedTokens"], path, row_number, "GeneratedTokens", minimum=1))
            rows.append(row_number - 1)
    return _request_table(arrivals, prompts, outputs, rows, path)


def read_mooncake(path: Path, limit: int | None = None) -> pd.DataFrame:
    """Read a Mooncake trace (JSON lines with ``timestamp`` [ms], ``input_length``, ``output_length``)."""
    arrivals, prompts, outputs, rows = [], [], [], []
    with open(path, encoding="utf-8") as handle:
        for row_number, line in enumerate(handle, start=1):
            if limit is not None and len(rows) >= limit:
                break
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TraceError(f"{path}:{row_number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise TraceError(f"{path}:{row_number}: expected a JSON object, found {type(record).__name__}")
            for key in ("timestamp", "input_length", "output_length"):
                if key not in record:
                    raise TraceError(f"{path}:{row_number}: missing field {key!r}")
            stamp = record["timestamp"]
            if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not math.isfinite(stamp) or stamp < 0:
                raise TraceError(f"{path}:{row_number}: field 'timestamp': expected milliseconds >= 0, found {stamp!r}")
            arrivals.append(stamp / 1000.0)
            prompts.append(_tokens(record["input_length"], path, row_number, "input_length", minimum=1))
            outputs.append(_tokens(record["output_length"], path, row_number, "output_length", minimum=1))
            rows.append(row_number)
    return _request_table(arrivals, prompts, outputs, rows, path)


def scale_requests(requests: pd.DataFrame, scale: float, rng: np.random.Generator) -> pd.DataFrame:
    """Replay a trace at ``scale`` times its rate by superposing time-shifted copies of it.

    Method: ``floor(scale)`` whole copies plus one copy thinned to the fractional part (each request
    kept with probability ``scale - floor(scale)``). Copy 0 is the original; every other copy is shifted
    cyclically by its own offset drawn uniformly over the trace's span, wrapping at the end, so each copy
    keeps the trace's burstiness and length mix while the copies' bursts do not line up. The result
    spans the same time as the input, with ``scale`` times the requests (exactly so for whole scales).
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    arrival = requests["arrival_s"].to_numpy()
    if len(arrival) == 0 or scale == 1:
        return requests.reset_index(drop=True)
    span = float(arrival.max() - arrival.min()) or 1.0
    start = float(arrival.min())
    whole, fraction = int(math.floor(scale)), scale - math.floor(scale)
    parts = []
    for copy in range(whole + (1 if fraction > 0 else 0)):
        part = requests.copy()
        if copy > 0:
            offset = rng.uniform(0.0, span)
            part["arrival_s"] = start + np.mod(arrival - start + offset, span)
        if copy == whole:  # the fractional copy
            part = part[rng.random(len(part)) < fraction]
        part["copy"] = copy
        parts.append(part)
    merged = pd.concat(parts, ignore_index=True)
    order = np.argsort(merged["arrival_s"].to_numpy(), kind="stable")
    return merged.iloc[order].reset_index(drop=True)


def _azure_time(text: str, path: Path, row_number: int) -> dt.datetime:
    try:
        date, _, fraction = text.strip().partition(".")
        return dt.datetime.strptime(f"{date}.{(fraction or '0')[:6]}", "%Y-%m-%d %H:%M:%S.%f")
    except ValueError:
        raise TraceError(f"{path}:{row_number}: column 'TIMESTAMP': expected 'YYYY-MM-DD HH:MM:SS.fffffff', "
                         f"found {text!r}") from None


def _tokens(value: object, path: Path, row_number: int, column: str, minimum: int) -> int:
    try:
        tokens = int(value)
        if isinstance(value, float) and tokens != value:
            raise ValueError
    except (TypeError, ValueError):
        raise TraceError(f"{path}:{row_number}: column {column!r}: expected a whole number of tokens, "
                         f"found {value!r}") from None
    if tokens < minimum:
        raise TraceError(f"{path}:{row_number}: column {column!r}: expected at least {minimum}, found {tokens}")
    return tokens


def _request_table(arrivals, prompts, outputs, rows, path) -> pd.DataFrame:
    arrival = np.asarray(arrivals, dtype=np.float64)
    if len(arrival) > 1 and np.any(np.diff(arrival) < 0):
        first_bad = int(np.flatnonzero(np.diff(arrival) < 0)[0]) + 1
        raise TraceError(f"{path}: row {rows[first_bad]}: arrivals must not go back in time")
    return pd.DataFrame({
        "arrival_s": arrival,
        "prompt_tokens": np.asarray(prompts, dtype=np.int64),
        "output_tokens": np.asarray(outputs, dtype=np.int64),
        "source_row": np.asarray(rows, dtype=np.int64),
        "copy": np.zeros(len(arrival), dtype=np.int64),
    })
