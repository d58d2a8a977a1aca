"""Chip prices: every catalog chip has a purchase price, owned pools pay it amortized and rented pools
their rental rate, a scenario may override either per pool, and a chip with neither is a located error."""

from __future__ import annotations

import pytest

import sim
from sim.catalog import builtin_catalog
from sim.cli import main
from sim.fleet import build_fleet
from sim.fleet.build import HOURS_PER_YEAR
from sim.validation.checks import scenario_catalog
from tests.conftest import load_text, scenario_from

CATALOG = builtin_catalog()
AMORTIZATION_H = CATALOG.site_defaults["amortization_years"] * HOURS_PER_YEAR


def owned_rate(price: float) -> float:
    """An owned chip-hour at the catalog's site defaults: the chip's price amortized, plus its maintenance
    (the server, rack and installation share is not in it)."""
    return price / AMORTIZATION_H + price * CATALOG.site_defaults["maintenance_frac_per_year"] / HOURS_PER_YEAR

CUSTOM = """\
schema_version: 1
name: t
start: 2026-01-01
duration: 1d
accelerators:
  - {id: my-chip, bf16_tflops: 100, memory_gb: 16, memory_bandwidth_tbps: 1, tdp_w: 100, idle_w: 10,
     scale_up_bandwidth_gbps: 10, scale_up_domain_chips: 8, scale_out_bandwidth_gbps: 1, stacks: {portable: 0.3}}
fleet:
  - name: mine
    accelerator: my-chip
    count: 8
"""


def errors_of(tmp_path, text: str) -> list[str]:
    with pytest.raises(sim.ScenarioError) as info:
        load_text(tmp_path, text)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize("accel", sorted(CATALOG.accelerators))
def test_every_catalog_chip_has_a_sourced_purchase_price(accel):
    spec = CATALOG.accelerators[accel]
    assert spec.price_usd is not None and spec.price_usd > 0
    assert spec.sources["price_usd"]  # a source key or 'estimate: ...' (checked by test_catalog)


def test_owned_pool_without_a_price_names_the_field_to_set(tmp_path):
    errors = errors_of(tmp_path, CUSTOM)
    assert len(errors) == 1
    assert errors[0].startswith(f"{tmp_path / 's.yaml'}:9 fleet[0].purchase_usd_per_chip: found none: my-chip has "
                                "no purchase price")
    assert "accepted: purchase_usd_per_chip on the pool" in errors[0]


def test_owned_pool_with_a_price_on_the_pool_or_the_chip_loads(tmp_path):
    scenario = load_text(tmp_path, CUSTOM + "    purchase_usd_per_chip: 8760\n")
    pool = build_fleet(scenario, scenario_catalog(scenario)).pools[0]
    assert pool.chip_cost_usd_per_hour == pytest.approx(owned_rate(8760))
    scenario = load_text(tmp_path, CUSTOM.replace("stacks: {portable: 0.3}}", "stacks: {portable: 0.3},\n"
                                                  "     price_usd: 4380}"))
    pool = build_fleet(scenario, scenario_catalog(scenario)).pools[0]
    assert pool.chip_cost_usd_per_hour == pytest.approx(owned_rate(4380))


def test_rented_pool_without_a_rate_names_the_field_to_set(tmp_path):
    errors = errors_of(tmp_path, CUSTOM.replace("count: 8", "count: 24\n    chips_per_server: 24\n    owner: rented")
                       .replace("my-chip\n", "mtia-v2\n"))
    assert len(errors) == 1
    assert ":9 fleet[0].rental_usd_per_chip_hour: found none: mtia-v2 has no cloud rental rate" in errors[0]
    assert "accepted: rental_usd_per_chip_hour on the pool" in errors[0]


@pytest.mark.parametrize("owner, field, other", [("owned", "rental_usd_per_chip_hour", "owner: rented"),
                                                 ("rented", "purchase_usd_per_chip", "owner: owned")])
