"""Estimate the bytes Athena would scan for one run's checks, from a local run's staged tables.

    python bench/athena_bytes.py --lake DIR

Takes the lake's published run (`stedi run` on DuckDB or Spark writes the same
Parquet layout as Glue does on S3) and, stage by stage, the queries the check
Lambda sends to Athena, as stedi.accounting.audit asks them and
stedi.aws.athena groups them: the stage's values (row counts and checks) in one
query of one row, but for a query of information_schema, which goes on its own,
and one query per table of what the stage set aside, and for landing one of the
drift. A check pinned to a supplied count is skipped when no count is supplied,
as here.

Bytes scanned by a query, per table it names:
* Parquet: the compressed size of the columns the query names (Athena reads only
  those column chunks; a bare count(*) reads only the footers, taken as 0);
* JSON: the whole table as JSON lines (text is read whole, whatever the query);
* the <source>_raw tables are the landing files, read whole in both cases.
A query of one row made of several scans what each of its parts scans.
Athena bills at least 10 MB per query, rounded up to the next MB.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import duckdb
import sqlglot
from sqlglot import exp

from stedi.accounting import audit
from stedi.aws.athena import grouped
from stedi.catalogue import SOURCE, SOURCES, STAGES, TABLES
from stedi.duck import quote
from stedi.lake import Lake

MB = 1024 * 1024
MINIMUM_BILLED = 10 * MB
CONSENT_SCOPE = "reading"


def stage_queries(stage: str) -> list[list[str]]:
    """What the check Lambda sends to Athena for a stage: each query, as the parts it is made of."""
    asked: list[list[str]] = []

    def ask(values: list[str], rows: list[str]) -> tuple[dict, dict]:
        together, alone = grouped(values)
        asked.extend([[*together]] if together else [])
        asked.extend([sql] for sql in (*alone, *rows))
        return {sql: 0 for sql in values}, {sql: [] for sql in rows}

    audit(stage, ask, consent_scope=CONSENT_SCOPE, expected_counts={}, schema="stedi_staging")
    return asked


def table_sizes(con: duckdb.DuckDBPyConnection, lake: Lake, staging: Path) -> tuple[dict, dict]:
    """Per staged table: bytes of each Parquet column, and bytes as JSON lines; raw tables as landed."""
    columns, as_json = {}, {}
    with tempfile.TemporaryDirectory(prefix="stedi-json-") as scratch:
        for table in TABLES:
            files = quote(staging / table / "*.parquet")
            columns[table] = dict(con.execute(
                f"SELECT lower(path_in_schema), sum(total_compressed_size) FROM parquet_metadata({files}) "
                "GROUP BY 1").fetchall())
            target = Path(scratch) / f"{table}.json"
            con.execute(f"COPY (SELECT * FROM read_parquet({files})) TO {quote(target)} (FORMAT json)")
            as_json[table] = target.stat().st_size
            target.unlink()
    for source in SOURCES:
        landed = sum(f.stat().st_size for f in lake.landing_files(source))
        columns[SOURCE[source].raw_table] = {"line": landed}
        as_json[SOURCE[source].raw_table] = landed
    return columns, as_json


def scanned(sql: str, columns: dict, as_json: dict) -> tuple[int, int]:
    """Bytes one query scans with the staged tables in Parquet, and in JSON."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    named_tables = {table.name for table in tree.find_all(exp.Table)} & columns.keys()
    named_columns = {column.name.lower() for column in tree.find_all(exp.Column)}
    parquet = sum(size for table in named_tables for name, size in columns[table].items()
                  if name in named_columns or table.endswith("_raw"))
    return parquet, sum(as_json[table] for table in named_tables)


def billed(nbytes: int) -> int:
    return max(MINIMUM_BILLED, math.ceil(nbytes / MB) * MB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", type=Path, required=True, help="a lake with a published run")
    lake = Lake(parser.parse_args().lake)
    staging = lake.published_staging()
    con = duckdb.connect()
    columns, as_json = table_sizes(con, lake, staging)

    print(f"run {staging.name}: table sizes (MB)\n\n| table | Parquet | as JSON lines |\n|---|---:|---:|")
    for table in columns:
        print(f"| {table} | {sum(columns[table].values()) / MB:,.2f} | {as_json[table] / MB:,.2f} |")
    print("\n| stage | queries | Parquet scanned MB | Parquet billed MB | JSON scanned MB | JSON billed MB |")
    print("|---|---:|---:|---:|---:|---:|")
    totals = [0, 0, 0, 0, 0]
    for stage in STAGES:
        figures = [tuple(map(sum, zip(*(scanned(sql, columns, as_json) for sql in parts), strict=True)))
                   for parts in stage_queries(stage)]
        row = [len(figures), sum(p for p, _ in figures), sum(billed(p) for p, _ in figures),
               sum(j for _, j in figures), sum(billed(j) for _, j in figures)]
        totals = [a + b for a, b in zip(totals, row, strict=True)]
        print(f"| {stage} | {row[0]} | " + " | ".join(f"{n / MB:,.1f}" for n in row[1:]) + " |")
    print(f"| total | {totals[0]} | " + " | ".join(f"{n / MB:,.1f}" for n in totals[1:]) + " |")


if __name__ == "__main__":
    main()
