"""Run one stage of the pipeline on Spark: the Glue job, and the local Spark engine.

A stage is one SQL statement per output (stedi/sql/spark/). Everything around
the statements lives here, once: reading the inputs, splitting each
statement's rows into the stage's tables, writing them as Parquet and, on AWS,
registering them in the Glue catalog for the Athena checks.

A statement marks each row it does not keep:
  landing   `reason`       the line is rejected: written as uploaded, with the reason and its file
  filtering `filtered_by`  a named rule leaves the record out: counted per rule; each row stands
                           for `records` input records (kept rows for one)
  plain     (no marker)    every row is kept
A landing statement also gives each line its `unknown_keys` (the keys outside the
source's schema); the stage's drift statement reads the statement's rows as the
view TYPED_LINES and counts, per key, the lines that carry it.

On AWS the landing job first lists the landing folders once and records
that snapshot in the run's staging: the files it reads, with their ETags and
versions, and per source a symlink manifest that the <source>_raw table of
the Athena checks reads, so the checks count exactly the files the job read
however many uploads land meanwhile (as Lake.snapshot does for a local run).

This module imports nothing from stedi, and boto3 and pyspark only inside
`main`: the Glue job's script, glue_scripts/stedi_stage.py, is this file
followed by the stages' SQL (written by `make generate`), the local DuckDB
engine reads the job descriptions below without starting Spark, and the check
Lambda reads a run's snapshot with the helpers below.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Statement:
    sql: str
    writes: str  # the table of the rows kept
    sets_aside: str | None = None  # landing: the rejected lines; filtering: the per-rule counts
    landing: str | None = None  # landing: the folder under the lake whose lines the statement reads ...
    raw_view: str | None = None  # ... as this view of (line, source_file)
    columns: tuple[str, ...] = ()  # landing: the typed columns of a valid record
    drift: str | None = None  # landing: the table of the keys outside the schema, counted by the job's drift_sql


@dataclass(frozen=True)
class StageJob:
    name: str
    marker: str | None  # `reason`, `filtered_by` or None (see above)
    reads: tuple[str, ...]  # staged tables the statements read
    statements: tuple[Statement, ...]
    drift_sql: str | None = None  # landing: per key outside the schema, the lines of TYPED_LINES that carry it

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(table for s in self.statements for table in (s.writes, s.sets_aside, s.drift) if table)


# The view of a landing statement's rows that the stage's drift statement reads.
TYPED_LINES = "typed_lines"
# A landing statement's line, as its rows are held for the split: only a rejected line keeps its text
# (holding every line's would double the memory, and at 100x it made Spark's landing a fifth slower).
HELD_LINE = "CASE WHEN reason IS NOT NULL THEN line END"


# Reading the landing files: every engine reads them alike (stedi/duck.py is the DuckDB side).
# A line ends at LF, CR or CRLF (as Hadoop's and Athena's text readers split them); a .gz file
# is read unpacked; a line that is not UTF-8 is kept as its bytes read as Latin-1 (one character
# a byte), with valid_utf8 false, for the landing statement to reject.
MAX_LINE_BYTES = 16 * 1024 * 1024  # a longer line stops the run: no record is that long
# What follows the file's name when a line of it is longer (on every engine).
TOO_LONG = f": a line is longer than {MAX_LINE_BYTES} bytes; no record is that long: split the file or remove the line"
# Compressed files that Spark would unpack (its codecs go by the name) and DuckDB would not:
# refused by name, like a folder in a landing folder. A .gz file is read unpacked on every engine;
# any other file, whatever its name, as it is.
REFUSED_SUFFIXES = {".bz2": "bzip2", ".deflate": "deflate", ".lz4": "LZ4", ".snappy": "Snappy",
                    ".zst": "Zstandard"}


def refused_upload(path: str) -> str | None:
    """Why a landing file cannot be read alike by every engine (and Athena), or None."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    for suffix, kind in REFUSED_SUFFIXES.items():
        if name.endswith(suffix):
            return (f"{path}: compressed with {kind}, which the engines do not all read; "
                    "upload it uncompressed or gzip-compressed (.gz)")
    if ":" in name:
        return f"{path}: Spark (and so Glue) cannot read a file whose name holds ':'; rename it"
    return None


def refuse_unreadable(paths: Iterable[str]) -> None:
    problems = [problem for path in paths if (problem := refused_upload(path))]
    if problems:
        raise ValueError("; ".join(problems))


def _glob_escaped(path: str) -> str:
    """Spark reads a path as a glob: a file named a[1].json would be read as a1.json."""
    return "".join("\\" + c if c in "\\[]{}*?" else c for c in path)


