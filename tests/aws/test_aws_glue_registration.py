"""The catalog registration the Glue scripts do on AWS (--staging_database), run by local Spark.

On Glue the same statements go to the Glue Data Catalog; here they go to
Spark's own catalog, which shows that they are valid Spark SQL, that the
registered tables read exactly what the stage wrote, and that registering a
later run repoints them.
"""

import pytest

from stedi.engines import glue_script
from stedi.stages import STAGE_TABLES


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    session = active or (SparkSession.builder.master("local[2]").appName("stedi-glue-registration")
                         .config("spark.ui.enabled", "false")
                         .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("warehouse")))
                         .config("spark.sql.shuffle.partitions", "2").config("spark.sql.session.timeZone", "UTC")
                         .getOrCreate())
    yield session
    if active is None:  # a session another test made is that test's to stop
        session.stop()


def test_registered_tables_read_what_the_stage_wrote_and_follow_the_latest_run(spark, tmp_path):
    script = glue_script("customer_trusted")  # every script has the same register_tables
    spark.sql("CREATE DATABASE IF NOT EXISTS stedi_staging")
    written = {}
    for run_number, run_id in enumerate(("run-1", "run-2"), start=1):
        staging = tmp_path / "runs" / run_id
        # What the stage writes, in miniature: a few rows per table, a different number per run.
        rows = {table: run_number * (index + 1) for index, table in enumerate(script.WRITES)}
        written[run_id] = rows
        for table, count in rows.items():
            spark.range(count).selectExpr("id", "'x' AS line").write.parquet(str(staging / table))
        script.register_tables(spark, "stedi_staging", str(staging))
        for table, count in rows.items():
            assert spark.sql(f"SELECT count(*) FROM stedi_staging.{table}").first()[0] == count, table
            details = spark.sql(f"DESCRIBE TABLE EXTENDED stedi_staging.{table}")
            location = details.where("col_name = 'Location'").first().data_type
            assert location.rstrip("/").endswith(f"runs/{run_id}/{table}")
    assert script.WRITES == STAGE_TABLES["customer_trusted"]
    # Repointing dropped run-1's registration, never its files: the tables are external.
    for table in script.WRITES:
        assert spark.read.parquet(str(tmp_path / "runs" / "run-1" / table)).count() == written["run-1"][table]
