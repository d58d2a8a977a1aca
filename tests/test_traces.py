"""Trace readers: every Alibaba pod ends up counted somewhere; malformed rows name file and row."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import yaml

import sim
from sim.workload import TraceError, read_alibaba_pods, read_azure_llm, read_mooncake
from sim.workload.distributions import empirical_values
from tests.conftest import SCENARIOS, load_text, scenario_from

TRACES = Path(str(resources.files("sim.workload").joinpath("traces")))
HEADER = ("name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
          "creation_time,deletion_time,scheduled_time\n")


def test_alibaba_every_pod_classified():
    """Each pod lands in exactly one class, and each class's size matches the raw CSV, counted here
    independently of the reader."""
    import csv

    path = TRACES / "alibaba-gpu-2023" / "openb_pod_list_default.csv"
    raw = list(csv.DictReader(open(path)))
    gpu = [r for r in raw if int(r["num_gpu"]) > 0]
    jobs = read_alibaba_pods(path)
    assert len(jobs) == len(raw) == 8152  # SOURCE.md
    reason, duration = jobs["reject_reason"], jobs["duration_s"]
    assert (reason == "cpu-only").sum() == len(raw) - len(gpu) == 1088
    assert (reason == "no-runtime-in-trace").sum() == sum(r["pod_phase"] == "Pending" for r in gpu)
    assert np.isinf(duration).sum() == sum(r["pod_phase"] == "Running" for r in gpu)
    assert np.isfinite(duration).sum() == sum(r["pod_phase"] in ("Succeeded", "Failed") for r in gpu)
    shared = jobs["chip_share"] < 1
    assert shared.sum() == sum(r["num_gpu"] == "1" and int(r["gpu_milli"]) < 1000 for r in gpu)
    assert (jobs.loc[shared, "chips"] == 1).all()
    assert jobs["arrival_s"].is_monotonic_increasing


def test_alibaba_gpu_spec_becomes_allowed_accelerators():
    jobs = read_alibaba_pods(TRACES / "alibaba-gpu-2023" / "openb_pod_list_gpuspec33.csv")
    constrained = jobs["allowed_accelerators"] != ""
    assert 0.25 < constrained.mean() < 0.40
    assert "v100-16gb|v100-32gb" in set(jobs["allowed_accelerators"])


@pytest.mark.parametrize("row, message", [
    ("p1,1000,100,one,1000,,LS,Running,0,10,0\n", "column 'num_gpu': expected int, found 'one'"),
    ("p1,1000,100,1,1500,,LS,Running,0,10,0\n", "column 'gpu_milli': must be 0..1000"),
    ("p1,1000,100,1,1000,,LS,Sleeping,0,10,0\n", "column 'pod_phase': found 'Sleeping'"),
    ("p1,1000,100,1,1000,H9000,LS,Running,0,10,0\n", "unknown GPU model 'H9000'"),
    ("p1,1000,100,1,1000,,LS,Succeeded,0,5,8\n", "needs deletion_time >= scheduled_time"),
])
def test_malformed_row_names_file_and_row(tmp_path, row, message):
    path = tmp_path / "pods.csv"
    path.write_text(HEADER + "p0,1000,100,1,1000,,LS,Running,0,10,0\n" + row)
    with pytest.raises(TraceError) as info:
        read_alibaba_pods(path)
    assert str(info.value).startswith(f"{path}:3: ")
    assert message in str(info.value)


def test_missing_column_is_reported(tmp_path):
    path = tmp_path / "pods.csv"
    path.write_text("name,num_gpu\np0,1\n")
    with pytest.raises(TraceError, match="missing column"):
        read_alibaba_pods(path)


def test_philly_runtime_distribution():
    values = empirical_values("philly-runtime")
    assert len(values) == 83154  # SOURCE.md
    assert np.median(values) == pytest.approx(1186, abs=1)
    assert values.max() == 4628239


def test_empirical_csv_bad_value(tmp_path):
    (tmp_path / "d.csv").write_text("runtime\n1\nfast\n")
    with pytest.raises(ValueError, match=r"d.csv:3: expected a number, found 'fast'"):
        empirical_values("d.csv", str(tmp_path))


# --- hostile data files: every problem is a TraceError naming the file (and row, column), never a traceback,
# a hang or a read of the whole file -----------------------------------------------------------------------

AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
AZURE_ROW = "2023-11-16 18:15:46.6805900,374,44\n"
MOONCAKE_ROW = '{"timestamp": 0, "input_length": 10, "output_length": 2}\n'
POD_ROW = "p0,1000,100,1,1000,,LS,Running,0,10,0\n"
READERS = {
    "azure": read_azure_llm,
    "mooncake": read_mooncake,
    "alibaba": read_alibaba_pods,
    "empirical": lambda path: empirical_values.__wrapped__(str(path)),  # uncached: each test writes a new file
}
GOOD_TEXT = {"azure": AZURE_HEADER + AZURE_ROW, "mooncake": MOONCAKE_ROW, "alibaba": HEADER + POD_ROW,
             "empirical": "runtime\n5\n"}


@contextmanager
def no_hang(seconds: float = 5.0):
    """Fail (instead of blocking forever) when the body runs longer than ``seconds``."""
    def expire(*_):
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _make_directory(tmp_path, reader):
    (tmp_path / "d.csv").mkdir()
    return tmp_path / "d.csv", "is a directory, not a regular file"


def _make_empty(tmp_path, reader):
    (tmp_path / "e.csv").write_bytes(b"")
    return tmp_path / "e.csv", "empty file (0 bytes)"


def _make_fifo(tmp_path, reader):
    os.mkfifo(tmp_path / "f.csv")
    return tmp_path / "f.csv", "is a FIFO (named pipe), not a regular file"


def _make_device(tmp_path, reader):
    return Path("/dev/zero"), "/dev/zero: is a character device, not a regular file"


def _make_long_name(tmp_path, reader):
    return tmp_path / ("x" * 5000), "cannot open: File name too long"


def _make_long_path(tmp_path, reader):
    return tmp_path.joinpath(*["y" * 99] * 50), "cannot open: File name too long"


def _make_latin1(tmp_path, reader):
    """A good file, then a line in Latin-1."""
    (tmp_path / "l.csv").write_bytes(GOOD_TEXT[reader].encode() + "caf\xe9\n".encode("latin-1"))
    return tmp_path / "l.csv", f":{GOOD_TEXT[reader].count(chr(10)) + 1}: byte 0xe9 at character 4 is not UTF-8"


def _make_binary(tmp_path, reader):
    """A good file, then binary bytes."""
    (tmp_path / "b.csv").write_bytes(GOOD_TEXT[reader].encode() + b"\x00\x01\x02\n")
    line = GOOD_TEXT[reader].count("\n") + 1
    return tmp_path / "b.csv", f":{line}: a NUL character at character 1: binary data, not text"


PATH_CASES = [_make_directory, _make_empty, _make_fifo, _make_device, _make_long_name, _make_long_path,
              _make_latin1, _make_binary]


@pytest.mark.parametrize("make", PATH_CASES, ids=lambda f: f.__name__[6:])
@pytest.mark.parametrize("reader", READERS, ids=str)
def test_unreadable_data_file_is_a_located_error(tmp_path, reader, make):
    path, message = make(tmp_path, reader)
    with no_hang(), pytest.raises(TraceError) as info:
        READERS[reader](path)
    text = str(info.value)
    assert message in text, text
    if len(str(path)) < 200:
        assert text.startswith(f"{path}"), text
    else:  # a very long path is quoted shortly, with its length
        assert len(text) < 300 and f"({len(str(path)):,} characters)" in text, text


@pytest.mark.parametrize("reader", READERS, ids=str)
def test_data_file_above_the_size_limit_is_refused(tmp_path, monkeypatch, reader):
    import sim.workload.files as files

    path = tmp_path / "big.csv"
    path.write_text(GOOD_TEXT[reader])
    limit = path.stat().st_size - 1
    monkeypatch.setattr(files, "MAX_DATA_FILE_BYTES", limit)
    with pytest.raises(TraceError) as info:
        READERS[reader](path)
    assert str(info.value).startswith(f"{path}: {limit + 1:,} bytes; accepted: at most {limit:,} bytes"), info.value


@pytest.mark.parametrize("reader", READERS, ids=str)
def test_huge_file_is_refused_before_reading(tmp_path, reader):
    """A sparse file just over the limit: reading it whole would take seconds and gigabytes."""
    path = tmp_path / "huge.csv"
    with open(path, "wb") as handle:
        handle.write(GOOD_TEXT[reader].encode())
        handle.truncate(2 * 1024 ** 3 + 1)
    with no_hang(2.0), pytest.raises(TraceError) as info:
        READERS[reader](path)
    assert str(info.value) == (f"{path}: 2,147,483,649 bytes; accepted: at most 2,147,483,648 bytes (2 GiB; "
                               f"take the rows you need into a smaller file)")


def test_default_size_limit_is_two_gib():
    from sim.workload.files import MAX_DATA_FILE_BYTES

    assert MAX_DATA_FILE_BYTES == 2 * 1024 ** 3


@pytest.mark.parametrize("reader", ["azure", "alibaba", "empirical", "mooncake"])
def test_a_line_without_end_is_not_read_whole(tmp_path, monkeypatch, reader):
    import sim.workload.files as files

    monkeypatch.setattr(files, "MAX_LINE_BYTES", 1000)
    path = tmp_path / "t.csv"
    path.write_text(GOOD_TEXT[reader] + "9" * 5000)
    with pytest.raises(TraceError) as info:
        READERS[reader](path)
    assert str(info.value).startswith(f"{path}:") and "longer than 1,000 bytes" in str(info.value)


@pytest.mark.parametrize("reader, text, message", [
    ("azure", AZURE_HEADER, "no requests (the file has a header and no rows)"),
    ("azure", "\n\n", "no header; expected columns TIMESTAMP, ContextTokens, GeneratedTokens"),
    ("mooncake", "\n \n", "no requests"),
    ("alibaba", HEADER, "no pods (the file has a header and no rows)"),
    ("empirical", "runtime\n", "no values"),
])
def test_file_without_rows_is_an_error(tmp_path, reader, text, message):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(TraceError) as info:
        READERS[reader](path)
    assert str(info.value).startswith(f"{path}") and message in str(info.value)


@pytest.mark.parametrize("row, message", [
    ("2023-11-16 18:15:47.0000000,-5,3", "column 'ContextTokens': expected at least 1, found -5"),
    ("2023-11-16 18:15:47.0000000,nan,3", "column 'ContextTokens': expected a whole number of tokens, found 'nan'"),
    ("2023-11-16 18:15:47.0000000,inf,3", "column 'ContextTokens': expected a whole number of tokens, found 'inf'"),
    ("2023-11-16 18:15:47.0000000,1e20,3", "column 'ContextTokens': expected at most 10,000,000 tokens "
                                          "(longer than any model's context window), found '1e20'"),
    ("2023-11-16 18:15:47.0000000,12,100000000000000000000", "column 'GeneratedTokens': expected at most"),
    ("2023-11-16 18:15:47.0000000,12.5,3", "expected a whole number of tokens, found '12.5'"),
    ("2023-02-30 18:15:47.0000000,12,3", "column 'TIMESTAMP': expected 'YYYY-MM-DD HH:MM:SS.fffffff', "
                                         "found '2023-02-30 18:15:47.0000000'"),
    (",12,3", "column 'TIMESTAMP': expected 'YYYY-MM-DD HH:MM:SS.fffffff', found ''"),
    ("2023-11-16 18:15:47.0000000,12", "found 2 fields; the header has 3"),
    ("2023-11-16 18:15:47.0000000,12,3,4", "found 4 fields; the header has 3"),
    ("2023-11-16 18:15:40.0000000,12,3", "arrivals must not go back in time"),
    ('"2023-11-16 18:15:47.0000000,12,3', "not a valid CSV row"),
])
def test_azure_bad_values_are_located(tmp_path, row, message):
    path = tmp_path / "t.csv"
    path.write_text(AZURE_HEADER + AZURE_ROW + row + "\n" + "x" * 200_000 * row.startswith('"'))
    with pytest.raises(TraceError) as info:
        read_azure_llm(path)
    assert str(info.value).startswith(f"{path}:3: ") and message in str(info.value), str(info.value)


def test_azure_time_span_above_the_limit_names_the_bound(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(AZURE_HEADER + AZURE_ROW + "2262-01-01 00:00:00.0000000,12,3\n")
    with pytest.raises(TraceError) as info:
        read_azure_llm(path)
    assert "s after the first request; accepted: at most 1,000,000,000 s (about 32 years)" in str(info.value)


@pytest.mark.parametrize("reader, text", [
    ("azure", AZURE_HEADER + AZURE_ROW),
    ("alibaba", HEADER + POD_ROW),
    ("mooncake", MOONCAKE_ROW),
    ("empirical", "runtime\n5\n"),
])
def test_utf8_byte_order_mark_is_accepted(tmp_path, reader, text):
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert len(READERS[reader](path)) == 1


@pytest.mark.parametrize("line, message", [
    ('{"timestamp": 5, "input_length": 1e400, "output_length": 2}',
     "column 'input_length': expected a whole number of tokens, found inf"),
    ('{"timestamp": 5, "input_length": 100000000000000000000, "output_length": 2}',
     "column 'input_length': expected at most 10,000,000 tokens (longer than any model's context window), "
     "found 100000000000000000000"),
    ('{"timestamp": 5, "input_length": 10, "output_length": -3}', "column 'output_length': expected at least 1"),
    ('{"timestamp": 5, "input_length": 10, "output_length": NaN}', "column 'output_length': expected a whole"),
    ('{"timestamp": 5, "input_length": "10", "output_length": 2}', "expected a whole number of tokens, found '10'"),
    ('{"timestamp": 5, "input_length": true, "output_length": 2}', "expected a whole number of tokens, found True"),
    ('{"timestamp": 1e400, "input_length": 10, "output_length": 2}', "field 'timestamp': expected milliseconds"),
    ('{"timestamp": NaN, "input_length": 10, "output_length": 2}', "field 'timestamp': expected milliseconds"),
    ('{"timestamp": 100000000000000000000, "input_length": 10, "output_length": 2}',
     "field 'timestamp': expected milliseconds from 0 to 1,000,000,000,000 (about 32 years), "
     "found 100000000000000000000"),
    ("[" * 100_000 + "]" * 100_000, "not valid JSON (nested too deeply)"),
    ('{"timestamp": ' + "9" * 5000 + ', "input_length": 10, "output_length": 2}',
     "not valid JSON (a number with too many digits)"),
])
def test_mooncake_bad_values_are_located(tmp_path, line, message):
    path = tmp_path / "t.jsonl"
    path.write_text(MOONCAKE_ROW + line + "\n")
    with pytest.raises(TraceError) as info:
        read_mooncake(path)
    assert str(info.value).startswith(f"{path}:2: ") and message in str(info.value), str(info.value)


@pytest.mark.parametrize("row, message", [
    ("p1,1000,100,100000000000000000000,1000,,LS,Running,0,10,0",
     "column 'num_gpu': expected at most 100,000 GPUs (more than any cluster), found '100000000000000000000'"),
    ("p1,1000,100,-1,1000,,LS,Running,0,10,0", "column 'num_gpu': must not be negative, found '-1'"),
    ("p1,1000,100,nan,1000,,LS,Running,0,10,0", "column 'num_gpu': expected int, found 'nan'"),
    ("p1,1000,100,1,1000,,LS,Running,100000000000000000000,10,0",
     "column 'creation_time': expected at most 1,000,000,000 s (about 32 years)"),
    ("p1,1000,100,1,1000,,LS,Succeeded,0,100000000000000000000,0", "column 'deletion_time': expected at most"),
    ("p1,1000,100,1", "found 4 fields; the header has 11"),
    ("p1,1000,100,1,1000,,LS,Running,0,10,0," + "x" * 200_000, "not a valid CSV row"),
])
def test_alibaba_bad_values_are_located(tmp_path, row, message):
    path = tmp_path / "pods.csv"
    path.write_text(HEADER + POD_ROW + row + "\n")
    with pytest.raises(TraceError) as info:
        read_alibaba_pods(path)
    assert str(info.value).startswith(f"{path}:3: ") and message in str(info.value), str(info.value)


def test_alibaba_time_scale_may_not_push_times_out_of_range(tmp_path):
    path = tmp_path / "pods.csv"
    path.write_text(HEADER + "p0,1000,100,1,1000,,LS,Succeeded,1000,2000,1000\n")
    with pytest.raises(TraceError) as info:
        read_alibaba_pods(path, time_scale=1e300)
    assert str(info.value).startswith(f"{path}:2: column 'creation_time': 1000 s × time_scale 1e+300"), info.value


@pytest.mark.parametrize("text, message", [
    ("runtime\n1e300\n", "d.csv:2: expected a number from 0 to 1e+15"),
    ("runtime\n-1\n", "d.csv:2: expected a number from 0 to 1e+15"),
    ("runtime\ninf\n", "d.csv:2: expected a number from 0 to 1e+15"),
])
def test_empirical_values_are_bounded(tmp_path, text, message):
    (tmp_path / "d.csv").write_text(text)
    with pytest.raises(TraceError, match=re.escape(message)):
        empirical_values.__wrapped__("d.csv", str(tmp_path))


HOSTILE = "\x1b[31m\r\n\u202e" + "z" * 10_000


@pytest.mark.parametrize("reader, text", [
    ("azure", AZURE_HEADER + AZURE_ROW + '"' + HOSTILE + '",1,1\n'),
    ("alibaba", HEADER + POD_ROW + 'p1,1000,100,1,1000,,LS,"' + HOSTILE + '",0,10,0\n'),
    ("alibaba", HEADER + POD_ROW + 'p1,1000,100,"' + HOSTILE + '",1000,,LS,Running,0,10,0\n'),
    ("alibaba", HEADER + POD_ROW + 'p1,1000,100,1,1000,"' + HOSTILE + '",LS,Running,0,10,0\n'),
    ("mooncake", MOONCAKE_ROW + json.dumps({"timestamp": HOSTILE, "input_length": 1, "output_length": 1}) + "\n"),
    ("mooncake", MOONCAKE_ROW + json.dumps({"timestamp": 1, "input_length": HOSTILE, "output_length": 1}) + "\n"),
    ("empirical", "runtime\n5\n" + HOSTILE.replace("\r\n", "") + "\n"),  # no line break: one line
])
def test_errors_quote_a_short_escaped_prefix_of_the_data(tmp_path, reader, text):
    path = tmp_path / "t.csv"
    path.write_text(text, newline="")
    with pytest.raises(TraceError) as info:
        READERS[reader](path)
    message = str(info.value)
    assert message.startswith(f"{path}:") and len(message) < len(str(path)) + 250, message
    assert message.isprintable() and "\\x1b[31m" in message and "z" * 61 not in message, message


@pytest.mark.parametrize("reader, name", [
    (read_azure_llm, "azure-llm-2023/AzureLLMInferenceTrace_conv.csv"),
    (read_mooncake, "mooncake-fast25/conversation_trace.jsonl"),
    (read_alibaba_pods, "alibaba-gpu-2023/openb_pod_list_default.csv"),
])
def test_row_limit_reads_the_first_rows_only(tmp_path, reader, name):
    whole = reader(TRACES / name)
    first = reader(TRACES / name, limit=7)
    assert len(first) == 7
    if reader is read_alibaba_pods:  # job tables are sorted by arrival: compare the pods read
        names = [line.split(",")[0] for line in (TRACES / name).read_text().splitlines()[1:8]]
        assert sorted(first["job_id"]) == sorted(names)
    else:
        assert first.equals(whole.head(7))
    assert len(reader(TRACES / name, limit=10 ** 9)) == len(whole)
    # rows after the limit are not read, so a bad one there is no error
    text = (TRACES / name).read_text().splitlines(keepends=True)
    (tmp_path / "t").write_text("".join(text[:4]) + "\n" + "garbage,\n")
    assert len(reader(tmp_path / "t", limit=3)) == 3
    with pytest.raises(TraceError):
        reader(tmp_path / "t")


def test_resolve_trace_path_with_a_very_long_path_is_a_trace_error(tmp_path):
    from sim.workload import resolve_trace_path

    with pytest.raises(TraceError, match="cannot look up"):
        resolve_trace_path("x" * 5000, tmp_path)
    with pytest.raises(FileNotFoundError, match="trace file 'nope.csv' not found"):
        resolve_trace_path("nope.csv", tmp_path)


# --- a scenario that points to a bad data file fails at validation, located in the scenario and in the file ---

SCENARIO = """\
schema_version: 1
name: t
start: 2026-01-01
duration: 1d
fleet:
  - name: gpu
    accelerator: h100-sxm
    count: 8
