"""The ``dcsim`` command line (also ``python -m sim``).

User mistakes (a bad scenario, a bad override, a malformed trace) print one line per problem and exit
with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_USER_ERROR = 2


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_USER_ERROR
    from sim.scenario import ScenarioError
    from sim.scenario.overrides import OverrideError
    from sim.workload import TraceError

    try:
        return args.handler(args)
    except (ScenarioError, TraceError, OverrideError, FileNotFoundError) as exc:
        print(f"dcsim: error: {exc}" if not isinstance(exc, ScenarioError) else str(exc), file=sys.stderr)
        return EXIT_USER_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dcsim", description="Simulate AI data centers of heterogeneous accelerators.")
    sub = parser.add_subparsers(metavar="COMMAND")
    run = sub.add_parser("run", help="simulate a scenario and write its results")
    run.add_argument("scenario", help="scenario YAML file")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                     help="override a field, e.g. --set site.power_cap_mw=80 (repeatable)")
    run.add_argument("--out", help="output folder [default: outputs/<scenario name>]")
    run.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    run.add_argument("--quiet", action="store_true", help="print nothing but errors")
    run.set_defaults(handler=_run)
    validate = sub.add_parser("validate", help="check scenarios without simulating")
    validate.add_argument("scenarios", nargs="+")
    validate.set_defaults(handler=_validate)
    catalog = sub.add_parser("catalog", help="print the built-in accelerators and models")
    catalog.add_argument("what", nargs="?", choices=("accelerators", "models", "all"), default="all")
    catalog.set_defaults(handler=_catalog)
    schema = sub.add_parser("schema", help="print the scenario reference (every field, unit and default)")
    schema.set_defaults(handler=lambda args: print(_schema_text(), end="") or 0)
    compare = sub.add_parser("compare", help="compare the summaries of two runs")
    compare.add_argument("a", help="output folder or summary.json of run A")
    compare.add_argument("b", help="output folder or summary.json of run B")
    compare.set_defaults(handler=_compare)
    return parser


def _load(path: str, overrides: list[str]):
    import sim
    from sim.scenario.overrides import parse_assignment

    scenario = sim.load(path)
    if overrides:
        scenario = scenario.with_overrides(dict(parse_assignment(text) for text in overrides))
    return scenario


def _run(args) -> int:
    import sim
    from sim.runner import default_output_dir

    scenario = _load(args.scenario, args.overrides)
    results = sim.run(scenario, progress=not args.quiet and sys.stderr.isatty())
    out = results.save(args.out or default_output_dir(scenario), plots=False if args.no_plots else None)
    if not args.quiet:
        print(f"{scenario.name}: simulated {scenario.duration / 86400:g} days in "
              f"{results.manifest['wall_s']:.2f} s (numba {'on' if results.manifest['numba'] else 'off'})")
        print(results.table())
        print(f"results in {out}/")
    return 0


def _validate(args) -> int:
    import sim

    failed = 0
    for path in args.scenarios:
        try:
            scenario = sim.load(path)
        except sim.ScenarioError as exc:
            print(str(exc), file=sys.stderr)
            failed += 1
        else:
            print(f"{path}: ok ({scenario.name}, {len(scenario.fleet)} pools)")
    return EXIT_USER_ERROR if failed else 0


def _catalog(args) -> int:
    from sim.catalog import builtin_catalog

    catalog = builtin_catalog()
    if args.what in ("accelerators", "all"):
        print(_format_table(
            ["id", "vendor", "bf16 TF/s", "mem GB", "mem TB/s", "TDP W", "domain", "$/chip-h", "stacks"],
            [[a.id, a.vendor, f"{a.bf16_tflops:g}", f"{a.memory_gb:g}", f"{a.memory_bandwidth_tbps:g}",
              f"{a.tdp_w:g}", str(a.scale_up_domain_chips),
              "-" if a.cloud_usd_per_chip_hour is None else f"{a.cloud_usd_per_chip_hour:g}",
              ",".join(a.stacks)] for a in catalog.accelerators.values()]))
    if args.what == "all":
        print()
    if args.what in ("models", "all"):
        print(_format_table(
            ["id", "family", "params", "unit", "train FLOP/sample", "infer FLOP/sample"],
            [[m.id, m.family, f"{m.params:.3g}", m.sample_unit, f"{m.train_flop_per_sample:.3g}",
              f"{m.infer_flop_per_sample:.3g}"] for m in catalog.models.values()]))
    return 0


def _schema_text() -> str:
    from sim.scenario.reference import reference_markdown

    return reference_markdown()


def _compare(args) -> int:
    a, b = _read_summary(args.a), _read_summary(args.b)
    rows = []
    for key in sorted(set(_flatten(a)) | set(_flatten(b))):
        va, vb = _flatten(a).get(key), _flatten(b).get(key)
        if va == vb:
            continue
        numeric = isinstance(va, (int, float)) and isinstance(vb, (int, float))
        change = f"{(vb - va) / abs(va):+.1%}" if numeric and va else ""
        rows.append([key, _fmt(va), _fmt(vb), change])
    print(_format_table(["metric", "A", "B", "change"], rows) if rows else "the summaries are identical")
    return 0


def _read_summary(path: str) -> dict:
    p = Path(path)
    p = p / "summary.json" if p.is_dir() else p
    if not p.exists():
        raise FileNotFoundError(f"no summary at {p}")
    return json.loads(p.read_text())


def _flatten(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _fmt(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
