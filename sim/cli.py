"""The ``dcsim`` command line (also ``python -m sim``).

User mistakes (a bad scenario, a bad override, a malformed trace, an unusable output folder, a damaged
summary) print one line per problem and exit with status 2, without a traceback. Output cut short by a
closed pipe (``dcsim catalog | head``) ends quietly with status 1; Ctrl-C ends with status 130.
"""

from __future__ import annotations

import argparse
import codecs
import os
import sys
from pathlib import Path

EXIT_USER_ERROR = 2
EXIT_BROKEN_PIPE = 1
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    _tolerate_unencodable_text()
    try:
        code = _main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away (`dcsim ... | head`): send what Python still wants to flush to /dev/null
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("dcsim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


def _main(argv: list[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_USER_ERROR
    from sim.results.compare import SummaryError
    from sim.results.output_folder import OutputError
    from sim.scenario import ScenarioError
    from sim.scenario.overrides import OverrideError
    from sim.sweep import SweepError
    from sim.workload import TraceError
    from sim.workload.memory import RunTooLargeError

    try:
        return args.handler(args)
    except (ScenarioError, TraceError, OverrideError, OutputError, SummaryError, FileNotFoundError,
            RunTooLargeError, SweepError) as exc:
        print(f"dcsim: error: {exc}" if not isinstance(exc, ScenarioError) else str(exc), file=sys.stderr)
        return EXIT_USER_ERROR


def _tolerate_unencodable_text() -> None:
    """Print what the terminal cannot encode (a non-ASCII file name under ``LC_ALL=C``) as ``\\xe9``
    escapes instead of failing. UTF-8 streams keep their own handler (surrogate escapes of undecodable
    file names then round-trip)."""
    for stream in (sys.stdout, sys.stderr):
        encoding, errors = getattr(stream, "encoding", None), getattr(stream, "errors", None)
        if not hasattr(stream, "reconfigure") or encoding is None or errors == "backslashreplace":
            continue
        try:
            utf8 = codecs.lookup(encoding).name == "utf-8"
        except LookupError:
            utf8 = False
        if errors == "strict" or not utf8:
            stream.reconfigure(errors="backslashreplace")


def _version() -> str:
    """The installed package's version; the source tree's ``sim.__version__`` when it is not installed."""
    from importlib import metadata

    try:
        return metadata.version("dcsim")
    except metadata.PackageNotFoundError:
        import sim

        return sim.__version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dcsim", description="Simulate AI data centers of heterogeneous accelerators.")
    parser.add_argument("--version", action="version", version=f"dcsim {_version()}")
    sub = parser.add_subparsers(metavar="COMMAND")
    run = sub.add_parser("run", help="simulate a scenario and write its results")
    run.add_argument("scenario", help="scenario YAML file")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                     help="override a field, e.g. --set site.power_cap_mw=80 (repeatable)")
    run.add_argument("--out", help="output folder [default: outputs/<scenario name>, or "
                     "outputs/<scenario name>--<the overrides> with --set]")
    run.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    run.add_argument("--quiet", action="store_true", help="print nothing but errors")
    run.add_argument("--no-report", action="store_true", help="skip report.html (the run's report in one HTML file)")
    run.add_argument("--replicas", type=_positive_int, metavar="N",
                     help="run N seeds spawned from the scenario's; write replica-<k>/ folders and every "
                     "figure's mean and 95 %% interval (replicas.csv, replicas.json)")
    run.set_defaults(handler=_run)
    sweep = sub.add_parser("sweep", help="run a scenario over a grid of overrides (and replicas) into one table")
    sweep.add_argument("scenario", help="scenario YAML file")
    sweep.add_argument("--grid", action="append", default=[], metavar="PATH=V1,V2,...",
                       help="a parameter and its values, e.g. --grid site.power_cap_mw=0.06,0.08,0.1 (repeatable; "
                       "with --lhs a range PATH=LOW:HIGH)")
    design = sweep.add_mutually_exclusive_group()
    design.add_argument("--zip", action="store_true", help="pair the i-th values of every --grid instead of "
                        "crossing them")
    design.add_argument("--lhs", type=_positive_int, metavar="N",
                        help="N points of a Latin hypercube over the --grid ranges")
    sweep.add_argument("--lhs-seed", type=int, metavar="SEED", help="seed of the Latin hypercube [default: the "
                       "scenario's seed]")
    sweep.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                       help="override a field at every point (repeatable)")
    sweep.add_argument("--replicas", type=_positive_int, metavar="N",
                       help="run every point with N seeds spawned from its seed [default: once, its own seed]")
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                       help="local worker processes [default: 1, in this process]")
    where.add_argument("--dask", metavar="ADDRESS", help="run on the Dask scheduler at ADDRESS "
                       "(tcp://host:8786), or 'local' for a LocalCluster of --dask-workers processes")
    sweep.add_argument("--dask-workers", type=_positive_int, default=2, metavar="N",
                       help="worker processes of --dask local [default: 2]")
    sweep.add_argument("--out", help="sweep folder [default: outputs/<scenario name>-sweep]")
    sweep.add_argument("--resume", action="store_true",
                       help="keep the rows already in the folder (same sweep only) and compute the rest")
    sweep.add_argument("--quiet", action="store_true", help="print nothing but errors")
    sweep.add_argument("--no-report", action="store_true", help="skip sweep-report.html (the sweep's report in "
                       "one HTML file)")
    sweep.set_defaults(handler=_sweep)
    validate = sub.add_parser("validate", help="check scenarios without simulating")
    validate.add_argument("scenarios", nargs="+")
    validate.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                          help="apply an override to every scenario before checking it (repeatable)")
    validate.set_defaults(handler=_validate)
    catalog = sub.add_parser("catalog", help="print the built-in accelerators and models")
    catalog.add_argument("what", nargs="?", choices=("accelerators", "models", "all"), default="all")
    catalog.set_defaults(handler=_catalog)
    schema = sub.add_parser("schema", help="print the scenario reference (every field, unit and default)")
    schema.set_defaults(handler=lambda args: print(_schema_text(), end="") or 0)
    compare = sub.add_parser("compare", help="compare the summaries of two runs")
    compare.add_argument("a", help="output folder or summary.json of run A")
    compare.add_argument("b", help="output folder or summary.json of run B")
    compare.add_argument("--only", action="append", default=[], metavar="PATTERN",
                         help="show only metrics whose name or label matches (substring, or glob with * ? [); "
                         "repeatable")
    compare.add_argument("--all", dest="show_all", action="store_true",
                         help="also list the metrics that did not change")
    compare.set_defaults(handler=_compare)
    report = sub.add_parser("report", help="write one self-contained HTML report of a run or a sweep, or of "
                            "several runs side by side")
    report.add_argument("runs", nargs="+", metavar="RUN_DIR", help="output folder of a run (several: compared), "
                        "or a sweep folder (dcsim sweep writes one)")
    report.add_argument("--out", help="the HTML file to write [default: RUN_DIR/report.html for one run, "
                        "SWEEP_DIR/sweep-report.html for a sweep, compare-report.html in the current folder for "
                        "several runs]")
    report.set_defaults(handler=_report)
    return parser


