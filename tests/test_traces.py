"""Trace readers: every Alibaba pod ends up counted somewhere; malformed rows name file and row."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from sim.workload import TraceError, read_alibaba_pods
from sim.workload.distributions import empirical_values

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
