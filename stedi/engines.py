"""Two engines run the same Glue scripts: DuckDB (the default) and Spark (what Glue runs).

Both take each stage's SQL from its script in glue_scripts/: Spark runs the
script's own `run`; DuckDB runs the same statements, translated, and writes
the same tables with the same split into kept and filtered records.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

from stedi import duck
from stedi.lake import Lake
from stedi.sqldialect import spark_to_duckdb
from stedi.stages import filtered_table

GLUE_SCRIPTS = Path(__file__).resolve().parent.parent / "glue_scripts"
ENGINES = ("duckdb", "spark")


class EngineError(Exception):
    """The engine cannot start; the message says what to install or set."""


@cache
def glue_script(stage: str) -> ModuleType:
    """The Glue script of a stage, imported from glue_scripts/<stage>.py."""
    path = GLUE_SCRIPTS / f"{stage}.py"
    spec = importlib.util.spec_from_file_location(f"glue_scripts.{stage}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class DuckDBEngine:
    name = "duckdb"

    def __init__(self) -> None:
        import duckdb

        self.con = duckdb.connect()
        # Row order within a table means nothing here; not keeping it lets writes run in parallel.
        self.con.execute("SET preserve_insertion_order = false")

    def run_stage(self, stage: str, lake: Lake, staging: Path, consent_scope: str) -> None:
        script = glue_script(stage)
        self.con.execute(f"SET temp_directory = {duck.quote(staging / '.spill')}")
        if stage == "landing":
            for source, sql in script.PARSE_SQL.items():
                duck.view_raw(self.con, source, lake.landing_files(source))
                fields = ", ".join(f'"{name}"' for name, _, _ in script.LANDING_SCHEMAS[source])
                # Only a rejected record keeps its raw line: holding every line would double the memory.
                self._classify(f"SELECT * REPLACE (CASE WHEN reason IS NOT NULL THEN line END AS line) "
                               f"FROM ({spark_to_duckdb(sql)})")
                self._copy(f"SELECT {fields}, source_file FROM classified WHERE reason IS NULL",
                           staging / f"{source}_landing")
                self._copy("SELECT line, reason, source_file FROM classified WHERE reason IS NOT NULL",
                           staging / f"{source}_rejected")
        else:
            duck.view_tables(self.con, staging, script.READS)
            sql = spark_to_duckdb(script.SQL, consent_scope=consent_scope)
            if filtered_table(stage):
                self._classify(sql)
                self._copy("SELECT * EXCLUDE (filtered_by) FROM classified WHERE filtered_by IS NULL", staging / stage)
                self._copy("SELECT filtered_by AS rule, count(*) AS records FROM classified "
                           "WHERE filtered_by IS NOT NULL GROUP BY filtered_by", staging / filtered_table(stage))
            else:
                self._copy(sql, staging / stage)
        self.con.execute("DROP TABLE IF EXISTS classified")
        shutil.rmtree(staging / ".spill", ignore_errors=True)

    def _classify(self, sql: str) -> None:
        """Materialise a statement whose rows are split into two tables, so it runs once."""
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE classified AS {sql}")

    def _copy(self, sql: str, table_dir: Path) -> None:
        table_dir.mkdir(parents=True, exist_ok=True)
        self.con.execute(f"COPY ({sql}) TO {duck.quote(table_dir / 'part-0.parquet')} (FORMAT parquet)")

    def close(self) -> None:
        self.con.close()


class SparkEngine:
    """One local Spark session for the whole run; each stage runs its Glue script unmodified."""

    name = "spark"

    def __init__(self) -> None:
        if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
            raise EngineError("the Spark engine needs Java 17: install a JDK "
                              "(e.g. apt-get install openjdk-17-jre-headless) "
                              "or set JAVA_HOME, or run with --engine duckdb")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        from pyspark.sql import SparkSession

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

    def run_stage(self, stage: str, lake: Lake, staging: Path, consent_scope: str) -> None:
        script = glue_script(stage)
        if stage == "landing":
            script.run(self.spark, str(lake.root.resolve()), str(staging.resolve()))
        else:
            script.run(self.spark, str(staging.resolve()), consent_scope)

    def close(self) -> None:
        self.spark.stop()


def make_engine(name: str) -> DuckDBEngine | SparkEngine:
    if name == "duckdb":
        return DuckDBEngine()
    if name == "spark":
        return SparkEngine()
    raise EngineError(f"unknown engine {name!r}: choose one of {', '.join(ENGINES)}")
