"""Run one stage of the pipeline on Spark: the Glue job, and the local Spark engine.

A stage is one SQL statement per output (stedi/sql/spark/). Everything around
the statements lives here, once: reading the inputs, splitting each
statement's rows into the stage's tables, writing them as Parquet and, on AWS,
registering them in the Glue catalog for the Athena checks.

A statement marks each row it does not keep:
  landing   `reason`       the line is rejected: written as uploaded, with the reason and its file
  filtering `filtered_by`  a named rule leaves the record out: counted per rule
  plain     (no marker)    every row is kept

This module imports nothing from stedi and pyspark only inside `main`: the
Glue job's script, glue_scripts/stedi_stage.py, is this file followed by the
stages' SQL (written by `make generate`), and the local DuckDB engine reads
the job descriptions below without starting Spark.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(frozen=True)
class Statement:
    sql: str
    writes: str  # the table of the rows kept
    sets_aside: str | None = None  # landing: the rejected lines; filtering: the per-rule counts
    landing: str | None = None  # landing: the folder under the lake whose lines the statement reads ...
    raw_view: str | None = None  # ... as this view of (line, source_file)
    columns: tuple[str, ...] = ()  # landing: the typed columns of a valid record


@dataclass(frozen=True)
class StageJob:
    name: str
    marker: str | None  # `reason`, `filtered_by` or None (see above)
    reads: tuple[str, ...]  # staged tables the statements read
    statements: tuple[Statement, ...]

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(table for s in self.statements for table in (s.writes, s.sets_aside) if table)


def run_stage(spark, job: StageJob, *, lake: str, staging: str, consent_scope: str,
              landing_files: dict[str, list[str]] | None = None) -> None:
    """Write the stage's tables under `staging` (a folder or s3:// prefix).

    Landing reads the files `landing_files` lists per landing folder, or else every file in the folder under `lake`.
    """
    for table in job.reads:
        spark.read.parquet(f"{staging}/{table}").createOrReplaceTempView(table)
    for statement in job.statements:
        if statement.raw_view:
            files = (landing_files or {}).get(statement.landing) or f"{lake}/{statement.landing}/"
            raw = spark.read.text(files)
            raw.selectExpr("value AS line", "_metadata.file_path AS source_file").createOrReplaceTempView(
                statement.raw_view)
        rows = spark.sql(statement.sql, args={"consent_scope": consent_scope})
        if job.marker is None:
            rows.write.mode("overwrite").parquet(f"{staging}/{statement.writes}")
            continue
        rows = rows.persist()  # read twice: once per table
        kept = rows.where(f"{job.marker} IS NULL")
        if job.marker == "reason":
            kept = kept.select(*statement.columns, "source_file")
            aside = rows.where("reason IS NOT NULL").select("line", "reason", "source_file")
        else:
            kept = kept.drop(job.marker)
            aside = (rows.where(f"{job.marker} IS NOT NULL").groupBy(job.marker).count()
                     .selectExpr(f"{job.marker} AS rule", "count AS records"))
        kept.write.mode("overwrite").parquet(f"{staging}/{statement.writes}")
        aside.write.mode("overwrite").parquet(f"{staging}/{statement.sets_aside}")
        rows.unpersist()


def register_tables(spark, database: str, staging: str, tables: tuple[str, ...]) -> None:
    """On AWS: point `database`'s catalog tables at what this run wrote, for the Athena checks."""
    for table in tables:
        spark.sql(f"DROP TABLE IF EXISTS `{database}`.`{table}`")
        spark.sql(f"CREATE TABLE `{database}`.`{table}` USING PARQUET LOCATION '{staging}/{table}'")


def main(jobs: dict[str, StageJob], consent_scopes: tuple[str, ...]) -> None:
    """The Glue job: run the stage named by --stage."""
    from pyspark.sql import SparkSession

    parser = argparse.ArgumentParser()
    parser.add_argument("--stage", required=True, choices=jobs)
    parser.add_argument("--staging", required=True, help="s3://bucket/runs/<run id>")
    parser.add_argument("--lake", default="", help="s3://bucket, where landing reads <source>/landing/")
    parser.add_argument("--consent_scope", choices=consent_scopes, default=consent_scopes[0])
    parser.add_argument("--staging_database", help="the Glue database the Athena checks query")
    args, _ = parser.parse_known_args()  # Glue adds arguments of its own (--JOB_ID, ...)
    job = jobs[args.stage]
    spark = SparkSession.builder.getOrCreate()
    run_stage(spark, job, lake=args.lake, staging=args.staging, consent_scope=args.consent_scope)
    if args.staging_database:
        register_tables(spark, args.staging_database, args.staging, job.tables)
