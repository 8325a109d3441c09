"""`stedi`: run the pipeline on a local lake, generate data, see and query what is published.

Exit codes: 0 done; 1 a check failed (nothing published); 2 a usage or input
error, said in one line; 3 an unexpected error, said in one line (the
traceback with --debug or STEDI_DEBUG=1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from stedi import duck
from stedi.catalogue import (
    CONSENT_SCOPES,
    DEFAULT_CONSENT_SCOPE,
    FILTERED_TABLES,
    LANDING_SOURCES,
    RECORD_TABLES,
    TABLES,
)
from stedi.checks import CheckFailed
from stedi.engines import ENGINES, EngineError
from stedi.lake import Lake, LakeError
from stedi.pipeline import RunReport, run_history, run_pipeline

DEFAULT_LAKE = Path("lake")
REJECTED_TABLES = {source.rejected_table for source in LANDING_SOURCES}


class UsageError(Exception):
    """What the user typed cannot be done; the message says why."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def main(argv: list[str] | None = None) -> int:
    debug = os.environ.get("STEDI_DEBUG") == "1"
    try:
        args = _parser().parse_args(argv)
        debug = debug or args.debug
        code = args.command(args)
        sys.stdout.flush()  # here, where a closed pipe can be handled, not at exit
        return code
    except (UsageError, LakeError, EngineError, ValueError) as error:
        return _fail(f"stedi: {error}", 2)
    except BrokenPipeError:  # the reader stopped reading (`stedi status | head`): not an error
        _stop_writing()
        return 0
    except KeyboardInterrupt:
        return _fail("stedi: interrupted", 130)
    except Exception as error:
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (run with --debug for the traceback)"
        return _fail(f"stedi: unexpected error: {type(error).__name__}: {error}{hint}", 3)


def _stop_writing() -> None:
    """Whatever would still go to stdout goes nowhere: its reader has gone."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _print_while_read(line: str) -> None:
    """A line of a run's progress: a reader that stops reading (`stedi run | head`) does not stop the run."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        _stop_writing()


def _fail(message: str, code: int) -> int:
    print(message.splitlines()[0] if message else message, file=sys.stderr)
    return code


class _Version(argparse.Action):
    """--version, looked up only when asked for: importlib.metadata costs every run 50 ms."""

    def __init__(self, **kwargs):
        super().__init__(nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"stedi {version('stedi-lakehouse')}")
        except PackageNotFoundError:  # run from a checkout that was never installed
            print("stedi (not installed)")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stedi", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action=_Version, help="print the installed version and exit")
    commands = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name: str, handler, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("--lake", type=Path, default=DEFAULT_LAKE, help="the lake folder (default: ./lake)")
        sub.add_argument("--debug", action="store_true", help="print the traceback of an unexpected error")
        sub.set_defaults(command=handler)
        return sub

    run = command("run", _run, "run every stage, check each, publish when all checks pass")
    run.add_argument("--engine", choices=ENGINES, default="duckdb",
                     help="duckdb (default, fast) or spark (what Glue runs)")
    run.add_argument("--consent-scope", choices=CONSENT_SCOPES, default=DEFAULT_CONSENT_SCOPE,
                     help="reading: keep readings from the consent date on (default); customer: every reading")
    run.add_argument("--expect", action="append", default=[], metavar="TABLE=ROWS",
                     help="pin a table's exact row count (repeatable); the run fails on any other count")

    generate = command("generate", _generate, "write a synthetic landing zone (deterministic for a seed)")
    generate.add_argument("--scale", type=float, default=1.0, help="1.0 is about the size of the starter data")
    generate.add_argument("--seed", type=int, default=7)
    generate.add_argument("--dirt", action="store_true",
                          help="add malformed lines, duplicates, missing keys and wrong types")
    generate.add_argument("--edges", action="store_true",
                          help="add customers at the edges of the rules: ties, shared serial numbers, ...")

    status = command("status", _status, "the published tables, their rows and the run that wrote them")
    status.add_argument("--json", action="store_true", help="one JSON object keyed by table name")

    history = command("history", _history, "every run, published or not: outcome, checks, rows, set aside, seconds")
    history.add_argument("--json", action="store_true", help="one JSON object per run, newest first")
    history.add_argument("--last", type=int, default=20, metavar="N", help="the last N runs (default 20)")

    report = command("report", _report, "one run as a self-contained HTML page: stages, record funnels, checks")
    report.add_argument("--run", metavar="ID", help="the run to show (default: the latest run, published or not)")
    report.add_argument("--out", type=Path, help="where to write the page (default: <lake>/reports/<run id>.html)")

    query = command("query", _query, "run SQL (DuckDB) over the published tables, or a run's staging")
    query.add_argument("sql")
    query.add_argument("--json", action="store_true", help="a JSON array of row objects (default: a table)")
    query.add_argument("--run", metavar="ID", help="query the tables this run staged, e.g. a failed one")
    query.add_argument("--max-rows", type=int, default=40, help="rows shown in the table (default 40)")
    return parser


