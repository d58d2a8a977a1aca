"""Bad input gets a clear error: file, line, field path, what was found and what is accepted."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

import sim
from tests.conftest import load_text, scenario_from

GOOD = """\
schema_version: 1
name: t
start: 2026-01-01
duration: 1d
fleet:
  - name: gpu
    accelerator: h100-sxm
    count: 8
"""


def errors_of(tmp_path, text: str) -> list[str]:
    with pytest.raises(sim.ScenarioError) as info:
        load_text(tmp_path, text)
    return [str(p) for p in info.value.problems]


def test_good_scenario_loads(tmp_path):
    scenario = load_text(tmp_path, GOOD)
    assert scenario.duration == 86400.0
    assert scenario.fleet[0].accelerator == "h100-sxm"


def test_unknown_key_names_line_and_suggests(tmp_path):
    errors = errors_of(tmp_path, GOOD.replace("    count: 8", "    count: 8\n    chips_per_servr: 8"))
    assert len(errors) == 1
    assert errors[0].startswith(f"{tmp_path / 's.yaml'}:9 fleet[0].chips_per_servr: unknown field")
    assert "did you mean 'chips_per_server'?" in errors[0]
    assert "servers_per_rack" in errors[0]  # the accepted fields are listed


def test_unknown_accelerator_suggests_closest(tmp_path):
    errors = errors_of(tmp_path, GOOD.replace("h100-sxm", "h100-sx"))
    assert len(errors) == 1
    assert ":7 fleet[0].accelerator: unknown accelerator 'h100-sx'" in errors[0]
    assert "did you mean 'h100-sxm'?" in errors[0]
    assert "tpu-v6e" in errors[0]  # known names are listed


def test_wrong_type_names_found_value(tmp_path):
    errors = errors_of(tmp_path, GOOD.replace("count: 8", "count: eight"))
    assert len(errors) == 1
    assert ":8 fleet[0].count: found 'eight'" in errors[0]
    assert "integer" in errors[0]


def test_negative_count(tmp_path):
    errors = errors_of(tmp_path, GOOD.replace("count: 8", "count: -8"))
    assert ":8 fleet[0].count: found -8; accepted: 0 to 10,000,000 chips (larger fleets do not fit in memory)" \
        in errors[0]


def test_wrong_unit_duration(tmp_path):
    errors = errors_of(tmp_path, GOOD.replace("duration: 1d", "duration: 1 fortnight"))
    assert ":4 duration:" in errors[0]
    assert "'90d'" in errors[0]


def test_all_errors_of_a_file_reported_together(tmp_path):
    text = GOOD.replace("count: 8", "count: -8").replace("start:", "strat:")
    errors = errors_of(tmp_path, text)
    paths = " ".join(errors)
    assert "fleet[0].count" in paths and "strat" in paths and "start: required field is missing" in paths


def test_catalog_errors_collected_together(tmp_path):
    text = GOOD + """  - name: gpu
    accelerator: tpu-v9
    count: 8
policy:
  scheduler: {kind: fifo-backfil}
