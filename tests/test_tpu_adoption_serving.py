"""The ready scenarios' serving claim: in tpu-adoption, chat moves off part of the H100s onto the rented TPU v6e
while the rental lasts and onto the owned TPU v7 as deliveries arrive (gpu-only moves it the same way onto H100s),
with the SLO met in every month (the README quotes both)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim
from tests.conftest import SCENARIOS


@pytest.fixture(scope="module")
def tpu_run():
    return sim.run(sim.load(SCENARIOS / "tpu-adoption.yaml"))


def _held(results, pool: str, start: str, end: str | None = None) -> np.ndarray:
    """Chips held by active chat replicas on ``pool`` in the hourly bins from ``start`` (to ``end``)."""
    ts = results.timeseries
    inside = ts["datetime"] >= pd.Timestamp(start)
    if end is not None:
        inside &= ts["datetime"] < pd.Timestamp(end)
    return ts.loc[inside, f"inference_chips.{pool}"].to_numpy()


def test_chat_is_served_on_the_tpus_only_while_they_are_there(tpu_run):
    contract, first_delivery = ("2026-04-01", "2027-06-30"), "2027-03-01"
    cloud, own, h100 = "tpu-cloud", "tpu-own", "h100"
    # rented TPU v6e: 16 replicas of 8 chips inside the contract, nothing outside it
    assert (_held(tpu_run, cloud, "2026-01-01", contract[0]) == 0).all()
    assert (_held(tpu_run, cloud, *contract) == 128).all()
    assert (_held(tpu_run, cloud, contract[1]) == 0).all()
    # owned TPU v7: nothing before the first delivery, 16 chips more at each delivery after
    assert (_held(tpu_run, own, "2026-01-01", first_delivery) == 0).all()
    for date, chips in (("2027-03-01", 16), ("2027-05-01", 32), ("2027-07-01", 48), ("2027-09-01", 64)):
        assert _held(tpu_run, own, date)[0] == chips, date
    assert np.all(np.diff(_held(tpu_run, own, first_delivery)) >= 0)
    # the H100s keep 40 replicas until the move, then 16: the other 192 chips go to training
    assert (_held(tpu_run, h100, "2026-01-01", contract[0]) == 320).all()
    assert (_held(tpu_run, h100, contract[0]) == 128).all()
    # and both TPU types serve a real share of the tokens
    chat = tpu_run.summary["inference"]["chat"]
    for accelerator in ("tpu-v6e", "tpu-v7"):
        assert chat["by_accelerator"][accelerator]["output_tokens"] > 0.15 * chat["output_tokens"], accelerator
    assert chat["requests"]["rejected"] == 0


def test_the_slo_holds_through_the_moves_in_every_month(tpu_run):
    """The README says chat meets its SLO for more than 99 % of requests in every month of both runs."""
    gpu_run = sim.run(sim.load(SCENARIOS / "gpu-only.yaml"))
    for results in (tpu_run, gpu_run):
        monthly = results.monthly.set_index("month")["slo_attainment.chat"]
        assert len(monthly) == 24
        assert (monthly > 0.99).all(), monthly[monthly <= 0.99]
