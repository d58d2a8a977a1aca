"""Cloud rental terms (``fleet[].rental_term``) and training burst onto rented pools (``policy.burst``)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import sim
from sim.catalog import builtin_catalog
from sim.cli import main
from sim.fleet import build_fleet
from sim.validation.checks import scenario_catalog
from tests.conftest import BASE, load_text, scenario_from
from tests.test_engine import assert_accounted

HOUR, DAY = 3600.0, 86400.0
CATALOG = builtin_catalog()
H100_RATE = CATALOG.accelerators["h100-sxm"].cloud_usd_per_chip_hour
V6E = CATALOG.accelerators["tpu-v6e"]

# -- rental terms ----------------------------------------------------------------------------------------

TERMS = """\
schema_version: 1
name: terms
start: 2026-01-01
duration: 60d
fleet:
  - {name: gpu, accelerator: h100-sxm, count: 8}
  - name: tpu
    accelerator: tpu-v6e
    count: 16
    owner: rented
    online_until: 2026-01-31
"""


def rental(results, pool: str = "tpu") -> float:
    entries = results.ledger.entries
    return float(entries[(entries["pool"] == pool) & (entries["category"] == "rental")]["usd"].sum())


def test_on_demand_pool_is_charged_only_while_online(tmp_path):
    results = sim.run(load_text(tmp_path, TERMS))
    assert rental(results) == pytest.approx(16 * 30 * 24 * V6E.cloud_usd_per_chip_hour)
    assert results.summary["money"]["by_category_usd"]["rental"] == pytest.approx(rental(results))


def test_reserved_pool_is_charged_for_its_whole_term_after_it_leaves(tmp_path):
    results = sim.run(load_text(tmp_path, TERMS + "    rental_term: reserved-1y\n"))
    # the one-year term outlasts the 60-day run: every hour of the run is charged, at the committed rate
    assert rental(results) == pytest.approx(16 * 60 * 24 * V6E.cloud_reserved_1y_usd_per_chip_hour)
    money = results.summary["money"]
    chip_costs = sum(money["by_category_usd"][c] for c in ("depreciation", "maintenance", "rental"))
    assert chip_costs == pytest.approx(results.summary["fleet_cost_usd"])  # the reserved hours in both
    # the chips are online (idle power, capacity, utilization) only until they leave
    monthly = results.monthly.set_index("month")
    assert monthly.loc["2026-02", "online_chips.tpu-v6e"] == 0
    assert monthly.loc["2026-02", "rental_usd"] > 0
    assert results.timeseries["online_chips.tpu-v6e"].to_numpy()[-1] == 0


def test_reserved_commitment_rounds_the_window_up_to_whole_terms(tmp_path):
    text = TERMS.replace("online_until: 2026-01-31", "online_until: 2027-03-01").replace("60d", "3y")
    scenario = load_text(tmp_path, text + "    rental_term: reserved-1y\n")
    pool = build_fleet(scenario, scenario_catalog(scenario)).pools[1]
    horizon = float(scenario.duration)
    online_s = (dt_days(scenario, "2027-03-01")) * DAY
    assert pool.online_chip_seconds(0, horizon) == pytest.approx(16 * online_s)
    assert pool.charged_chip_seconds(0, horizon) == pytest.approx(16 * 2 * 365 * DAY)  # 14 months -> 2 terms
    three = load_text(tmp_path, text + "    rental_term: reserved-3y\n")
    pool3 = build_fleet(three, scenario_catalog(three)).pools[1]
    assert pool3.charged_chip_seconds(0, horizon) == pytest.approx(16 * horizon)  # cut at the horizon
    assert pool3.chip_cost_usd_per_hour == V6E.cloud_reserved_3y_usd_per_chip_hour


def dt_days(scenario, date: str) -> int:
    import datetime as dt

    return (dt.date.fromisoformat(date) - scenario.start).days


def test_reserved_pool_without_a_reserved_rate_names_the_field_to_set(tmp_path):
    text = TERMS.replace("accelerator: tpu-v6e", "accelerator: h100-sxm") + "    rental_term: reserved-3y\n"
    with pytest.raises(sim.ScenarioError) as info:
        load_text(tmp_path, text)
    errors = [str(p) for p in info.value.problems]
    assert len(errors) == 1
    assert errors[0].startswith(f"{tmp_path / 's.yaml'}:12 fleet[1].rental_term: found reserved-3y: h100-sxm has "
                                "no reserved-3y rate")
    assert "rental_usd_per_chip_hour on the pool" in errors[0]
    assert "cloud_reserved_3y_usd_per_chip_hour on the accelerator" in errors[0]
    scenario = load_text(tmp_path, text + "    rental_usd_per_chip_hour: 3.5\n")
    assert build_fleet(scenario, scenario_catalog(scenario)).pools[1].chip_cost_usd_per_hour == 3.5


def test_rental_term_on_an_owned_pool_is_an_error(tmp_path):
    with pytest.raises(sim.ScenarioError, match=r"fleet\[0\].rental_term: found reserved-1y: rental terms apply to "
                                                 "a rented pool"):
        load_text(tmp_path, TERMS.replace("{name: gpu, accelerator: h100-sxm, count: 8}",
                                          "{name: gpu, accelerator: h100-sxm, count: 8, rental_term: reserved-1y}"))


@pytest.mark.parametrize("accel", ["tpu-v4", "tpu-v5e", "tpu-v6e"])
def test_catalog_reserved_rates_are_below_on_demand_and_sourced(accel):
    spec = CATALOG.accelerators[accel]
    assert 0 < spec.cloud_reserved_3y_usd_per_chip_hour < spec.cloud_reserved_1y_usd_per_chip_hour \
        < spec.cloud_usd_per_chip_hour
    assert spec.sources["cloud_reserved_1y_usd_per_chip_hour"].startswith("EPOCH-PRICES")


# -- burst -----------------------------------------------------------------------------------------------

THRESHOLD, DELAY, MIN_RENTAL, QUOTA = HOUR, 600.0, 2 * HOUR, 32


def bursting(jobs: int = 200, rate: float = 8.0, **policy) -> dict:
    """16 owned H100s and up to 64 rentable ones; jobs that all may use both."""
    data = copy.deepcopy(BASE)
    data["fleet"] = [
        {"name": "gpu", "accelerator": "h100-sxm", "count": 16, "chips_per_server": 8, "servers_per_rack": 2},
        {"name": "cloud", "accelerator": "h100-sxm", "count": 64, "chips_per_server": 8, "servers_per_rack": 2,
         "owner": "rented"},
    ]
    data["workloads"]["training"]["generator"].update(jobs=jobs, arrival_rate_per_hour=rate,
                                                      stacks={"portable": 0.5, "cuda": 0.5})
    data["policy"]["burst"] = [{"pool": "cloud", "quota_chips": QUOTA, "queue_wait_threshold": THRESHOLD,
                                "provisioning_delay": DELAY, "min_rental": MIN_RENTAL, **policy}]
    return data


@pytest.fixture(scope="module")
def burst_run(tmp_path_factory):
    return sim.run(scenario_from(bursting(), tmp_path_factory.mktemp("burst")))


def test_burst_requests_exactly_when_a_wait_crosses_the_threshold(burst_run):
    jobs, events = burst_run.jobs, burst_run.burst
    requests = events[events["event"] == "request"]
    assert len(requests) > 3
    arrival, start = jobs["arrival_s"].to_numpy(), jobs["start_s"].fillna(np.inf).to_numpy()
    for t in np.unique(requests["time_s"].to_numpy()):
        # a job waiting at t (it starts later, if at all) crossed the threshold at that very instant
        crossing = np.isclose(arrival + THRESHOLD, t, rtol=0, atol=1e-6) & (start > t)
        assert crossing.any(), f"request at {t} s without a wait crossing the threshold then"
    assert requests["time_s"].min() >= arrival.min() + THRESHOLD


def test_burst_chips_come_online_after_the_delay_and_stay_within_the_quota(burst_run):
    events = burst_run.burst
    last_request: dict[int, float] = {}
    in_flight = peak = 0
    for row in events.itertuples():
        if row.event == "request":
            last_request[row.domain] = row.time_s
            in_flight += row.chips
        elif row.event == "online":
            assert row.time_s == pytest.approx(last_request.pop(row.domain) + DELAY)
        else:
            in_flight -= row.chips
        peak = max(peak, in_flight)
    assert peak <= QUOTA and events["rented_chips"].max() <= QUOTA
    assert events["rented_chips"].max() == QUOTA  # the demand reached the quota in this run
    on_cloud = burst_run.jobs[burst_run.jobs["pool"] == "cloud"]
    assert len(on_cloud) > 0
    first_online = events.loc[events["event"] == "online", "time_s"].min()
    assert (on_cloud["start_s"] >= first_online).all()


def test_burst_releases_an_idle_domain_once_its_minimum_rental_has_passed(burst_run):
    events, jobs = burst_run.burst, burst_run.jobs
    ends = jobs.loc[jobs["pool"] == "cloud", "end_s"].dropna().to_numpy()
    online_since: dict[int, float] = {}
    releases = 0
    for row in events.itertuples():
        if row.event == "online":
            online_since[row.domain] = row.time_s
        elif row.event == "release":
            releases += 1
            since = online_since.pop(row.domain)
            assert row.time_s >= since + MIN_RENTAL - 1e-6
            # released when min_rental expired, or when the job keeping it busy ended
            assert math.isclose(row.time_s, since + MIN_RENTAL, abs_tol=1e-6) or np.isclose(ends, row.time_s).any()
    assert releases > 0


def test_burst_cost_is_the_rented_chip_hours_at_the_pool_rate(burst_run):
    events = burst_run.burst
    times = np.append(events["time_s"].to_numpy(), burst_run.summary["horizon_s"])
    chip_hours = float((events["rented_chips"].to_numpy() * np.diff(times)).sum() / HOUR)
    section = burst_run.summary["burst"]["cloud"]
    assert section["rented_chip_hours"] == pytest.approx(chip_hours)
    assert rental(burst_run, "cloud") == pytest.approx(chip_hours * H100_RATE)
    assert section["rental_usd"] == pytest.approx(chip_hours * H100_RATE)
    assert section["requests"] == section["onlines"] >= section["releases"] > 0
    # the rented chips are the utilization denominator's only cloud chips, and draw idle power only then
    series = burst_run.timeseries
    widths = np.diff(np.append(series["time_s"].to_numpy(), burst_run.summary["horizon_s"]))
    online_h = float((series["online_chips.h100-sxm"].to_numpy() * widths).sum() / HOUR)
    assert online_h == pytest.approx(16 * 48 + chip_hours)
    busy_h = float((series["busy_chips.h100-sxm"].to_numpy() * widths).sum() / HOUR)
    assert burst_run.summary["utilization_by_accelerator"]["h100-sxm"] == pytest.approx(busy_h / online_h)
    assert_accounted(burst_run)


def test_burst_writes_its_events_and_plots(burst_run, tmp_path):
    out = burst_run.save(tmp_path / "out", plots=True)
    text = (out / "burst.csv").read_text().splitlines()
    assert text[0] == "time_s,datetime,pool,event,chips,domain,rented_chips"
    assert len(text) == len(burst_run.burst) + 1
    monthly = burst_run.monthly
    assert monthly["online_chips.rented"].sum() > 0


def test_a_threshold_never_reached_rents_nothing_and_changes_no_job(tmp_path):
    never = sim.run(scenario_from(bursting(queue_wait_threshold="30d"), tmp_path, "never.yaml"))
    assert never.summary["burst"]["cloud"]["requests"] == 0
    assert rental(never, "cloud") == 0 and never.summary["money"]["by_category_usd"]["rental"] == 0
    assert (never.jobs["pool"] != "cloud").all()
    alone = bursting()
    alone["fleet"].pop()
    del alone["policy"]["burst"]
    without = sim.run(scenario_from(alone, tmp_path, "alone.yaml"))
    assert never.jobs.equals(without.jobs)  # the pool never rented is as if it were not there
    assert never.summary["it_energy_kwh"] == pytest.approx(without.summary["it_energy_kwh"])
    assert never.summary["fleet_cost_usd"] == pytest.approx(without.summary["fleet_cost_usd"])
    bursts = sim.run(scenario_from(bursting(), tmp_path, "bursts.yaml"))
    assert bursts.summary["queue_wait_s"]["mean"] < never.summary["queue_wait_s"]["mean"]


def test_burst_ends_when_the_pool_leaves(tmp_path):
    data = bursting()
    data["fleet"][1]["online_until"] = "2026-01-02"
    results = sim.run(scenario_from(data, tmp_path))
    events = results.burst
    assert (events["time_s"] <= DAY).all() and events["rented_chips"].iloc[-1] == 0
    assert (events.loc[events["event"] == "request", "time_s"] + DELAY < DAY).all()
    assert not ((results.jobs["pool"] == "cloud") & (results.jobs["end_s"] > DAY)).any()
    assert_accounted(results)


BAD_SCHEMA = """\
schema_version: 1
name: t
start: 2026-01-01
duration: 1d
fleet:
  - {name: cloud, accelerator: h100-sxm, count: 16, owner: rented}
