"""Bad input gets a clear error: file, line, field path, what was found and what is accepted."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

import sim
from tests.conftest import SCENARIOS, load_text, scenario_from

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


# --- hostile input: every case ends in a located ScenarioError, quickly ---------------------------------

def _errors_of_bytes(tmp_path, content: bytes) -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_bytes(content)
    with pytest.raises(sim.ScenarioError) as info:
        sim.load(path)
    return [str(p) for p in info.value.problems]


def test_non_utf8_byte_names_its_line(tmp_path):
    errors = _errors_of_bytes(tmp_path, GOOD.encode() + b"description: caf\xe9\n")
    assert errors == [f"{tmp_path / 's.yaml'}:9: byte 0xE9 at column 17 is not UTF-8; accepted: UTF-8 text "
                      "(save the file as UTF-8)"]


@pytest.mark.parametrize("character, shown", [(b"\x07", "control character U+0007"), (b"\x00", "a NUL character"),
                                              (b"\x1b", "control character U+001B")])
def test_control_characters_name_their_line(tmp_path, character, shown):
    errors = _errors_of_bytes(tmp_path, GOOD.encode() + b"description: a" + character + b"b\n")
    assert len(errors) == 1 and errors[0].startswith(f"{tmp_path / 's.yaml'}:9: {shown} at column 15")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_files_are_refused_with_a_reason(tmp_path, encoding):
    errors = _errors_of_bytes(tmp_path, GOOD.encode(encoding))
    assert len(errors) == 1 and errors[0].startswith(f"{tmp_path / 's.yaml'}:1: the file ")
    assert "UTF-16" in errors[0] or "UTF-32" in errors[0]
    assert "accepted: UTF-8 text" in errors[0]


def test_utf8_byte_order_mark_is_accepted(tmp_path):
    (tmp_path / "s.yaml").write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert sim.load(tmp_path / "s.yaml").name == "t"


@pytest.mark.parametrize("snippet", ["site: &a {x: *a}", "porting: &a [*a]", "policy: &a {scheduler: [1, *a]}"])
def test_recursive_alias_is_refused(tmp_path, snippet):
    errors = errors_of(tmp_path, GOOD + snippet + "\n")
    assert len(errors) == 1 and ":9: YAML syntax: alias *a refers to a node that contains it" in errors[0]


def test_deep_nesting_is_refused(tmp_path):
    errors = errors_of(tmp_path, GOOD + "description: " + "[" * 10_000 + "]" * 10_000 + "\n")
    assert errors == [f"{tmp_path / 's.yaml'}:9: YAML syntax: nested deeper than 64 levels; accepted: at most 64"]


def test_alias_bomb_is_refused_before_expanding(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    text = GOOD + "\n".join(lines) + "\n"
    assert len(text) < 1200  # a billion laughs in about 1 KB
    errors = errors_of(tmp_path, text)
    assert len(errors) == 1 and "YAML syntax: aliases expand this node to 1.11e+05 nodes" in errors[0]
    assert "accepted: aliases adding at most 100,000 nodes" in errors[0]


def test_aliases_may_repeat_a_section_and_are_copies(tmp_path):
    text = GOOD.replace("fleet:", "fleet:\n  - &pool {name: gpu2, accelerator: h100-sxm, count: 8}") + """\
workloads:
  inference:
    - {name: a, model: llama3-8b, replicas: [{pool: gpu, count: 1}],
       traffic: {generator: {rate_per_s: 1, prompt_tokens: &p {lognormal: {median: 800, sigma: 0.8}},
                             output_tokens: *p}}}
