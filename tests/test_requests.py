"""Inference request traces: readers name file and row on bad input; scaling keeps the trace's shape."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from sim.kernels.queueing import erlang_c, mmc_mean_wait_s
from sim.workload.errors import TraceError
from sim.workload.requests import read_azure_llm, read_mooncake, scale_requests

TRACES = Path(str(resources.files("sim.workload").joinpath("traces")))
AZURE_CONV = TRACES / "azure-llm-2023" / "AzureLLMInferenceTrace_conv.csv"
AZURE_CODE = TRACES / "azure-llm-2023" / "AzureLLMInferenceTrace_code.csv"
MOONCAKE = TRACES / "mooncake-fast25" / "conversation_trace.jsonl"


def test_azure_traces_match_their_source_notes():
    conv, code = read_azure_llm(AZURE_CONV), read_azure_llm(AZURE_CODE)
    assert len(conv) == 19366 and len(code) == 8819  # SOURCE.md row counts
    assert conv["prompt_tokens"].median() == 1020 and conv["output_tokens"].max() == 1000
    assert code["prompt_tokens"].median() == 1469
    assert 58 * 60 < conv["arrival_s"].max() < 59 * 60  # 58 min 22 s
    assert conv["arrival_s"].iloc[0] == 0 and conv["arrival_s"].is_monotonic_increasing


def test_mooncake_trace_matches_its_source_notes():
    trace = read_mooncake(MOONCAKE)
    assert len(trace) == 12031
    assert trace["arrival_s"].max() == pytest.approx(3536.999)
    assert trace["prompt_tokens"].mean() == pytest.approx(12035, abs=1)


@pytest.mark.parametrize("row, message", [
    ("2023-11-16 18:15:47.0000000,12,x\n", "column 'GeneratedTokens': expected a whole number of tokens, found 'x'"),
    ("yesterday,12,3\n", "column 'TIMESTAMP': expected 'YYYY-MM-DD HH:MM:SS.fffffff', found 'yesterday'"),
    ("2023-11-16 18:15:47.0000000,0,3\n", "column 'ContextTokens': expected at least 1, found 0"),
])
def test_azure_malformed_row_names_file_and_row(tmp_path, row, message):
    path = tmp_path / "t.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n" + row)
    with pytest.raises(TraceError) as info:
        read_azure_llm(path)
    assert str(info.value).startswith(f"{path}:3: ") and message in str(info.value)


@pytest.mark.parametrize("line, message", [
    ('{"timestamp": 5, "input_length": 10}', "missing field 'output_length'"),
    ('{"timestamp": -1, "input_length": 10, "output_length": 2}', "field 'timestamp'"),
    ('{"timestamp": 5, "input_length": 1.5, "output_length": 2}', "column 'input_length'"),
    ("not json", "not valid JSON"),
])
def test_mooncake_malformed_row_names_file_and_row(tmp_path, line, message):
    path = tmp_path / "t.jsonl"
    path.write_text('{"timestamp": 0, "input_length": 10, "output_length": 2}\n' + line + "\n")
    with pytest.raises(TraceError) as info:
        read_mooncake(path)
    assert str(info.value).startswith(f"{path}:2: ") and message in str(info.value)


def test_scaling_by_superposition():
    trace = read_azure_llm(AZURE_CONV)
    scaled = scale_requests(trace, 100, np.random.default_rng(1))
    assert len(scaled) == 100 * len(trace) == 1_936_600
    assert scaled["arrival_s"].is_monotonic_increasing
    assert scaled["arrival_s"].min() >= 0 and scaled["arrival_s"].max() <= trace["arrival_s"].max()
    # every copy holds the original requests, so the length mix is the trace's own
    assert np.array_equal(np.sort(scaled["prompt_tokens"].to_numpy()),
                          np.sort(np.tile(trace["prompt_tokens"].to_numpy(), 100)))
    assert sorted(set(scaled["copy"])) == list(range(100))
    # copies are shifted: their per-minute arrival counts do not line up with the original's
    minute = (scaled["arrival_s"] // 60).astype(int)
    original = np.bincount(minute[scaled["copy"] == 0], minlength=60)
    shifted = np.bincount(minute[scaled["copy"] == 1], minlength=60)
    assert not np.array_equal(original, shifted)


def test_fractional_scale_and_determinism():
    trace = read_azure_llm(AZURE_CODE)
    a = scale_requests(trace, 2.5, np.random.default_rng(7))
    b = scale_requests(trace, 2.5, np.random.default_rng(7))
    assert a.equals(b)
    assert abs(len(a) - 2.5 * len(trace)) < 4 * np.sqrt(0.25 * len(trace))  # binomial thinning, 4 sigma
    with pytest.raises(ValueError):
        scale_requests(trace, 0, np.random.default_rng(0))


def test_erlang_c_known_values():
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert mmc_mean_wait_s(0.5, 1.0, 1) == pytest.approx(1.0)  # rho / (mu - lambda)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)  # textbook: a=1, c=2
    assert erlang_c(10, 8.0) == pytest.approx(0.4092, abs=1e-4)
    assert erlang_c(500, 450.0) < 0.05 and 0 < erlang_c(500, 495.0) < 1  # no overflow at large c
    assert mmc_mean_wait_s(3.0, 1.0, 3) == float("inf")