workloads:
  training:
"""
TRACE = SCENARIO + "    trace: {format: alibaba-gpu-2023, path: PATH}\n"
EMPIRICAL = SCENARIO + """\
    generator:
      jobs: 5
      arrival_rate_per_hour: 1
      chips: {1: 1.0}
      models: {resnet50: 1.0}
      duration_s: {empirical: PATH}
"""


def _problems(tmp_path, text: str) -> list[str]:
    with no_hang(), pytest.raises(sim.ScenarioError) as info:
        load_text(tmp_path, text)
    return [str(p) for p in info.value.problems]


def test_trace_that_is_a_directory_fails_validation(tmp_path):
    (tmp_path / "pods").mkdir()
    problems = _problems(tmp_path, TRACE.replace("PATH", "pods"))
    assert problems == [f"{tmp_path}/s.yaml:11 workloads.training.trace.path: "
                        f"{tmp_path}/pods: is a directory, not a regular file"]


def test_trace_that_is_a_fifo_fails_validation_without_hanging(tmp_path):
    os.mkfifo(tmp_path / "pods.csv")
    problems = _problems(tmp_path, TRACE.replace("PATH", "pods.csv"))
    assert problems == [f"{tmp_path}/s.yaml:11 workloads.training.trace.path: "
                        f"{tmp_path}/pods.csv: is a FIFO (named pipe), not a regular file"]


def test_bad_row_inside_a_trace_fails_validation_with_both_locations(tmp_path):
    (tmp_path / "pods.csv").write_text(HEADER + POD_ROW + "p1,1000,100,1,1000,H9000,LS,Running,0,10,0\n")
    problems = _problems(tmp_path, TRACE.replace("PATH", "pods.csv"))
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path}/s.yaml:11 workloads.training.trace.path: "
                                  f"{tmp_path}/pods.csv:3: column 'gpu_spec': unknown GPU model 'H9000'")


def test_trace_path_of_5000_characters_fails_validation(tmp_path):
    problems = _problems(tmp_path, TRACE.replace("PATH", "x" * 5000))
    assert len(problems) == 1 and len(problems[0]) < 400
    assert problems[0].startswith(f"{tmp_path}/s.yaml:11 workloads.training.trace.path: ") and "5,0" in problems[0]


@pytest.mark.parametrize("name, message", [
    ("/dev/zero", "/dev/zero: is a character device, not a regular file"),
    ("x" * 5000, "cannot open: File name too long"),
    ("d.csv", "d.csv: empty file (0 bytes)"),
])
def test_bad_empirical_file_fails_validation(tmp_path, name, message):
    (tmp_path / "d.csv").write_bytes(b"")
    problems = _problems(tmp_path, EMPIRICAL.replace("PATH", name))
    assert len(problems) == 1 and len(problems[0]) < 400
    assert problems[0].startswith(f"{tmp_path}/s.yaml:16 workloads.training.generator.duration_s.empirical: ")
    assert message in problems[0], problems[0]


def test_bad_request_trace_fails_validation_with_both_locations(tmp_path):
    data = yaml.safe_load((SCENARIOS / "llm-serving-azure.yaml").read_text())
    data["workloads"]["inference"][0]["traffic"]["trace"]["path"] = "t.csv"
    (tmp_path / "t.csv").write_text(AZURE_HEADER + AZURE_ROW + "2023-11-16 18:15:47.0000000,1e20,3\n")
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(data, tmp_path)
    (problem,) = [str(p) for p in info.value.problems]
    assert re.match(rf"{re.escape(str(tmp_path))}/s.yaml:\d+ workloads.inference\[0\].traffic.trace.path: "
                    rf"{re.escape(str(tmp_path))}/t.csv:3: column 'ContextTokens': expected at most", problem), problem


def test_cli_reports_a_fifo_trace_without_traceback_or_hang(tmp_path):
    os.mkfifo(tmp_path / "pods.csv")
    (tmp_path / "s.yaml").write_text(TRACE.replace("PATH", "pods.csv"))
    result = subprocess.run([sys.executable, "-m", "sim", "run", "s.yaml"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "s.yaml:11 workloads.training.trace.path: pods.csv: is a FIFO" in result.stderr, result.stderr


def test_a_path_with_control_characters_is_shown_escaped(tmp_path):
    path = tmp_path / "a\x1b[2J\nb.csv"
    path.write_text("")
    with pytest.raises(TraceError) as info:
        read_azure_llm(path)
    assert str(info.value) == f"{str(path)!r}: empty file (0 bytes)"


def test_bad_empirical_file_of_a_request_generator_fails_validation(tmp_path):
    data = yaml.safe_load((SCENARIOS / "llm-serving-azure.yaml").read_text())
    data["workloads"]["inference"][0]["traffic"] = {"generator": {
        "rate_per_s": 1, "prompt_tokens": {"empirical": "/dev/zero"}, "output_tokens": {"empirical": "lengths.csv"}}}
    (tmp_path / "lengths.csv").write_text("tokens\n12\n1e300\n")
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(data, tmp_path)
    problems = [str(p) for p in info.value.problems]
    assert len(problems) == 2, problems
    assert re.match(r".*s.yaml:\d+ workloads.inference\[0\].traffic.generator.prompt_tokens.empirical: "
                    r"/dev/zero: is a character device, not a regular file$", problems[0]), problems
    assert re.match(r".*s.yaml:\d+ workloads.inference\[0\].traffic.generator.output_tokens.empirical: "
                    r".*lengths.csv:3: expected a number from 0 to 1e\+15", problems[1]), problems


@pytest.mark.parametrize("reader", READERS, ids=str)
@pytest.mark.parametrize("line_end", ["\r\n", "\r"])
def test_crlf_and_cr_line_ends_are_accepted(tmp_path, reader, line_end):
    path = tmp_path / "t.csv"
    path.write_bytes(GOOD_TEXT[reader].replace("\n", line_end).encode())
    assert len(READERS[reader](path)) == 1