"""
    errors = errors_of(tmp_path, text)
    assert any("fleet[1].name: duplicate pool name" in e for e in errors)
    assert any("fleet[1].accelerator: unknown accelerator 'tpu-v9'" in e for e in errors)
    assert any("policy.scheduler.kind: unknown scheduler 'fifo-backfil' (did you mean 'fifo-backfill'?)" in e
               for e in errors)


def test_impossible_rack_is_rejected_before_simulating(tmp_path):
    text = GOOD.replace("count: 8", "count: 64\n    servers_per_rack: 8\n    cooling: air")
    errors = errors_of(tmp_path, text)
    assert len(errors) == 1
    assert "fleet[0].servers_per_rack" in errors[0]
    assert "air cooling removes" in errors[0] and "servers_per_rack <=" in errors[0]


def test_power_cap_below_idle_power(tmp_path):
    errors = errors_of(tmp_path, GOOD + "site: {power_cap_mw: 0.0001}\n")
    assert "site.power_cap_mw" in errors[0] and "idle power alone" in errors[0]


def test_pool_must_be_whole_servers(tmp_path):
    errors = errors_of(tmp_path, GOOD.replace("count: 8", "count: 12"))
    assert "fleet[0].count: found 12" in errors[0] and "multiple of 8" in errors[0]


def test_generator_mix_must_sum_to_one(tmp_path, base):
    base["workloads"]["training"]["generator"]["models"] = {"resnet50": 0.6, "bert-larg": 0.3}
    with pytest.raises(sim.ScenarioError) as info:
        scenario_from(base, tmp_path)
    text = str(info.value)
    assert "sum to 0.9" in text and "unknown model 'bert-larg' (did you mean 'bert-large'?)" in text


def test_duplicate_yaml_key(tmp_path):
    errors = errors_of(tmp_path, GOOD + "seed: 1\nseed: 2\n")
    assert any(":10 seed: duplicate key" in e for e in errors)


def test_yaml_syntax_error_names_line(tmp_path):
    errors = errors_of(tmp_path, GOOD + "policy: [unclosed\n")
    assert ":" in errors[0] and "YAML syntax" in errors[0]


def test_override_validated_like_the_file(tmp_path):
    scenario = load_text(tmp_path, GOOD)
    assert scenario.with_overrides({"site.power_cap_mw": 80}).site.power_cap_mw == 80
    with pytest.raises(sim.ScenarioError) as info:
        scenario.with_overrides({"site.power_cap_mw": "lots"})
    assert "(override site.power_cap_mw='lots') site.power_cap_mw: found 'lots'" in str(info.value)
    with pytest.raises(sim.ScenarioError) as info:
        scenario.with_overrides({"site.power_cap_megawatts": 3})
    assert "did you mean 'power_cap_mw'?" in str(info.value)


def test_override_addresses_pools_by_name_or_index(tmp_path):
    scenario = load_text(tmp_path, GOOD)
    assert scenario.with_overrides({"fleet.gpu.count": 16}).fleet[0].count == 16
    assert scenario.with_overrides({"fleet[0].count": 24}).fleet[0].count == 24
    assert scenario.with_overrides({"fleet.0.count": 32}).fleet[0].count == 32
    with pytest.raises(sim.ScenarioError) as info:
        scenario.with_overrides({"fleet.cpu.count": 16})
    assert "no entry named 'cpu'" in str(info.value)


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_reports_mistakes_without_traceback(tmp_path):
    (tmp_path / "bad.yaml").write_text(GOOD.replace("h100-sxm", "h1000"))
    result = _cli("validate", "bad.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "bad.yaml:7 fleet[0].accelerator: unknown accelerator 'h1000'" in result.stderr
    (tmp_path / "good.yaml").write_text(GOOD)
    result = _cli("run", "good.yaml", "--set", "site.power_cap_mw=abc", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "site.power_cap_mw: found 'abc'" in result.stderr


def test_cli_set_and_python_overrides_agree(tmp_path):
    from sim.scenario.overrides import parse_assignment

    scenario = load_text(tmp_path, GOOD)
    via_cli = scenario.with_overrides(dict([parse_assignment("site.power_cap_mw=80")]))
    via_api = scenario.with_overrides({"site.power_cap_mw": 80})
    assert via_cli == via_api
    assert yaml.safe_load("80") == via_cli.site.power_cap_mw


@pytest.mark.parametrize("snippet, expected", [
    ("duration: .inf", "duration: found inf: duration must be finite"),
    ("start: 2026-02-30", "start: found '2026-02-30'"),
    ("outputs: {timeseries_interval: 0.000001}", "outputs.timeseries_interval: found 1e-06 s"),
])
def test_impossible_values_are_rejected_with_line(tmp_path, snippet, expected):
    key = snippet.split(":")[0]
    text = "\n".join(line for line in GOOD.splitlines() if not line.startswith(key + ":")) + "\n" + snippet + "\n"
    errors = errors_of(tmp_path, text)
    assert any(expected in e for e in errors), errors
    assert all(":" in e.split(" ")[0] for e in errors)  # file:line on every problem


GENERATED = GOOD + """workloads:
  training:
    generator:
      jobs: 5
      arrival_rate_per_hour: 1
      chips: {1: 1.0}
      models: {resnet50: 1.0}
      duration_s: DIST