"""
    scenario = load_text(tmp_path, text)
    generator = scenario.workloads.inference[0].traffic.generator
    assert generator.prompt_tokens == generator.output_tokens
    changed = scenario.with_overrides({"workloads.inference.a.traffic.generator.output_tokens.lognormal.median": 50})
    changed_generator = changed.workloads.inference[0].traffic.generator
    assert changed_generator.output_tokens.lognormal.median == 50
    assert changed_generator.prompt_tokens.lognormal.median == 800  # the alias was a copy, not the same mapping


def test_oversized_file_is_refused_by_its_size_with_the_limit(tmp_path):
    pools = "".join(f"  - {{name: p{i:06d}, accelerator: h100-sxm, count: 8, chips_per_server: 8, servers_per_rack: "
                    f"4, cooling: liquid, owner: owned, sharing: dedicated}}\n" for i in range(60_000))
    content = GOOD.replace("fleet:\n", "fleet:\n" + pools).encode()
    assert len(content) > 6_000_000
    errors = _errors_of_bytes(tmp_path, content)
    assert errors == [f"{tmp_path / 's.yaml'}: file is larger than 1 MB; accepted: at most 1,000,000 bytes (a "
                      "scenario describes a run; put bulk data such as jobs or requests in a trace file)"]


@pytest.mark.parametrize("snippet, expected", [
    ("seed: !!int xyz", ":9: YAML syntax: cannot read tag:yaml.org,2002:int value 'xyz'"),
    ("seed: !!float abc", ":9: YAML syntax: cannot read tag:yaml.org,2002:float value 'abc'"),
    ("outputs: {plots: !!bool maybe}", ":9: YAML syntax: cannot read tag:yaml.org,2002:bool value 'maybe'"),
])
def test_unreadable_tagged_values_name_their_line(tmp_path, snippet, expected):
    errors = errors_of(tmp_path, GOOD + snippet + "\n")
    assert len(errors) == 1 and expected in errors[0], errors


# --- numbers: finite, within a documented range, never true/false ----------------------------------------

def _generator(**fields) -> str:
    text = GENERATED.replace("DIST", "{lognormal: {median: 3600, sigma: 1}}")
    for name, value in fields.items():
        text = re.sub(rf"(?m)^      {name}: .*$", f"      {name}: {value}", text)
    return text


@pytest.mark.parametrize("text, expected", [
    (_generator(models="{resnet50: .nan}"),
     ":15 workloads.training.generator.models.resnet50: found nan: resnet50 must be finite"),
    (_generator(chips="{1: .nan}"), "workloads.training.generator.chips[1]: found nan: the value must be finite"),
    (_generator(arrival_rate_per_hour=".inf"),
     ":13 workloads.training.generator.arrival_rate_per_hour: found inf: arrival_rate_per_hour must be finite"),
    (_generator(arrival_rate_per_hour="1.0e+308"), "arrival_rate_per_hour: found 1e+308; accepted: 0.0001 to "
                                                   "10,000,000 jobs/hour"),
    (GOOD + "site: {electricity_usd_per_kwh: 1.0e+308}\n",
     ":9 site.electricity_usd_per_kwh: found 1e+308; accepted: 0 to 100 USD/kWh (far above any market price)"),
    (GOOD + "site: {power_cap_mw: .inf}\n", ":9 site.power_cap_mw: found inf: power_cap_mw must be finite"),
    (_generator(duration_s="{lognormal: {median: 1.0e+308, sigma: 1}}"),
     "duration_s.lognormal.median: found 1e+308; accepted: above 0, up to 1e+15"),
    (_generator(duration_s="{lognormal: {median: 3600, sigma: 10}}"),
     "duration_s.lognormal.sigma: found 10; accepted: 0 to 4 (at 4 the 95th percentile"),
    (GOOD.replace("count: 8", "count: 1000000000"),
     ":8 fleet[0].count: found 1000000000; accepted: 0 to 10,000,000 chips (larger fleets do not fit in memory)"),
    (GOOD.replace("count: 8", "count: 1000000000000000000000000000000"),
     ":8 fleet[0].count: found 1e+30; accepted: 0 to 10,000,000 chips (larger fleets do not fit in memory)"),
    (GOOD.replace("count: 8", "count: 1.0e+30"), ":8 fleet[0].count: found 1e+30; accepted: 0 to 10,000,000 chips"),
    (GOOD.replace("count: 8", "count: 1e30"), ":8 fleet[0].count: found '1e30': Input should be a valid integer"),
    (GOOD + "site: {pue: 'nan'}\n", ":9 site.pue: found 'nan': pue must be finite"),
    (_generator(jobs="1000000000"), ":12 workloads.training.generator.jobs: found 1000000000; accepted: above 0, "
                                    "up to 10,000,000 jobs (each job is held in memory)"),
    (_generator(chips="{1000000000000000000000000000000: 1.0}"),
     "workloads.training.generator.chips: gang size 1e+30 is too large; accepted: 1 to 10,000,000 chips"),
    (GOOD.replace("duration: 1d", "duration: " + "9" * 400), ":4 duration: found an integer of 400 digits: "
                                                             "too long; accepted: durations up to 20y"),
    (GOOD.replace("duration: 1d", "duration: 30y"), ":4 duration: found '30y': too long; accepted: durations up "
                                                    "to 20y (630,720,000 s, a data center's life)"),
    (GOOD + "seed: 100000000000000000000000\n", ":9 seed: found 1e+23; accepted: 0 to 9,223,372,036,854,775,807"),
])
def test_numbers_are_finite_and_within_a_documented_range(tmp_path, text, expected):
    errors = errors_of(tmp_path, text)
    assert any(expected in e for e in errors), errors
    assert len(errors) == 1, errors


SERVING = GOOD + """workloads:
  inference:
    - name: chat
      model: llama3-8b
      replicas: [{pool: gpu, count: 1, token_budget: BUDGET}]
      traffic: {generator: {rate_per_s: RATE, prompt_tokens: PROMPT, output_tokens: {fixed: 100}}}