def test_a_price_for_the_other_kind_of_ownership_is_refused(tmp_path, owner, field, other):
    text = CUSTOM.replace("my-chip\n", "h100-sxm\n") + f"    owner: {owner}\n    {field}: 5\n"
    errors = errors_of(tmp_path, text)
    assert len(errors) == 1
    assert f":13 fleet[0].{field}: found 5: " in errors[0] and f"accepted: {other}" in errors[0]


def test_cli_reports_a_missing_price_with_exit_2_and_no_traceback(tmp_path, capsys):
    (tmp_path / "s.yaml").write_text(CUSTOM)
    assert main(["validate", str(tmp_path / "s.yaml")]) == 2
    captured = capsys.readouterr()
    assert "fleet[0].purchase_usd_per_chip" in captured.err + captured.out
    assert "Traceback" not in captured.err + captured.out


def test_owning_and_renting_a_tpu_cost_differently(base, tmp_path):
    """Owned TPUs pay their amortized purchase estimate and maintenance, rented ones the cloud rate (they read
    the same before)."""
    tpu = CATALOG.accelerators["tpu-v6e"]
    owned = build_fleet(scenario_from(base, tmp_path), CATALOG).pools[1]
    base["fleet"][1]["owner"] = "rented"
    rented = build_fleet(scenario_from(base, tmp_path), CATALOG).pools[1]
    assert owned.chip_cost_usd_per_hour == pytest.approx(owned_rate(tpu.price_usd))
    assert rented.chip_cost_usd_per_hour == pytest.approx(tpu.cloud_usd_per_chip_hour)
    assert owned.chip_cost_usd_per_hour < rented.chip_cost_usd_per_hour / 5


def test_pool_overrides_replace_the_catalog_price_and_rate(base, tmp_path):
    base["fleet"][0]["purchase_usd_per_chip"] = 20_000
    base["fleet"][1].update(owner="rented", rental_usd_per_chip_hour=1.22)
    pools = build_fleet(scenario_from(base, tmp_path), CATALOG).pools
    assert pools[0].chip_cost_usd_per_hour == pytest.approx(owned_rate(20_000))
    assert pools[1].chip_cost_usd_per_hour == pytest.approx(1.22)


def test_fleet_cost_charges_the_overridden_price(base, tmp_path):
    base["workloads"]["training"]["generator"].update(jobs=2)
    base["duration"] = "1h"
    cost = sim.run(scenario_from(base, tmp_path)).summary["fleet_cost_usd"]
    base["fleet"][1]["purchase_usd_per_chip"] = 2 * CATALOG.accelerators["tpu-v6e"].price_usd
    dearer = sim.run(scenario_from(base, tmp_path)).summary["fleet_cost_usd"]
    tpu_chip_hours = 16 * 1.0
    price = CATALOG.accelerators["tpu-v6e"].price_usd
    assert dearer - cost == pytest.approx(tpu_chip_hours * (owned_rate(2 * price) - owned_rate(price)))


def _cheapest_pools(base, tmp_path) -> set[str]:
    gen = base["workloads"]["training"]["generator"]
    gen.update(jobs=6, arrival_rate_per_hour=0.2, chips={8: 1.0}, stacks={"portable": 1.0}, models={"resnet50": 1.0})
    gen["duration_s"] = {"fixed": 600}
    base["policy"]["scheduler"] = {"kind": "hetero-aware", "objective": "cheapest"}
    jobs = sim.run(scenario_from(base, tmp_path)).jobs
    assert (jobs["state"] == "completed").all()
    return set(jobs["pool"])


def test_cheapest_objective_sees_owned_prices(base, tmp_path):
    """Both pools owned: the TPU's amortized price is below the H100's, so the cheapest objective picks it
    (at the old fallback to its cloud rate it cost more per chip-hour than an owned H100)."""
    assert _cheapest_pools(base, tmp_path) == {"tpu"}
    base["fleet"][1]["purchase_usd_per_chip"] = 1_000_000  # now the dearest chip by far
    assert _cheapest_pools(base, tmp_path) == {"gpu"}