policy:
  burst:
    - {pool: cloud, quota_chips: 0, queue_wait_threshold: -1, provisioning_delay: -5, min_rental: -1h}
    - {pool: clod, quota_chips: 8, queue_wait_threshold: 1h, provisioning_delay: 0, min_rental: 0}
"""

BAD_CHECKS = """\
schema_version: 1
name: t
start: 2026-01-01
duration: 1d
fleet:
  - {name: gpu, accelerator: h100-sxm, count: 16}
  - {name: cloud, accelerator: h100-sxm, count: 16, owner: rented}
  - {name: tpu, accelerator: tpu-v6e, count: 16, owner: rented, rental_term: reserved-1y}
  - {name: h200, accelerator: h200, count: 16, owner: rented, rental_term: reserved-1y}
policy:
  burst:
    - {pool: gpu, quota_chips: 8, queue_wait_threshold: 1h, provisioning_delay: 0, min_rental: 0}
    - {pool: cloud, quota_chips: 32, queue_wait_threshold: 1h, provisioning_delay: 0, min_rental: 0}
    - {pool: clod, quota_chips: 8, queue_wait_threshold: 1h, provisioning_delay: 0, min_rental: 0}
    - {pool: tpu, quota_chips: 16, queue_wait_threshold: 1h, provisioning_delay: 0, min_rental: 0}
    - {pool: cloud, quota_chips: 4, queue_wait_threshold: 1h, provisioning_delay: 0, min_rental: 0}
