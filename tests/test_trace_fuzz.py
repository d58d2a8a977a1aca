"""Fuzzing the trace readers: whatever the bytes, a reader returns a valid table or raises ``TraceError``.

Inputs are arbitrary bytes, and real rows of the packaged traces with hostile mutations (huge, negative,
NaN and text values, dropped columns, binary bytes, shuffled rows, a byte-order mark, a cut). A table
that comes back has finite values within the readers' documented bounds.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.workload import TraceError, read_alibaba_pods, read_azure_llm, read_mooncake
from sim.workload.alibaba import MAX_GPUS_PER_POD
from sim.workload.distributions import MAX_EMPIRICAL_VALUE, empirical_values
from sim.workload.files import MAX_TRACE_TIME_S
from sim.workload.jobs import JOB_COLUMNS
from sim.workload.requests import MAX_TOKENS

TRACES = Path(str(resources.files("sim.workload").joinpath("traces")))
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # per reader


def _lines(name: str, picks) -> list[str]:
    lines = (TRACES / name).read_text().splitlines()
    return [lines[i] for i in picks]


def _alibaba_sample() -> list[str]:
    """The header, the first pods (Running, CPU-only, gpu_spec), and a Pending, a Succeeded, a Failed pod."""
    lines = (TRACES / "alibaba-gpu-2023" / "openb_pod_list_gpuspec33.csv").read_text().splitlines()
    others = [next(line for line in lines if f",{phase}," in line) for phase in ("Pending", "Succeeded", "Failed")]
    return lines[:10] + others


SAMPLES = {  # a few real rows of each packaged format, header first
    "azure": _lines("azure-llm-2023/AzureLLMInferenceTrace_conv.csv", range(8)),
    "mooncake": _lines("mooncake-fast25/conversation_trace.jsonl", range(6)),
    "alibaba": _alibaba_sample(),
    "empirical": _lines("philly-runtime/philly_runtime.csv", [0, *range(1, 83154, 9000)]),
}
HOSTILE_TEXT = ["", " ", "-1", "0", "-0", "1.5", "nan", "NaN", "inf", "-inf", "1e400", "1e20", "1e7", "10000001",
                "100000000000000000000", "9" * 5000, "abc", "\x00", "\ufeff1", " 7 ", "0x10", "1_0", "١٢", '"', "'",
                "\n", "\r", "a,b", "2023-13-45 25:61:61.0000000", "2262-04-12 00:00:00.0000000",
                "1677-09-21 00:12:44.0000000", "Pending", "G9|T4", "|", "x" * 300]
HOSTILE_JSON = ["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "100000000000000000000", "-3", "0", "1.5",
                "1e-400", '"12"', "true", "false", "null", "[]", "{}", "9" * 5000, "[" * 3000 + "]" * 3000,
                "10000001", "1e12", "4e12"]


def _field(hostile: list[str]):
    return st.one_of(st.sampled_from(hostile), st.text(max_size=12), st.integers(-10 ** 25, 10 ** 25).map(str),
                     st.floats(allow_nan=True, allow_infinity=True).map(repr))


@st.composite
def mutated_files(draw, kind: str) -> bytes:
    """Real rows of ``kind`` with 1 to 4 hostile mutations, as the file's bytes."""
    rows = [_split(kind, line) for line in SAMPLES[kind]]
    inserts, bom, cut = [], False, False
    for _ in range(draw(st.integers(1, 4))):
        mutation = draw(st.sampled_from(["field", "field", "field", "drop", "extra", "swap", "duplicate", "bytes",
                                         "bom", "cut", "empty"]))
        row = draw(st.integers(0, len(rows) - 1))
        if mutation == "field" and rows[row]:
            column = draw(st.integers(0, len(rows[row]) - 1))
            rows[row][column] = draw(_field(HOSTILE_JSON if kind == "mooncake" else HOSTILE_TEXT))
        elif mutation == "drop" and rows[row]:
            del rows[row][draw(st.integers(0, len(rows[row]) - 1))]
        elif mutation == "extra":
            rows[row].append(draw(_field(HOSTILE_TEXT)))
        elif mutation == "swap":
            other = draw(st.integers(0, len(rows) - 1))
            rows[row], rows[other] = rows[other], rows[row]
        elif mutation == "duplicate":
            rows.insert(row, list(rows[row]))
        elif mutation == "bytes":
            inserts.append(draw(st.one_of(st.binary(min_size=1, max_size=8), st.text(min_size=1, max_size=8))))
        elif mutation == "empty":
            del rows[1:]
        bom, cut = bom or mutation == "bom", cut or mutation == "cut"
    data = "\n".join(_join(kind, row) for row in rows).encode() + b"\n"
    for blob in inserts:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + (blob if isinstance(blob, bytes) else blob.encode()) + data[at:]
    if cut:
        data = data[:draw(st.integers(0, len(data)))]
    return b"\xef\xbb\xbf" + data if bom else data


MOONCAKE_KEYS = ("timestamp", "input_length", "output_length")


def _split(kind: str, line: str) -> list[str]:
    """A row's fields as text: CSV fields, or the raw JSON literals of a Mooncake row's three fields."""
    if kind != "mooncake":
        return line.split(",")
    import json

    record = json.loads(line)
    return [json.dumps(record[key]) for key in MOONCAKE_KEYS]