def _run(args: argparse.Namespace) -> int:
    expected = _parse_expected(args.expect)
    report = run_pipeline(Lake(args.lake), engine=args.engine, consent_scope=args.consent_scope,
                          expected_counts=expected, progress=_print_while_read)
    try:
        _print_summary(report)
    except BrokenPipeError:  # the run is done all the same: its exit code says how it went
        _stop_writing()
    return 0 if report.published else 1


def _parse_expected(pairs: list[str]) -> dict[str, int]:
    expected = {}
    for pair in pairs:
        table, equals, rows = pair.partition("=")
        if not equals:
            raise UsageError(f"--expect {pair!r}: write TABLE=ROWS, e.g. customer_trusted=482")
        if table not in RECORD_TABLES:
            raise UsageError(f"--expect {pair!r}: no table {table!r}; one of {', '.join(RECORD_TABLES)}")
        if not (rows.isascii() and rows.isdigit()):
            raise UsageError(f"--expect {pair!r}: ROWS must be a whole number, 0 or more, not {rows!r}")
        expected[table] = int(rows)
    return expected


def _print_summary(report: RunReport) -> None:
    print("\nrows")
    for table, rows in report.rows.items():
        if table not in FILTERED_TABLES:  # shown by rule below
            print(f"  {table:<32} {rows:>12,}")
    if report.rejected:
        print("rejected (landing lines, by reason)")
        for source, reasons in report.rejected.items():
            detail = ", ".join(f"{reason} {n:,}" for reason, n in reasons.items()) or "none"
            print(f"  {source:<32} {detail}")
    if report.filtered:
        print("filtered (records left out, by rule)")
        for stage, rules in report.filtered.items():
            detail = ", ".join(f"{rule} {n:,}" for rule, n in rules.items()) or "none"
            print(f"  {stage:<32} {detail}")
    if report.drift:
        print("unknown keys (outside the schema, kept out of the tables; lines carrying each, a file with one)")
        for source, keys in report.drift.items():
            if not keys:
                print(f"  {source:<32} none")
            for key, found in keys.items():
                lines = f"{found['lines']:,} line" + ("" if found["lines"] == 1 else "s")
                print(f"  {source:<32} {key!r} in {lines}, e.g. {found['example_file']}")
    counts = {status: sum(r.status == status for r in report.checks) for status in ("passed", "failed", "skipped")}
    print(f"checks: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    print("seconds                          stage   checks")
    for stage in report.stages:
        print(f"  {stage.stage:<28} {stage.seconds:8.2f} {stage.check_seconds:8.2f}")
    print(f"  {'total':<28} {sum(s.seconds + s.check_seconds for s in report.stages):8.2f}")
    if report.published:
        print(f"published run {report.run_id}")
    else:
        print(f"NOT published: {CheckFailed(report.stages[-1].stage, report.failures)}")
        for failure in report.failures:
            print(f"  FAILED {failure.describe()}")
        if any(failure.stage == "landing" for failure in report.failures) and report.rejected:
            from stedi.rejections import describe, find_examples

            print("rejected lines: the most frequent reasons, each with a line to look at")
            lake_root = report.staging.parents[1]  # <lake>/runs/<run id>
            for line in describe(report.rejected, find_examples(report.staging, lake_root, report.rejected)):
                print(line)
        print(f"the staged tables of this run are kept for inspection in {report.staging}")
        print("the published tables are unchanged")


def _generate_sample(lake: Lake, *, scale: float, seed: int, dirt: bool, edges: bool):
    from stedi.generate import generate_lake

    return generate_lake(lake.root, scale=scale, seed=seed, dirt=dirt, edges=edges)


def _print_generated(generated) -> None:
    for source, records in generated.records.items():
        print(f"  generated {source:<14} {records:>10,} records")


def _generate(args: argparse.Namespace) -> int:
    _print_generated(_generate_sample(Lake(args.lake), scale=args.scale, seed=args.seed, dirt=args.dirt,
                                      edges=args.edges))
    return 0


def _status(args: argparse.Namespace) -> int:
    lake = Lake(args.lake)
    manifest = lake.published()
    if manifest is None:
        raise LakeError(f"nothing is published in {lake.root} yet: run `stedi run --lake {lake.root}`")
    current = manifest["current"]
    drift = current.get("drift", {})  # published before schema drift was recorded: none known
    if args.json:
        status = {table: {"rows": rows, "run_id": current["run_id"]} for table, rows in current["tables"].items()}
        for source in LANDING_SOURCES:  # the keys of its lines outside the schema, beside the typed table
            status[source.landing_table]["unknown_keys"] = drift.get(source.name, {})
        print(json.dumps(status, indent=2))
        return 0
    print(f"published run {current['run_id']} at {current['published_at']} "
          f"(engine {current['engine']}, consent scope {current['consent_scope']})")
    tables = {table: rows for table, rows in current["tables"].items() if table not in REJECTED_TABLES}
    for table, rows in tables.items():
        print(f"  {table:<32} {rows:>12,}")
    print("audit tables (stedi query \"SELECT * FROM <table>\")")
    for source in LANDING_SOURCES:
        print(f"  {source.rejected_table:<32} {current['tables'][source.rejected_table]:>12,}  lines rejected")
    for table in FILTERED_TABLES:
        print(f"  {table:<32} {sum(current['filtered'][table.removesuffix('_filtered')].values()):>12,}"
              "  records filtered, counted by rule")
    for source in LANDING_SOURCES:
        keys = drift.get(source.name, {})
        print(f"  {source.drift_table:<32} {len(keys):>12,}  unknown keys" + (f": {', '.join(keys)}" if keys else ""))
    checks = current["checks"]
    print(f"checks: {checks['passed']} passed, {checks['failed']} failed, {checks['skipped']} skipped")
    if manifest["history"]:
        print("earlier published runs kept: " + ", ".join(entry["run_id"] for entry in manifest["history"]))
    return 0


def _history(args: argparse.Namespace) -> int:
    lake = Lake(args.lake)
    runs = run_history(lake, last=args.last)
    if not runs:
        raise LakeError(f"no run has been made in {lake.root} yet: run `stedi run --lake {lake.root}`")
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    print(f"{'run':<24} {'outcome':<10} {'engine':<7} {'scope':<9} {'checks':>13} {'rejected':>10} "
          f"{'filtered':>11} {'seconds':>8}")
    for run in runs:
        checks = f"{run['checks']['passed']} ok {run['checks']['failed']} bad"
        rejected = sum(sum(reasons.values()) for reasons in run["rejected"].values())
        filtered = sum(sum(rules.values()) for rules in run["filtered"].values())
        seconds = sum(run["stage_seconds"].values()) + sum(run["check_seconds"].values())
        print(f"{run['run_id']:<24} {run['outcome']:<10} {run['engine']:<7} {run['consent_scope']:<9} {checks:>13} "
              f"{rejected:>10,} {filtered:>11,} {seconds:>8.2f}")
        for failure in run["failures"]:
            print(f"  FAILED {failure}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from stedi.report import example_files, render

    lake = Lake(args.lake)
    if args.run:
        runs = [run for run in run_history(lake, last=len(list(lake.history_dir.glob("*.parquet"))))
                if run["run_id"] == args.run]
    else:
        runs = run_history(lake, last=1)
    if not runs:
        which = f"no run {args.run!r} in the history of" if args.run else "no run has been made in"
        raise LakeError(f"{which} {lake.root}: see `stedi history --lake {lake.root}`")
    out = args.out or lake.root / "reports" / f"{runs[0]['run_id']}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(runs[0], example_files(lake, runs[0]["run_id"])))
    print(out)
    return 0


def _query(args: argparse.Namespace) -> int:
    import duckdb

    if not args.sql.strip():
        raise UsageError("query: no SQL given, e.g. stedi query \"SELECT * FROM customer_curated\"")
    lake = Lake(args.lake)
    staging = lake.run_staging(args.run) if args.run else lake.published_staging()
    con = duckdb.connect()
    duck.view_tables(con, staging, [table for table in TABLES if (staging / table).is_dir()])
    if any(lake.history_dir.glob("*.parquet")):
        con.execute(f"CREATE VIEW history AS {duck.parquet_sql(lake.history_dir)}")
    try:
        relation = con.sql(args.sql)
        if relation is None:  # a statement that returns no rows, e.g. SET
            return 0
        if args.json:
            columns, rows = relation.columns, relation.fetchall()
            print(json.dumps([dict(zip(columns, row, strict=True)) for row in rows], default=str))
        else:
            relation.show(max_rows=args.max_rows, max_width=10_000)
    except duckdb.Error as error:
        raise UsageError(f"query failed: {error}".splitlines()[0]) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
