"""Two engines run the same stages: DuckDB (the default) and Spark (what Glue runs).

Both run each stage's statements from stedi/sql/ (Spark through stedi.runner,
the code the Glue job runs; DuckDB through the committed DuckDB translations)
and split their rows into the stage's tables with the same queries
(stedi.runner.split_queries).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import duckdb

from stedi import duck
from stedi.lake import Snapshot
from stedi.runner import HELD_LINE, TOO_LONG, TYPED_LINES, run_stage, split_queries
from stedi.sql import stage_job

ENGINES = ("duckdb", "spark")
# How the landing statement's refusal of an over-long line reaches Python from Spark: inside the JVM's error.
_TOO_LONG_FROM_JVM = re.compile(rf"Exception: (?:file:)?(?P<path>[^\n]*?){re.escape(TOO_LONG)}")


class EngineError(Exception):
    """The engine cannot start; the message says what to install or set."""


class DuckDBEngine:
    name = "duckdb"

    def __init__(self, database: duckdb.DuckDBPyConnection | None = None) -> None:
        """On a connection of its own to `database` (the run's, which the audit reads too), or to a new one."""
        self.con = database.cursor() if database is not None else duckdb.connect()
        # Row order within a table means nothing here; not keeping it lets writes run in parallel.
        self.con.execute("SET SESSION preserve_insertion_order = false")

    def run_stage(self, stage: str, landing: Snapshot, staging: Path, consent_scope: str) -> None:
        job = stage_job(stage, "duckdb")
        self.con.execute(f"SET temp_directory = {duck.quote(staging / '.spill')}")
        duck.view_tables(self.con, staging, job.reads)
        for statement in job.statements:
            if statement.raw_view:  # read unscanned: the statement reads each line, and DuckDB checks it is UTF-8
                duck.view_raw(self.con, statement.raw_view, landing[statement.landing], statement.landing, scan=False)
            sql = statement.sql
            parameters = {"consent_scope": consent_scope} if "$consent_scope" in sql else None
            if job.marker is None:
                self._copy(sql, staging / statement.writes, parameters)
                continue
            if job.marker == "reason":
                sql = f"SELECT * REPLACE ({HELD_LINE} AS line) FROM ({sql})"
            # Materialised, so that the statement runs once for its tables.
            materialise = f"CREATE OR REPLACE TEMP TABLE {TYPED_LINES} AS {sql}"
            try:
                self.con.execute(materialise, parameters)
            except duckdb.Error:
                if not statement.raw_view:
                    raise
                # A landing file holds a line that is not UTF-8 (or one over the limit): scanned, it is
                # transcoded (or refused, saying why), and the statement runs again.
                duck.view_raw(self.con, statement.raw_view, landing[statement.landing], statement.landing)
                self.con.execute(materialise, parameters)
            if statement.raw_view:
                duck.read_whole(landing[statement.landing])
            columns = self.con.table(TYPED_LINES).columns
            for table, query in split_queries(job, statement, columns, quote='"').items():
                self._copy(query, staging / table)
        self.con.execute(f"DROP TABLE IF EXISTS {TYPED_LINES}")
        shutil.rmtree(staging / ".spill", ignore_errors=True)

    def _copy(self, sql: str, table_dir: Path, parameters: dict | None = None) -> None:
        table_dir.mkdir(parents=True, exist_ok=True)
        self.con.execute(f"COPY ({sql}) TO {duck.quote(table_dir / 'part-0.parquet')} (FORMAT parquet)", parameters)

    def close(self) -> None:
        self.con.close()


class SparkEngine:
    """One local Spark session for the whole run; each stage runs through the Glue job's own runner."""

    name = "spark"

    def __init__(self) -> None:
        if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
            raise EngineError("the Spark engine needs Java 17: install a JDK "
                              "(e.g. apt-get install openjdk-17-jre-headless) "
                              "or set JAVA_HOME, or run with --engine duckdb")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        try:
            from pyspark.sql import SparkSession
        except ModuleNotFoundError:
            raise EngineError("the Spark engine needs pyspark: pip install 'stedi-lakehouse[spark]' "
                              "(or run with --engine duckdb)") from None

        self.spark = (
            SparkSession.builder.master("local[*]")
            .appName("stedi")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")  # stedi prints its own progress per stage
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.driver.memory", os.environ.get("STEDI_SPARK_DRIVER_MEMORY", "4g"))
            .getOrCreate()
        )
        self.spark.sparkContext.setLogLevel("ERROR")

    def run_stage(self, stage: str, landing: Snapshot, staging: Path, consent_scope: str) -> None:
        files = {folder: [str(path.resolve()) for path in paths] for folder, paths in landing.items()}
        try:
            run_stage(self.spark, stage_job(stage, "spark"), lake="", staging=str(staging.resolve()),
                      consent_scope=consent_scope, landing_files=files)
        except Exception as error:  # py4j's, with the JVM's stack trace around the statement's own message
            refused = _TOO_LONG_FROM_JVM.search(str(error))
            if refused is None:
                raise
            raise ValueError(f"{refused['path']}{TOO_LONG}") from None  # an input error, as on DuckDB

    def close(self) -> None:
        self.spark.stop()


Engine = DuckDBEngine | SparkEngine


def make_engine(name: str, database: duckdb.DuckDBPyConnection | None = None) -> Engine:
    """The engine `name`; the DuckDB engine works in `database` if given."""
    if name == "duckdb":
        return DuckDBEngine(database)
    if name == "spark":
        return SparkEngine()
    raise EngineError(f"unknown engine {name!r}: choose one of {', '.join(ENGINES)}")
