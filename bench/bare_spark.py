"""The bare Spark script: the plainest PySpark program that computes the five published tables.

What a data engineer would write for Spark without the pipeline: a local
SparkSession set up as the Spark engine sets up its own (stedi/engines.py),
each source's landing files read with spark.read.json and the landing schema's
column types, five hand-written Spark SQL statements (consent scope `reading`,
the statements of bench/bare_floor.py) and each table written to Parquet. No
rejection of bad lines, no checks, no staging, no publish: the lower bound
against which `stedi run --engine spark` is measured. It imports nothing of
the project.

    python bench/bare_spark.py --lake DIR [--out DIR] [--stage-landing]

With --stage-landing it first writes each source's landing files, read with
its schema, as a Parquet table of its own (with each line's file), and the
statements read those: the least a pipeline that stages its landing data, as
write-audit-publish does, adds to the bare script (docs/benchmarks.md).

Writes each table as Spark writes Parquet, a folder <out>/<table>/ of part
files (without --out, into a temporary folder deleted on exit), and prints
the seconds of each table (its statement, reading the landing files it needs,
and its write), in the layout of the `seconds` block of `stedi run`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from pyspark.sql import SparkSession

# The landing schemas (stedi/catalogue.py), in Spark SQL's type names.
LANDING_COLUMNS = {
    "customer": {
        "customerName": "STRING", "email": "STRING", "phone": "STRING", "birthDay": "STRING",
        "serialNumber": "STRING", "registrationDate": "BIGINT", "lastUpdateDate": "BIGINT",
        "shareWithResearchAsOfDate": "BIGINT", "shareWithPublicAsOfDate": "BIGINT",
        "shareWithFriendsAsOfDate": "BIGINT",
    },
    "accelerometer": {"user": "STRING", "timestamp": "BIGINT", "x": "DOUBLE", "y": "DOUBLE", "z": "DOUBLE"},
    "step_trainer": {"sensorReadingTime": "BIGINT", "serialNumber": "STRING", "distanceFromObject": "INT"},
}

CUSTOMER_COLUMNS = """customerName, email, phone, birthDay, serialNumber, registrationDate, lastUpdateDate,
       shareWithResearchAsOfDate, shareWithPublicAsOfDate, shareWithFriendsAsOfDate"""

# The statements of bench/bare_floor.py in Spark SQL: a subquery in place of QUALIFY,
# and `user` and `timestamp` quoted with backticks (unquoted, `user` is the current user).
STAGES = {
    # The latest record of each email (on a tie, one without consent wins), kept if it gives consent.
    # A tie of consent dates too is left to chance (the pipeline breaks it on the other columns).
    "customer_trusted": f"""
        SELECT {CUSTOMER_COLUMNS}
        FROM (SELECT *, row_number() OVER (PARTITION BY email
                                           ORDER BY lastUpdateDate DESC,
                                                    shareWithResearchAsOfDate DESC NULLS FIRST) AS recency
              FROM customer_landing)
        WHERE recency = 1 AND shareWithResearchAsOfDate IS NOT NULL""",
    "accelerometer_trusted": """
        SELECT DISTINCT a.`user`, a.`timestamp`, a.x, a.y, a.z
        FROM accelerometer_landing a
        JOIN customer_trusted c ON c.email = a.`user`
        WHERE a.`timestamp` >= c.shareWithResearchAsOfDate""",
    "customer_curated": f"""
        SELECT {CUSTOMER_COLUMNS}
        FROM customer_trusted
        WHERE email IN (SELECT `user` FROM accelerometer_trusted)""",
    # A serial number carried by more than one curated customer has no single owner.
    "step_trainer_trusted": """
        WITH owners AS (
            SELECT serialNumber, max(shareWithResearchAsOfDate) AS consent_date
            FROM customer_curated
            GROUP BY serialNumber
            HAVING count(*) = 1
        )
        SELECT DISTINCT s.sensorReadingTime, s.serialNumber, s.distanceFromObject
        FROM step_trainer_landing s
        JOIN owners o ON o.serialNumber = s.serialNumber
        WHERE s.sensorReadingTime >= o.consent_date""",
    "machine_learning_curated": """
        SELECT s.serialNumber, s.sensorReadingTime, s.distanceFromObject, a.`timestamp`, a.x, a.y, a.z
        FROM step_trainer_trusted s
        JOIN customer_curated c ON c.serialNumber = s.serialNumber
        JOIN accelerometer_trusted a ON a.`user` = c.email AND a.`timestamp` = s.sensorReadingTime""",
}


def start_spark() -> SparkSession:
    """A local session with the Spark engine's settings (stedi/engines.py, SparkEngine), so that both run alike."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[*]")
        .appName("stedi-bare-spark")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", os.environ.get("STEDI_SPARK_DRIVER_MEMORY", "4g"))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def run_bare_spark(spark: SparkSession, lake: Path, out: Path, stage_landing: bool = False) -> dict[str, float]:
    """Build the five tables from `lake`'s landing files into `out`; the seconds of each (statement and write)."""
    seconds = {}
    for source, columns in LANDING_COLUMNS.items():
        started = time.perf_counter()
        # Spark skips hidden and _-prefixed files, as the pipeline does.
        schema = ", ".join(f"`{name}` {kind}" for name, kind in columns.items())
        rows = spark.read.schema(schema).json(f"{lake.resolve()}/{source}/landing/")
        if stage_landing:
            staged = str(out.resolve() / f"{source}_landing")
            rows.selectExpr("*", "_metadata.file_path AS source_file").write.mode("overwrite").parquet(staged)
            rows = spark.read.parquet(staged)
            seconds[f"{source}_landing"] = time.perf_counter() - started
        rows.createOrReplaceTempView(f"{source}_landing")
    for table, sql in STAGES.items():
        started = time.perf_counter()
        # Kept in memory (spilling to disk if need be) for the statements after it; the write fills it.
        rows = spark.sql(sql).cache()
        rows.write.mode("overwrite").parquet(str(out.resolve() / table))
        rows.createOrReplaceTempView(table)
        seconds[table] = time.perf_counter() - started
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", type=Path, required=True, help="a lake folder: <lake>/<source>/landing/*")
    parser.add_argument("--out", type=Path, help="where to write the tables (default: a temporary folder)")
    parser.add_argument("--stage-landing", action="store_true",
                        help="write each source's landing lines as a Parquet table first, and read those")
    args = parser.parse_args()
    spark = start_spark()
    try:
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            seconds = run_bare_spark(spark, args.lake, args.out, args.stage_landing)
        else:
            with tempfile.TemporaryDirectory(prefix="stedi-bare-spark-") as out:
                seconds = run_bare_spark(spark, args.lake, Path(out), args.stage_landing)
    finally:
        spark.stop()
    print("seconds")
    for step, value in seconds.items():
        print(f"  {step:<28} {value:8.2f}")
    print(f"  {'total':<28} {sum(seconds.values()):8.2f}")


if __name__ == "__main__":
    main()