"""


@pytest.mark.parametrize("dist, expected", [
    ("{lognormal: {median: 3600}}", "duration_s.lognormal.sigma: required field is missing"),
    ("{exponential: {mean: -5}}", "duration_s.exponential.mean: found -5"),
    ("{uniform: {low: 10, high: 5}}", "high (5) must not be below low (10)"),
    ("{uniform: {low: -10, high: 5}}", "duration_s.uniform.low: found -10"),
    ("{empirical: missing.csv}", "duration_s.empirical: found 'missing.csv': no such file"),
])
def test_distribution_parameters_are_checked(tmp_path, dist, expected):
    errors = errors_of(tmp_path, GENERATED.replace("DIST", dist))
    assert any(expected in e for e in errors), errors


def test_malformed_empirical_csv_is_reported_at_validation(tmp_path):
    (tmp_path / "d.csv").write_text("runtime\n10\nten\n")
    errors = errors_of(tmp_path, GENERATED.replace("DIST", "{empirical: d.csv}"))
    assert any("d.csv:3: expected a number, found 'ten'" in e for e in errors), errors


def test_missing_trace_file_is_reported_at_validation(tmp_path):
    text = GOOD + "workloads:\n  training:\n    trace: {format: alibaba-gpu-2023, path: nope.csv}\n"
    errors = errors_of(tmp_path, text)
    assert any(":11 workloads.training.trace.path: trace file 'nope.csv' not found" in e for e in errors), errors


def test_custom_accelerator_sanity(tmp_path):
    text = GOOD.replace("    accelerator: h100-sxm\n", """    accelerator:
      id: my-chip
      bf16_tflops: 100
      memory_gb: 32
      memory_bandwidth_tbps: 1
      tdp_w: 100
      idle_w: 300
      scale_up_bandwidth_gbps: 100
      scale_up_domain_chips: 8
      scale_out_bandwidth_gbps: 10
      stacks: {cdua: 7.5}
""")
    errors = " ".join(errors_of(tmp_path, text))
    assert "fleet[0].accelerator" in errors
    assert "idle_w (300) must not exceed tdp_w (100)" in errors
    assert ".str" not in errors and "AcceleratorSpec" not in errors  # no pydantic union tags


def test_custom_accelerator_may_not_shadow_a_builtin_with_other_numbers(tmp_path):
    text = GOOD.replace("    accelerator: h100-sxm\n", """    accelerator:
      id: h100-sxm
      bf16_tflops: 1
      memory_gb: 80
      memory_bandwidth_tbps: 3.35
      tdp_w: 700
      idle_w: 70
      scale_up_bandwidth_gbps: 900
      scale_up_domain_chips: 8
      scale_out_bandwidth_gbps: 50
      stacks: {cuda: 0.4}
""")
    errors = errors_of(tmp_path, text)
    assert any("fleet[0].accelerator.id: accelerator id 'h100-sxm' is already defined" in e for e in errors)


def test_accelerator_of_the_wrong_type_gets_one_clear_message(tmp_path):
    errors = errors_of(tmp_path, GOOD.replace("accelerator: h100-sxm", "accelerator: 100"))
    assert len(errors) == 1
    assert ":7 fleet[0].accelerator: found 100" in errors[0]
    assert "string" in errors[0] and "dictionary" in errors[0]


def test_schema_and_catalog_mistakes_in_one_report(tmp_path):
    errors = errors_of(tmp_path, GOOD.replace("h100-sxm", "h1000") + "seed: lots\n")
    assert any("seed: found 'lots'" in e for e in errors)
    assert any("fleet[0].accelerator: unknown accelerator 'h1000'" in e for e in errors)


def test_nested_override_is_located_at_its_set(tmp_path):
    scenario = load_text(tmp_path, GOOD)
    with pytest.raises(sim.ScenarioError) as info:
        scenario.with_overrides({"site.nope.deep": 3})
    assert "(override site.nope.deep=3) site.nope: unknown field" in str(info.value)


def test_feasibility_problems_reported_with_other_mistakes(tmp_path):
    text = GOOD.replace("count: 8", "count: 64\n    servers_per_rack: 8\n    cooling: air") + """  - name: tpu
    accelerator: tpu-v9
    count: 8
policy: {scheduler: {kind: fifoo}}
"""
    errors = " ".join(errors_of(tmp_path, text))
    assert "fleet[0].servers_per_rack" in errors and "air cooling removes" in errors
    assert "unknown accelerator 'tpu-v9'" in errors and "unknown scheduler 'fifoo'" in errors