def _load(path: str, overrides: list[str]):
    import sim
    from sim.scenario.loader import with_overrides

    scenario = sim.load(path)
    if overrides:
        scenario = with_overrides(scenario, _parse_overrides(overrides), via="--set")
    return scenario


def _parse_overrides(overrides: list[str]) -> dict:
    from sim.scenario.overrides import parse_assignment

    return dict(parse_assignment(text) for text in overrides)


def _run(args) -> int:
    import sim
    from sim.results.output_folder import check_writable_folder
    from sim.runner import default_output_dir

    if args.out is not None:
        check_writable_folder(args.out)  # before loading: a mistyped --out costs nothing
    scenario = _load(args.scenario, args.overrides)
    out = Path(args.out) if args.out is not None else check_writable_folder(
        default_output_dir(scenario, args.overrides), option="output folder")
    if args.replicas is not None:
        return _run_replicas(args, scenario, out)
    results = sim.run(scenario, progress=not args.quiet and sys.stderr.isatty())
    results.save(out, plots=False if args.no_plots else None, report=not args.no_report)
    if not args.quiet:
        print(f"{scenario.name}: simulated {scenario.duration / 86400:g} days in "
              f"{results.manifest['wall_s']:.2f} s (numba {'on' if results.manifest['numba'] else 'off'})")
        if scenario.description.strip():
            print("about      " + scenario.description.strip().replace("\n", "\n           "))
        print(results.table())
        print(f"results in {out}{os.sep}")
    return 0


def _run_replicas(args, scenario, out: Path) -> int:
    import time

    import sim

    start = time.perf_counter()
    replicas = sim.run(scenario, replicas=args.replicas, progress=not args.quiet and sys.stderr.isatty())
    replicas.save(out, plots=False if args.no_plots else None, report=not args.no_report)
    if not args.quiet:
        print(f"{scenario.name}: {args.replicas} replicas of {scenario.duration / 86400:g} days (seeds spawned "
              f"from {scenario.seed}) in {time.perf_counter() - start:.2f} s")
        print(replicas.table())
        print(f"results in {out}{os.sep} (replica-0 ... replica-{args.replicas - 1}; every figure's interval in "
              "replicas.csv)")
    return 0