def _join(kind: str, fields: list[str]) -> str:
    if kind != "mooncake":
        return ",".join(fields)
    return "{" + ", ".join(f'"{key}": {value}' for key, value in zip(MOONCAKE_KEYS, fields)) + "}"


def _read(kind: str, path: Path, limit: int | None):
    if kind == "azure":
        return read_azure_llm(path, limit)
    if kind == "mooncake":
        return read_mooncake(path, limit)
    if kind == "alibaba":
        return read_alibaba_pods(path, limit=limit)
    return empirical_values.__wrapped__(str(path))  # uncached: the file changes with every example


def _check_requests(table: pd.DataFrame) -> None:
    assert list(table.columns) == ["arrival_s", "prompt_tokens", "output_tokens", "source_row", "copy"]
    arrival = table["arrival_s"].to_numpy()
    assert np.isfinite(arrival).all() and (arrival >= 0).all() and (arrival <= MAX_TRACE_TIME_S).all()
    assert (np.diff(arrival) >= 0).all()
    for column in ("prompt_tokens", "output_tokens"):
        tokens = table[column].to_numpy()
        assert tokens.dtype == np.int64 and (tokens >= 1).all() and (tokens <= MAX_TOKENS).all()
    assert (table["source_row"] >= 1).all() and (table["copy"] == 0).all()


def _check_jobs(table: pd.DataFrame) -> None:
    assert list(table.columns) == list(JOB_COLUMNS)
    arrival = table["arrival_s"].to_numpy()
    assert np.isfinite(arrival).all() and (arrival >= 0).all() and (arrival <= MAX_TRACE_TIME_S).all()
    assert (np.diff(arrival) >= 0).all()
    chips, share = table["chips"].to_numpy(), table["chip_share"].to_numpy()
    assert chips.dtype == np.int64 and (chips >= 0).all() and (chips <= MAX_GPUS_PER_POD).all()
    assert ((share > 0) & (share <= 1)).all()
    duration = table["duration_s"].to_numpy()
    finite = np.isfinite(duration)
    assert ((duration[finite] >= 0) & (duration[finite] <= MAX_TRACE_TIME_S)).all()
    assert (np.isnan(duration) | np.isposinf(duration) | finite).all()
    reason = table["reject_reason"]
    assert set(reason) <= {"", "cpu-only", "no-runtime-in-trace"}
    runnable = (reason == "").to_numpy()
    assert (chips[runnable] >= 1).all() and not np.isnan(duration[runnable]).any()


def _check(kind: str, data: bytes, folder: Path, limit: int | None) -> None:
    """The reader returns a valid table for ``data`` or raises TraceError; anything else fails the test."""
    path = folder / f"fuzz-{kind}.txt"
    path.write_bytes(data)
    try:
        table = _read(kind, path, limit)
    except TraceError as exc:
        message = str(exc)
        assert message.startswith(str(path)) and message.isprintable(), message
        assert len(message) < len(str(path)) + 400, message
        return
    assert len(table) >= 1 and (limit is None or kind == "empirical" or len(table) <= limit)
    if kind == "empirical":
        assert np.isfinite(table).all() and (table >= 0).all() and (table <= MAX_EMPIRICAL_VALUE).all()
    elif kind == "alibaba":
        _check_jobs(table)
    else:
        _check_requests(table)


LIMITS = st.one_of(st.none(), st.integers(1, 12))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def test_the_samples_read_as_they_are(folder):
    """Unmutated, every sample is a valid file (so the mutations, not the samples, cause the errors)."""
    for kind, lines in SAMPLES.items():
        path = folder / f"sample-{kind}.txt"
        path.write_text("\n".join(lines) + "\n")
        assert len(_read(kind, path, None)) == len(lines) - (kind != "mooncake")


@pytest.mark.parametrize("kind", SAMPLES)
@FUZZ
@given(data=st.binary(max_size=300), header=st.booleans(), limit=LIMITS)
def test_readers_survive_arbitrary_bytes(folder, kind, data, header, limit):
    prefix = (SAMPLES[kind][0] + "\n").encode() if header and kind != "mooncake" else b""
    _check(kind, prefix + data, folder, limit)


@pytest.mark.parametrize("kind", SAMPLES)
@FUZZ
@given(data=st.data(), limit=LIMITS)
def test_readers_survive_mutated_real_rows(folder, kind, data, limit):
    _check(kind, data.draw(mutated_files(kind)), folder, limit)


@FUZZ
@given(data=st.lists(st.sampled_from([b"a", b"bc", b"\r", b"\n", b"\r\n", b",", b"\xef\xbb\xbf"]), max_size=40)
       .map(b"".join), chunk_bytes=st.integers(1, 9))
def test_lines_split_as_universal_newlines_across_chunks(data, chunk_bytes):
    """Reading by chunks splits lines exactly as ``bytes.splitlines`` (LF, CRLF, CR), even when a chunk
    ends between the CR and the LF of a CRLF."""
    import io

    from sim.workload.files import _raw_lines

    assert list(_raw_lines(io.BytesIO(data), "x", chunk_bytes)) == data.splitlines(keepends=True)
