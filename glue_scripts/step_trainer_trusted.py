"""Glue job `step_trainer_trusted`: step trainer readings of curated customers.

A reading belongs to the customer whose current record carries its
serialNumber. The consent scope applies to sensorReadingTime as it does to
accelerometer timestamps. A serial number carried by more than one curated
customer has no single owner, so its readings are left out.

Reads   the staged tables in READS
Writes  <staging>/step_trainer_trusted           the records kept
        <staging>/step_trainer_trusted_filtered  records left out, counted per rule:
          no_parent (no customer has this serial number), no_consent, no_trusted_readings,
          ambiguous_owner, before_consent, duplicate

Job arguments: --staging s3://bucket/runs/<run id>  --consent_scope reading|customer
               [--staging_database <Glue database>]  (on AWS: register the tables for Athena)
The script needs nothing but pyspark: on Glue it is uploaded alone.
"""

import argparse

READS = ("customer_landing", "customer_trusted", "customer_curated", "step_trainer_landing")
WRITES = ("step_trainer_trusted", "step_trainer_trusted_filtered")

# Every input record, with the rule that leaves it out (NULL: kept).
SQL = """
WITH readings AS (
  SELECT sensorReadingTime, serialNumber, distanceFromObject,
    row_number() OVER (
      PARTITION BY sensorReadingTime, serialNumber, distanceFromObject ORDER BY source_file
    ) AS copy_number
  FROM step_trainer_landing
),
known_serials AS (SELECT DISTINCT serialNumber FROM customer_landing),
consenting_serials AS (SELECT DISTINCT serialNumber FROM customer_trusted),
owners AS (
  SELECT serialNumber, count(*) AS owner_count, max(shareWithResearchAsOfDate) AS consent_date
  FROM customer_curated
  GROUP BY serialNumber
)
SELECT r.sensorReadingTime, r.serialNumber, r.distanceFromObject,
       CASE
         WHEN k.serialNumber IS NULL THEN 'no_parent'
         WHEN t.serialNumber IS NULL THEN 'no_consent'
         WHEN o.serialNumber IS NULL THEN 'no_trusted_readings'
         WHEN o.owner_count > 1 THEN 'ambiguous_owner'
         WHEN :consent_scope = 'reading' AND r.sensorReadingTime < o.consent_date THEN 'before_consent'
         WHEN r.copy_number > 1 THEN 'duplicate'
       END AS filtered_by
FROM readings r
LEFT JOIN known_serials k ON k.serialNumber = r.serialNumber
LEFT JOIN consenting_serials t ON t.serialNumber = r.serialNumber
LEFT JOIN owners o ON o.serialNumber = r.serialNumber
"""


def run(spark, staging: str, consent_scope: str) -> None:
    for table in READS:
        spark.read.parquet(f"{staging}/{table}").createOrReplaceTempView(table)
    classified = spark.sql(SQL, args={"consent_scope": consent_scope}).persist()
    kept = classified.where("filtered_by IS NULL").drop("filtered_by")
    kept.write.mode("overwrite").parquet(f"{staging}/step_trainer_trusted")
    filtered = classified.where("filtered_by IS NOT NULL").groupBy("filtered_by").count()
    filtered = filtered.selectExpr("filtered_by AS rule", "count AS records")
    filtered.write.mode("overwrite").parquet(f"{staging}/step_trainer_trusted_filtered")
    classified.unpersist()


def register_tables(spark, database: str, staging: str) -> None:
    """On AWS: point `database`'s catalog tables at what this run wrote, for the Athena checks."""
    for table in WRITES:
        spark.sql(f"DROP TABLE IF EXISTS `{database}`.`{table}`")
        spark.sql(f"CREATE TABLE `{database}`.`{table}` USING PARQUET LOCATION '{staging}/{table}'")


if __name__ == "__main__":
    # Imported here rather than at the top: the local DuckDB engine reads this
    # script's SQL without starting Spark.
    from pyspark.sql import SparkSession

    parser = argparse.ArgumentParser()
    parser.add_argument("--staging", required=True)
    parser.add_argument("--consent_scope", choices=("reading", "customer"), default="reading")
    parser.add_argument("--staging_database")  # on AWS: the Glue database the Athena checks query
    args, _ = parser.parse_known_args()  # Glue adds arguments of its own (--JOB_ID, ...)
    spark = SparkSession.builder.getOrCreate()
    run(spark, args.staging, args.consent_scope)
    if args.staging_database:
        register_tables(spark, args.staging_database, args.staging)