def _sweep(args) -> int:
    import time

    from sim.results.output_folder import OutputError, check_writable_folder, default_folder
    from sim.sweep import SweepError, parse_grid_option, run_sweep
    from sim.sweep.summary import sweep_text

    if args.out is not None:
        check_writable_folder(args.out)
    grid: dict = {}
    for text in args.grid:
        key, values = parse_grid_option(text, ranges=args.lhs is not None)
        if key in grid:
            raise SweepError(f"--grid {key}: given twice; give all its values in one --grid")
        grid[key] = values
    if args.lhs is not None and not grid:
        raise SweepError("--lhs: give the ranges to sample with --grid PATH=LOW:HIGH")
    if args.lhs_seed is not None and args.lhs is None:
        raise SweepError("--lhs-seed: only with --lhs N")
    scenario = _load(args.scenario, args.overrides)
    out = Path(args.out) if args.out is not None else Path(f"{default_folder(scenario.name, args.overrides)}-sweep")
    try:
        check_writable_folder(out, option="sweep folder")
    except OutputError as exc:
        raise SweepError(str(exc)) from None
    client = None
    if args.dask is not None:
        from sim.sweep import dask_client

        client = dask_client(args.dask, args.dask_workers)
    start = time.perf_counter()
    try:
        done = run_sweep(scenario, grid, design="lhs" if args.lhs else "zip" if args.zip else "grid",
                         samples=args.lhs, lhs_seed=args.lhs_seed, replicas=args.replicas, executor=client,
                         workers=args.workers, out=out, resume=args.resume,
                         progress=not args.quiet and sys.stderr.isatty(), via="--grid")
    except KeyboardInterrupt:
        print(f"dcsim: interrupted; the rows finished are in {out}{os.sep}sweep.parquet: the same command with "
              "--resume computes the rest", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if client is not None:
            _close_dask(client, args.dask)
    if not args.quiet:
        table = done.table
        failed = int(table["error"].notna().sum())
        points = int(table["point"].nunique())
        replicas = args.replicas or 1
        print(f"{scenario.name}: {len(table)} runs ({points} point{'s' if points > 1 else ''} x {replicas} "
              f"replica{'s' if replicas > 1 else ''}) in {time.perf_counter() - start:.2f} s: "
              f"{done.computed} computed, {done.resumed} from the earlier run, {failed} failed")
        print(sweep_text(table, list(grid)))
        print(f"table in {out}{os.sep}sweep.parquet")
    if not args.no_report:
        from sim.sweep.report import write_sweep_report

        report = write_sweep_report(out)
        if not args.quiet:
            print(f"report in {report}")
    return 0


def _close_dask(client, address: str) -> None:
    cluster = client.cluster if address == "local" else None
    client.close()
    if cluster is not None:
        cluster.close()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, found {value}")
    return value


def _validate(args) -> int:
    import sim

    if args.overrides:
        _parse_overrides(args.overrides)  # a malformed PATH=VALUE is reported once, before any file
    failed = 0
    for path in args.scenarios:
        try:
            scenario = _load(path, args.overrides)
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
            ["id", "vendor", "bf16 TF/s", "mem GB", "mem TB/s", "TDP W", "domain", "$/chip", "$/chip-h", "stacks"],
            [[a.id, a.vendor, f"{a.bf16_tflops:g}", f"{a.memory_gb:g}", f"{a.memory_bandwidth_tbps:g}",
              f"{a.tdp_w:g}", str(a.scale_up_domain_chips),
              "-" if a.price_usd is None else f"{a.price_usd:,.0f}",
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
    from sim.results.compare import compare_text, read_summary

    a, b = read_summary(args.a), read_summary(args.b)
    table = compare_text(a, b, only=args.only, show_all=args.show_all)  # a bad --only fails before any output
    print(f"A: {args.a}\nB: {args.b}\n")
    print(table)
    return 0


def _report(args) -> int:
    from sim.results.compare import SummaryError
    from sim.results.report_html import write_report
    from sim.sweep.report import is_sweep_folder, write_sweep_report

    sweeps = [run for run in args.runs if is_sweep_folder(run)]
    if sweeps and len(args.runs) > 1:
        raise SummaryError(f"{sweeps[0]}: a sweep folder is reported alone (dcsim report {sweeps[0]}); "
                           "several folders are compared only as runs")
    path = write_sweep_report(sweeps[0], args.out) if sweeps else write_report(args.runs, args.out)
    print(f"report in {path}")
    return 0


def _format_table(header: list[str], rows: list[list[str]]) -> str:
    from sim.results.compare import format_table

    return format_table(header, rows)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
