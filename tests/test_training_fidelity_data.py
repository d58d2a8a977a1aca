"""The packaged training-fidelity data (benchmarks/data/training_fidelity.csv) is well formed and attributed.

Each row is one published measurement (a paper's table or an MLPerf log); these checks catch transcription slips
that would silently bias the step-time calibration: a layout that does not multiply out to the chip count, a
chip id the catalog does not know, a percentage left as a percentage, a row whose source is not documented.
"""

from __future__ import annotations

import csv
import re

import pytest

from sim.catalog import builtin_catalog
from tests.conftest import REPO

DATA = REPO / "benchmarks" / "data" / "training_fidelity.csv"
SOURCE = REPO / "benchmarks" / "data" / "training_fidelity.SOURCE.md"
COLUMNS = ["case", "source", "model", "params", "active_params", "layers", "hidden", "heads", "ffn_hidden", "vocab",
           "seq_len", "global_batch", "micro_batch", "accelerator", "chips", "tp", "pp", "dp", "cp", "ep", "zero",
           "recompute", "metric", "measured", "tokens", "note"]
METRICS = {"mfu", "tflops_per_chip", "step_s", "time_to_train_min"}
REQUIRED_INTS = ["layers", "hidden", "heads", "ffn_hidden", "vocab", "seq_len", "global_batch", "chips",
                 "tp", "pp", "dp", "cp", "ep"]


def _read() -> tuple[list[str], list[dict[str, str]]]:
    with DATA.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


HEADER, ROWS = _read()
IDS = [row["case"] for row in ROWS]
ACCELERATORS = builtin_catalog().accelerators


def test_exact_columns_and_enough_unique_rows():
    assert HEADER == COLUMNS
    assert len(ROWS) >= 25
    assert len(set(IDS)) == len(IDS), "case ids are unique"
    assert all(None not in row and all(value is not None for value in row.values()) for row in ROWS), "ragged row"


def test_every_source_family_is_present():
    keys = {row["source"].split()[0] for row in ROWS}
    assert {"NARAYANAN2021", "KORTHIKANTI2022", "MEGASCALE2024"} <= keys
    assert any(key.startswith("MLPERF-") for key in keys)
    vendors = {row["accelerator"] for row in ROWS if row["source"].startswith("MLPERF-")}
    assert {"h100-sxm", "tpu-v5e", "tpu-v5p"} <= vendors, "MLPerf rows give the GPU-against-TPU ordering"


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_row_is_well_formed(row):
    for name in REQUIRED_INTS:
        assert re.fullmatch(r"[1-9]\d*", row[name]), f"{name}: {row[name]!r} is not a positive integer"
    if row["micro_batch"]:
        assert int(row["micro_batch"]) >= 1
    assert float(row["params"]) > 0 and 0 < float(row["active_params"]) <= float(row["params"])
    assert row["zero"] in {"", "0", "1", "2", "3"}
    assert row["recompute"] in {"", "none", "selective", "full"}
    assert int(row["seq_len"]) >= 512 and int(row["vocab"]) >= 1000
    assert row["note"].strip(), "every row says what the columns cannot"


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_layout_multiplies_out_to_the_chip_count(row):
    tp, pp, dp, cp, ep = (int(row[name]) for name in ("tp", "pp", "dp", "cp", "ep"))
    # expert parallelism re-uses data-parallel ranks (Megatron/MaxText convention): it divides dp, not the gang
    assert tp * pp * dp * cp == int(row["chips"])
    assert dp % ep == 0
    assert int(row["layers"]) >= pp, "a pipeline no deeper than the model"
    global_batch = int(row["global_batch"])
    assert global_batch % dp == 0, "each data-parallel replica gets whole sequences"
    if row["micro_batch"]:
        assert (global_batch // dp) % int(row["micro_batch"]) == 0


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_accelerator_is_a_catalog_id_and_metric_is_in_range(row):
    accelerators = ACCELERATORS
    assert row["accelerator"] in accelerators
    metric, measured = row["metric"], float(row["measured"])
    assert metric in METRICS
    if metric == "mfu":
        assert 0 < measured < 1, "MFU is a fraction, not a percentage"
    elif metric == "tflops_per_chip":
        assert 0 < measured < accelerators[row["accelerator"]].bf16_tflops
    else:
        assert measured > 0
    if metric == "time_to_train_min":
        tokens = int(row["tokens"])
        # the run trains whole global batches of full sequences
        assert tokens % (int(row["global_batch"]) * int(row["seq_len"])) == 0
    else:
        assert row["tokens"] == ""


def test_every_source_key_is_documented_with_its_row_count():
    text = SOURCE.read_text(encoding="utf-8")
    sections = re.findall(r"^### ([A-Z0-9, -]+): (\d+) rows", text, re.M)
    counts = {}
    for heading, count in sections:
        keys = tuple(key.strip() for key in heading.split(","))
        counts[keys] = sum(row["source"].split()[0] in keys for row in ROWS)
        assert counts[keys] == int(count), f"{heading}: SOURCE.md says {count} rows, the CSV has {counts[keys]}"
    documented = {key for keys in counts for key in keys}
    missing = {row["source"].split()[0] for row in ROWS} - documented
    assert not missing, f"source keys without a section in {SOURCE.name}: {sorted(missing)}"
    assert f"holds {len(ROWS)} rows" in text