"""


def problems(tmp_path, text: str) -> list[str]:
    with pytest.raises(sim.ScenarioError) as info:
        load_text(tmp_path, text)
    return [str(p) for p in info.value.problems]


def test_bad_burst_numbers_are_located_together(tmp_path):
    errors = problems(tmp_path, BAD_SCHEMA)
    where = f"{tmp_path / 's.yaml'}:9 policy.burst[0]"
    assert [e.split(":")[1].split(" ")[1] for e in errors] == [
        "policy.burst[0].quota_chips", "policy.burst[0].queue_wait_threshold",
        "policy.burst[0].provisioning_delay", "policy.burst[0].min_rental", "policy.burst[1].pool"]
    assert all(e.startswith(where) for e in errors[:4])
    assert "found 0" in errors[0] and "accepted: above 0" in errors[0]
    # an unknown pool name comes in the same report as the schema's mistakes
    assert errors[4].startswith(f"{tmp_path / 's.yaml'}:10 policy.burst[1].pool: unknown pool 'clod' (did you mean "
                                "'cloud'?)")


def test_bad_burst_pools_are_located_together(tmp_path):
    errors = problems(tmp_path, BAD_CHECKS)
    path = tmp_path / "s.yaml"
    expected = [
        f"{path}:9 fleet[3].rental_term: found reserved-1y: h200 has no reserved-1y rate",
        f"{path}:12 policy.burst[0].pool: found 'gpu', an owned pool",
        f"{path}:13 policy.burst[1].quota_chips: found 32: more than the pool's count 16",
        f"{path}:14 policy.burst[2].pool: unknown pool 'clod' (did you mean 'cloud'?)",
        f"{path}:15 policy.burst[3].pool: found 'tpu', rented under reserved-1y",
        f"{path}:16 policy.burst[4].pool: found 'cloud' again",
        f"{path}:16 policy.burst[4].quota_chips: found 4: a burst rents whole scale-up domains of 8 chips",
    ]
    assert len(errors) == len(expected)
    for want in expected:
        assert any(e.startswith(want) for e in errors), (want, errors)


def test_cli_refuses_a_bad_burst_with_status_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_CHECKS)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "policy.burst[2].pool: unknown pool 'clod'" in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["fifo", "hetero-aware"])
def test_burst_works_under_every_scheduler(tmp_path, kind):
    data = bursting()
    data["policy"]["scheduler"] = {"kind": kind}
    results = sim.run(scenario_from(data, tmp_path))
    events = results.burst
    assert (events["event"] == "online").any() and events["rented_chips"].max() <= QUOTA
    assert (results.jobs["pool"] == "cloud").any()
    assert rental(results, "cloud") == pytest.approx(results.summary["burst"]["cloud"]["rented_chip_hours"] * H100_RATE)
    assert_accounted(results)


def test_a_pool_name_that_is_not_text_beside_a_burst_policy_is_a_located_error(tmp_path, capsys):
    """Found by fuzzing: a list as a pool's name made the burst pool check crash (unhashable) before the
    schema's own error was reported."""
    path = tmp_path / "s.yaml"
    path.write_text("schema_version: 1\nname: x\nstart: 2026-01-01\nduration: 1d\nfleet:\n"
                    "  - {name: [1, 2], accelerator: h100-sxm, count: 8}\npolicy:\n"
                    "  burst: [{pool: nope, quota_chips: 8, queue_wait_threshold: 1h, min_rental: 1h}]\n")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{path}:6 fleet[0].name: Input should be a valid string" in err
    assert f"{path}:8 policy.burst[0].pool: unknown pool 'nope'" in err
