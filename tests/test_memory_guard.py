"""A run whose request tables cannot fit in memory says so before allocating them (one line, exit 2)."""

from __future__ import annotations

import pytest

from sim.cli import main
from sim.workload import memory
from sim.workload.memory import BYTES_PER_REQUEST, RunTooLargeError, available_bytes, ensure_requests_fit
from tests.conftest import SCENARIOS


def test_the_guard_compares_the_requests_with_the_budget():
    ensure_requests_fit(1000, "service 'chat'", budget=1000 * BYTES_PER_REQUEST)
    with pytest.raises(RunTooLargeError, match=r"service 'chat': about 1,001 requests .* accepted: .*fluid"):
        ensure_requests_fit(1001, "service 'chat'", budget=1000 * BYTES_PER_REQUEST)


def test_this_machine_reports_a_budget():
    assert available_bytes() > 100e6


@pytest.mark.parametrize("scenario", ["llm-serving-azure", "recsys-on-asics"])
def test_a_run_too_large_for_the_machine_stops_before_allocating(scenario, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(memory, "available_bytes", lambda: 10_000 * BYTES_PER_REQUEST)
    code = main(["run", str(SCENARIOS / f"{scenario}.yaml"), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "at request level need about" in err, err
    assert not (tmp_path / "out").exists()
