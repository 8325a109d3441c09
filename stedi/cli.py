"""`stedi`: run the pipeline on a local lake, generate data, see and query what is published."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from stedi import duck
from stedi.checks import CheckFailed
from stedi.engines import ENGINES, EngineError
from stedi.lake import Lake, LakeError
from stedi.pipeline import RunReport, run_pipeline
from stedi.stages import CONSENT_SCOPES, DEFAULT_CONSENT_SCOPE, STAGES, TABLES, filtered_table

DEFAULT_LAKE = Path("lake")
FILTERED_TABLES = {filtered_table(stage) for stage in STAGES} - {None}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except (LakeError, EngineError, ValueError) as error:
        print(f"stedi: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stedi", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, handler, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("--lake", type=Path, default=DEFAULT_LAKE, help="the lake folder (default: ./lake)")
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

    status = command("status", _status, "the published tables, their rows and the run that wrote them")
    status.add_argument("--json", action="store_true", help="one JSON object keyed by table name")

    query = command("query", _query, "run SQL (DuckDB) over the published tables")
    query.add_argument("sql")
    query.add_argument("--json", action="store_true", help="a JSON array of row objects")
    return parser


def _run(args: argparse.Namespace) -> int:
    lake = Lake(args.lake)
    if not lake.has_landing_data():
        print(f"{lake.root} has no landing data: generating the sample lake first")
        _print_generated(_generate_sample(lake, scale=1.0, seed=7, dirt=False))
    report = run_pipeline(lake, engine=args.engine, consent_scope=args.consent_scope,
                          expected_counts=_parse_expected(args.expect), progress=print)
    _print_summary(report)
    return 0 if report.published else 1


def _parse_expected(pairs: list[str]) -> dict[str, int]:
    expected = {}
    for pair in pairs:
        table, _, rows = pair.partition("=")
        if table not in TABLES or not rows.isdigit():
            raise ValueError(f"--expect {pair!r}: want TABLE=ROWS with TABLE one of {', '.join(TABLES)}")
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
        print(f"the staged tables of this run are kept for inspection in {report.staging}")
        print("the published tables are unchanged")


def _generate_sample(lake: Lake, *, scale: float, seed: int, dirt: bool):
    from stedi.generate import generate_lake

    return generate_lake(lake.root, scale=scale, seed=seed, dirt=dirt)


def _print_generated(generated) -> None:
    for source, records in generated.records.items():
        print(f"  generated {source:<14} {records:>10,} records")


def _generate(args: argparse.Namespace) -> int:
    _print_generated(_generate_sample(Lake(args.lake), scale=args.scale, seed=args.seed, dirt=args.dirt))
    return 0


def _status(args: argparse.Namespace) -> int:
    lake = Lake(args.lake)
    manifest = lake.published()
    if manifest is None:
        raise LakeError(f"nothing is published in {lake.root} yet: run `stedi run --lake {lake.root}`")
    current = manifest["current"]
    if args.json:
        print(json.dumps({table: {"rows": rows, "run_id": current["run_id"]}
                          for table, rows in current["tables"].items()}, indent=2))
        return 0
    print(f"published run {current['run_id']} at {current['published_at']} "
          f"(engine {current['engine']}, consent scope {current['consent_scope']})")
    for table, rows in current["tables"].items():
        print(f"  {table:<32} {rows:>12,}")
    checks = current["checks"]
    print(f"checks: {checks['passed']} passed, {checks['failed']} failed, {checks['skipped']} skipped")
    if manifest["history"]:
        print("earlier published runs kept: " + ", ".join(entry["run_id"] for entry in manifest["history"]))
    return 0


def _query(args: argparse.Namespace) -> int:
    import duckdb

    lake = Lake(args.lake)
    staging = lake.published_table_dir(TABLES[0]).parent
    con = duckdb.connect()
    duck.view_tables(con, staging, TABLES)
    try:
        cursor = con.execute(args.sql)
    except duckdb.Error as error:
        raise ValueError(f"query failed: {error}") from None
    columns = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    if args.json:
        print(json.dumps([dict(zip(columns, row, strict=True)) for row in rows], default=str))
    else:
        print("\t".join(columns))
        for row in rows:
            print("\t".join("" if v is None else str(v) for v in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