"""


def _serving(budget="2048", rate="1", prompt="{lognormal: {median: 800, sigma: 0.8}}") -> str:
    return SERVING.replace("BUDGET", budget).replace("RATE", rate).replace("PROMPT", prompt)


@pytest.mark.parametrize("text, expected", [
    (_serving(budget="1000000000000000000000000000000"),
     ":13 workloads.inference[0].replicas[0].token_budget: found 1e+30; accepted: above 0, up to 10,000,000 tokens"),
    (_serving(prompt="{lognormal: {median: 1000000, sigma: 4}}"),
     ":14 workloads.inference[0].traffic.generator.prompt_tokens: found a mean of 2.98e+09 tokens; accepted: a mean "
     "up to 10,000,000 tokens (longer than any model's context window)"),
    (_serving(prompt="{fixed: 1e12}"), "prompt_tokens: found a mean of 1e+12 tokens; accepted: a mean up to"),
    (_serving(rate="1.0e+300"), ":14 workloads.inference[0].traffic.generator.rate_per_s: found 1e+300; accepted: "
                             "above 0, up to 10,000,000 requests/s"),
    (_serving(rate="10000"), ":14 workloads.inference[0].traffic.generator.rate_per_s: found 10000 requests/s: "
                             "8.64e+08 requests over the horizon; accepted: at most 100,000,000 requests at fidelity "
                             "request, each held in memory (a rate up to 1.16e+03/s), or fidelity: fluid"),
])
def test_serving_sizes_are_bounded(tmp_path, text, expected):
    errors = errors_of(tmp_path, text)
    assert any(expected in e for e in errors), errors


def test_bursty_periods_are_bounded_by_the_horizon(tmp_path):
    text = _serving().replace("output_tokens: {fixed: 100}",
                              "output_tokens: {fixed: 100}, bursty: {mean_burst_s: 0.01, mean_calm_s: 0.01}")
    errors = errors_of(tmp_path, text)
    assert any(":14 workloads.inference[0].traffic.generator.bursty: mean_burst_s + mean_calm_s = 0.02 s: 4.32e+06 "
               "burst/calm periods over the horizon; accepted: at most 1,000,000" in e for e in errors), errors


@pytest.mark.parametrize("text, expected", [
    (GOOD.replace("count: 8", "count: true"), ":8 fleet[0].count: found true: a number is expected here"),
    (GOOD + "site: {pue: true}\n", ":9 site.pue: found true: a number is expected here"),
    (_generator(models="{resnet50: true}"), "generator.models.resnet50: found true: a number is expected here"),
    (_generator(chips="{true: 1.0}"), "generator.chips[True]: found key true: a number is expected here"),
    (GOOD.replace("accelerator: h100-sxm", "accelerator: {id: x, bf16_tflops: true, memory_gb: 80, "
                                           "memory_bandwidth_tbps: 1, tdp_w: 700, idle_w: 70, "
                                           "scale_up_bandwidth_gbps: 900, scale_up_domain_chips: 8, "
                                           "scale_out_bandwidth_gbps: 50, stacks: {cuda: 0.5}}"),
     ":7 fleet[0].accelerator.bf16_tflops: found true: a number is expected here"),
])
def test_true_and_false_are_not_numbers(tmp_path, text, expected):
    errors = errors_of(tmp_path, text)
    assert any(expected in e for e in errors), errors


def test_whole_numbers_are_accepted_for_decimal_fields(tmp_path):
    scenario = load_text(tmp_path, GOOD + "site: {pue: 2, power_cap_mw: 1}\n")
    assert scenario.site.pue == 2.0 and isinstance(scenario.site.pue, float)


def test_custom_chip_numbers_must_be_finite_and_sane(tmp_path):
    chip = ("accelerator: {id: x, bf16_tflops: BF16, memory_gb: 80, memory_bandwidth_tbps: 1, tdp_w: 700, "
            "idle_w: 70, scale_up_bandwidth_gbps: 900, scale_up_domain_chips: 8, scale_out_bandwidth_gbps: 50, "
            "stacks: {cuda: 0.5}}")
    for value, expected in [(".nan", "found nan: bf16_tflops must be finite"),
                            ("'inf'", "found 'inf': bf16_tflops must be finite"),
                            ("1.0e+300", "found 1e+300: beyond any quantity a scenario describes")]:
        errors = errors_of(tmp_path, GOOD.replace("accelerator: h100-sxm", chip.replace("BF16", value)))
        assert errors == [f"{tmp_path / 's.yaml'}:7 fleet[0].accelerator.bf16_tflops: " + errors[0].split(": ", 1)[1]]
        assert expected in errors[0]


def test_pool_without_chips_runs_end_to_end(tmp_path):
    scenario = sim.load(SCENARIOS / "classroom-hetero.yaml").with_overrides(
        {"fleet.tpu-v6e.count": 0, "duration": "1d", "workloads.training.generator.jobs": 60})
    assert scenario.fleet[1].count == 0
    results = sim.run(scenario)
    assert results.summary["jobs"]["completed"] > 0
    assert set(results.jobs["accelerator"]) - {""} <= {"h100-sxm", "mtia-v2"}  # "": never placed


# --- names and messages -----------------------------------------------------------------------------------

def test_control_characters_in_names_are_refused_and_messages_stay_one_line(tmp_path):
    text = GOOD.replace("name: gpu", 'name: "gpu\\nx"') + 'site: {"p\\nue": 1}\n'
    with pytest.raises(sim.ScenarioError) as info:
        load_text(tmp_path, text)
    report = str(info.value)
    assert len(report.splitlines()) == len(info.value.problems) == 2, report
    assert ":6 fleet[0].name: found 'gpu\\nx': control character U+000A in a name or value; accepted: printable " \
           "text on one line" in report
    assert ":9 site.p\\nue: unknown field 'p\\nue' (did you mean 'pue'?)" in report


def test_free_text_may_span_lines(tmp_path):
    assert load_text(tmp_path, GOOD + "description: |\n  first line\n  second line\n").description.count("\n") == 2


def test_did_you_mean_suggests_only_close_names():
    from sim.catalog import builtin_catalog
    from sim.scenario.errors import suggest

    accelerators = builtin_catalog().accelerators
    assert "did you mean 'h100-sxm'?" in suggest("h1000", accelerators)
    assert "did you mean 'tpu-v6e'?" in suggest("tpu-v6", accelerators)
    assert "did you mean" not in suggest("mtia-v9-experimental-proto", accelerators)  # shares only 'mtia-'
    assert "did you mean" not in suggest("tpu-pool-west", ["tpu", "gpu-h100"])
    assert "did you mean" not in suggest("h1", accelerators)


def test_python_overrides_are_not_called_set_but_cli_ones_are(tmp_path):
    scenario = load_text(tmp_path, GOOD)
    with pytest.raises(sim.ScenarioError) as info:
        scenario.with_overrides({"site.pue": 0.5})
    assert str(info.value).startswith(f"{tmp_path / 's.yaml'} (override site.pue=0.5) site.pue: found 0.5")
    assert "--set" not in str(info.value)
    with pytest.raises(sim.ScenarioError) as info:
        scenario.with_overrides({"fleet.cpu.count": 1})
    assert str(info.value) == f"{tmp_path / 's.yaml'}: override fleet.cpu.count: no entry named 'cpu'; names: gpu"
    (tmp_path / "good.yaml").write_text(GOOD)
    result = _cli("run", "good.yaml", "--set", "site.pue=0.5", cwd=tmp_path)
    assert result.returncode == 2 and "good.yaml (--set site.pue=0.5) site.pue: found 0.5" in result.stderr


@pytest.mark.parametrize("overrides, expected", [
    ({"site.pue": float("nan")}, "(override site.pue=nan) site.pue: found nan: pue must be finite"),
    ({"seed": 10**5000}, "seed: found an integer of 5,001 digits; accepted: 0 to"),
    ({"description": "CYCLE"}, "description[0][0][0][0][0][0][0]…: nested deeper than 64 levels (or refers "
                               "to itself)"),
    ({"fleet.0.count": "DEEP"}, "nested deeper than 64 levels"),
    ({"description": "WIDE"}, "description: more than 2,000,000 values"),
    ({1: 2}, "override path must be dotted text like 'site.pue', got 1"),
])
def test_python_override_values_are_checked_like_a_file(tmp_path, overrides, expected):
    cycle: list = []
    cycle.append(cycle)
    deep: object = 0
    for _ in range(5000):
        deep = [deep]
    wide: list = [1]
    for _ in range(30):
        wide = [wide, wide]
    values = {"CYCLE": cycle, "DEEP": deep, "WIDE": wide}
    overrides = {key: values.get(value, value) if isinstance(value, str) else value for key, value in overrides.items()}
    scenario = load_text(tmp_path, GOOD)
    with pytest.raises(sim.ScenarioError) as info:
        scenario.with_overrides(overrides)
    assert expected in str(info.value)
    assert len(str(info.value).splitlines()) == 1


def test_malformed_custom_accelerators_do_not_break_the_name_checks(tmp_path):
    for accelerators in ["5", "[{id: [1]}]", "[{bf16_tflops: 1}]"]:
        errors = errors_of(tmp_path, GOOD.replace("h100-sxm", "h100-sx") + f"accelerators: {accelerators}\n")
        assert any("accelerators" in e for e in errors) and any("did you mean 'h100-sxm'" in e for e in errors)


def test_a_trace_scaled_beyond_what_fits_in_memory_is_refused_before_running(tmp_path):
    """19,366 Azure requests at 10,000x would be 194 million requests held in memory at request level."""
    scenario = sim.load(SCENARIOS / "llm-serving-azure.yaml")
    with pytest.raises(sim.ScenarioError, match=r"traffic.trace.scale: found 10000: 19,366 trace requests at this "
                                                 r"scale make 193,660,000"):
        scenario.with_overrides({"workloads.inference.0.traffic.trace.scale": 10000})
    fluid = scenario.with_overrides({"workloads.inference.0.traffic.trace.scale": 10000,
                                     "workloads.inference.0.fidelity": "fluid"})
    assert fluid.workloads.inference[0].traffic.trace.scale == 10000


def test_an_error_inside_an_override_names_the_override_not_the_file_line(tmp_path):
    """The file's line for a field is stale once ``--set`` replaced the section above it."""
    scenario = sim.load(SCENARIOS / "llm-fleet-year-fluid.yaml")
    with pytest.raises(sim.ScenarioError) as error:
        scenario.with_overrides({"workloads.inference.0.traffic.generator.prompt_tokens":
                                 {"lognormal": {"median": 1000, "sigma": 10}}}, via="--set")
    text = str(error.value)
    assert "(--set workloads.inference.0.traffic.generator.prompt_tokens=" in text and ".yaml:" not in text, text