def raw_lines(spark, files: list[str] | str, folder: str):
    """(line, source_file, valid_utf8) of every line of `files` (a list, or a folder), all in the landing folder
    `folder` (<source>/landing): source_file is <folder>/<the file's name>, as every engine gives it."""
    if isinstance(files, str):
        raw = spark.read.text(files)
        refuse_unreadable(raw.inputFiles())
    else:
        refuse_unreadable(files)
        raw = spark.read.text([_glob_escaped(path) for path in files])
    # _metadata's file_path and file_name are %-escaped, but not their '+' (which url_decode would make a space).
    path = "url_decode(replace(_metadata.file_path, '+', '%2B'))"
    name = "url_decode(replace(_metadata.file_name, '+', '%2B'))"  # short: a pattern on the path cost more
    valid = "decode(CAST(value AS BINARY), 'UTF-8') = value"  # Java replaces each byte that is not UTF-8
    too_long = f"raise_error(concat({path}, '{TOO_LONG}'))"
    return raw.selectExpr(
        f"CASE WHEN octet_length(value) > {MAX_LINE_BYTES} THEN {too_long} "
        f"WHEN {valid} THEN value ELSE decode(CAST(value AS BINARY), 'ISO-8859-1') END AS line",
        f"concat('{folder}/', {name}) AS source_file", f"{valid} AS valid_utf8")


def split_queries(job: StageJob, statement: Statement, columns: Iterable[str], quote: str) -> dict[str, str]:
    """Each table the statement writes, as a query over its rows (the view TYPED_LINES, with `columns`).

    The one definition of the split, in SQL both engines run: `quote` quotes a column name
    (a backtick for Spark, a double quote for DuckDB).
    """
    def names(columns: Iterable[str]) -> str:
        return ", ".join(f"{quote}{column}{quote}" for column in columns)

    if job.marker == "reason":
        queries = {
            statement.writes: f"SELECT {names((*statement.columns, 'source_file'))} FROM {TYPED_LINES} "
                              "WHERE reason IS NULL",
            statement.sets_aside: f"SELECT line, reason, source_file FROM {TYPED_LINES} WHERE reason IS NOT NULL",
        }
        if statement.drift:
            queries[statement.drift] = job.drift_sql
        return queries
    marker = job.marker
    return {
        statement.writes: f"SELECT {names(c for c in columns if c not in (marker, 'records'))} FROM {TYPED_LINES} "
                          f"WHERE {marker} IS NULL",
        statement.sets_aside: f"SELECT {marker} AS rule, CAST(sum(records) AS BIGINT) AS records FROM {TYPED_LINES} "
                              f"WHERE {marker} IS NOT NULL GROUP BY {marker}",
    }


def run_stage(spark, job: StageJob, *, lake: str, staging: str, consent_scope: str,
              landing_files: dict[str, list[str]] | None = None) -> None:
    """Write the stage's tables under `staging` (a folder or s3:// prefix).

    Landing reads the files `landing_files` lists per landing folder, or else every file in the folder under `lake`.
    """
    for table in job.reads:
        spark.read.parquet(f"{staging}/{table}").createOrReplaceTempView(table)
    for statement in job.statements:
        if statement.raw_view:
            listed = (landing_files or {}).get(statement.landing)
            raw_lines(spark, listed or f"{lake}/{statement.landing}/", statement.landing
                      ).createOrReplaceTempView(statement.raw_view)
        rows = spark.sql(statement.sql, args={"consent_scope": consent_scope})
        if job.marker is None:
            rows.write.mode("overwrite").parquet(f"{staging}/{statement.writes}")
            continue
        if job.marker == "reason":
            rows = rows.selectExpr(*(f"{HELD_LINE} AS line" if c == "line" else f"`{c}`" for c in rows.columns))
        rows = rows.persist()  # read once per table
        rows.createOrReplaceTempView(TYPED_LINES)
        for table, sql in split_queries(job, statement, rows.columns, quote="`").items():
            spark.sql(sql).write.mode("overwrite").parquet(f"{staging}/{table}")
        rows.unpersist()


def register_tables(spark, database: str, staging: str, tables: tuple[str, ...]) -> None:
    """On AWS: point `database`'s catalog tables at what this run wrote, for the Athena checks."""
    for table in tables:
        spark.sql(f"DROP TABLE IF EXISTS `{database}`.`{table}`")
        spark.sql(f"CREATE TABLE `{database}`.`{table}` USING PARQUET LOCATION '{staging}/{table}'")


# Under a run's staging: every landing file its landing job read, by landing folder.
LANDING_FILES = "landing_files.json"
# A Hive symlink table reads the files its manifests list, not the files under its location:
# the checks' <source>_raw tables read the snapshot this way (see register_raw_tables).
SYMLINK_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat"
SYMLINK_MANIFEST = "symlink.txt"


class LandingError(Exception):
    """The landing folders cannot be read as a run's input; the message says why."""


def split_s3(uri: str) -> tuple[str, str]:
    """s3://bucket/some/prefix -> (bucket, "some/prefix")."""
    if not uri.startswith("s3://"):
        raise LandingError(f"{uri!r} is not an s3:// address")
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key.strip("/")


def landing_views(job: StageJob) -> dict[str, str]:
    """A landing job's raw views and the landing folder each reads; empty for any other stage."""
    return {s.raw_view: s.landing for s in job.statements if s.raw_view}


def list_landing(s3, lake: str, folders: Iterable[str]) -> dict[str, list[dict]]:
    """Every upload in each landing folder under `lake` (s3://bucket), listed once: path, ETag, version, size.

    As Spark and the trigger see uploads: hidden and _-prefixed files are skipped, and a folder
    inside a landing folder is refused, as the local lake refuses one.
    """
    bucket, root = split_s3(lake)
    snapshot = {}
    for folder in folders:
        prefix = f"{root}/{folder}/" if root else f"{folder}/"
        files = []
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            for inner in page.get("CommonPrefixes", []):
                raise LandingError(f"s3://{bucket}/{inner['Prefix']} is a folder inside a landing folder: "
                                   "uploads are files; move it out")
            for version in page.get("Versions", []):
                name = version["Key"][len(prefix):]
                # A deleted file's latest version is a delete marker: its older versions are not IsLatest.
                if version["IsLatest"] and name and not name.startswith((".", "_")):
                    files.append({"path": f"s3://{bucket}/{version['Key']}", "etag": version["ETag"],
                                  "version_id": version.get("VersionId"), "size": version["Size"]})
        if not files:
            raise LandingError(f"no landing files in s3://{bucket}/{prefix}")
        snapshot[folder] = sorted(files, key=lambda file: file["path"])
    return snapshot


def write_landing_snapshot(s3, staging: str, snapshot: dict[str, list[dict]], views: dict[str, str]) -> None:
    """Record the snapshot under `staging`: LANDING_FILES, and per raw view the symlink manifest of its files."""
    bucket, root = split_s3(staging)
    s3.put_object(Bucket=bucket, Key=f"{root}/{LANDING_FILES}", Body=json.dumps(snapshot, indent=1).encode(),
                  ContentType="application/json")
    for view, folder in views.items():
        manifest = "".join(f"{file['path']}\n" for file in snapshot[folder])
        s3.put_object(Bucket=bucket, Key=f"{root}/{view}/{SYMLINK_MANIFEST}", Body=manifest.encode(),
                      ContentType="text/plain")


def read_landing_snapshot(s3, staging: str) -> dict[str, list[dict]]:
    bucket, root = split_s3(staging)
    return json.loads(s3.get_object(Bucket=bucket, Key=f"{root}/{LANDING_FILES}")["Body"].read())


def raw_table_input(view: str, staging: str) -> dict:
    """The catalog table of a raw view: each line of the snapshot's files as one string.
    \\x01 never occurs in a JSON line, so no line is split."""
    return {
        "Name": view,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "text"},
        "StorageDescriptor": {
            "Columns": [{"Name": "line", "Type": "string"}],
            "Location": f"{staging}/{view}",
            "InputFormat": SYMLINK_INPUT_FORMAT,
            "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                          "Parameters": {"field.delim": "\x01", "serialization.format": "\x01"}},
        },
    }


def register_raw_tables(glue, database: str, staging: str, views: Iterable[str]) -> None:
    """On AWS: point `database`'s raw tables at this run's snapshot, for the landing checks."""
    for view in views:
        table = raw_table_input(view, staging)
        try:
            glue.update_table(DatabaseName=database, TableInput=table)
        except glue.exceptions.EntityNotFoundException:
            glue.create_table(DatabaseName=database, TableInput=table)


def main(jobs: dict[str, StageJob], consent_scopes: tuple[str, ...], argv: list[str] | None = None) -> None:
    """The Glue job: run the stage named by --stage."""
    import boto3  # Glue provides it
    from pyspark.sql import SparkSession

    parser = argparse.ArgumentParser()
    parser.add_argument("--stage", required=True, choices=jobs)
    parser.add_argument("--staging", required=True, help="s3://bucket/runs/<run id>")
    parser.add_argument("--lake", default="", help="s3://bucket, where landing reads <source>/landing/")
    parser.add_argument("--consent_scope", choices=consent_scopes, default=consent_scopes[0])
    parser.add_argument("--staging_database", help="the Glue database the Athena checks query")
    args, _ = parser.parse_known_args(argv)  # Glue adds arguments of its own (--JOB_ID, ...)
    job = jobs[args.stage]
    views = landing_views(job)
    landing_files = None
    if views:
        s3 = boto3.client("s3")
        snapshot = list_landing(s3, args.lake, views.values())
        write_landing_snapshot(s3, args.staging, snapshot, views)
        landing_files = {folder: [file["path"] for file in files] for folder, files in snapshot.items()}
    spark = SparkSession.builder.getOrCreate()
    run_stage(spark, job, lake=args.lake, staging=args.staging, consent_scope=args.consent_scope,
              landing_files=landing_files)
    if args.staging_database:
        register_tables(spark, args.staging_database, args.staging, job.tables)
        if views:
            register_raw_tables(boto3.client("glue"), args.staging_database, args.staging, views)
