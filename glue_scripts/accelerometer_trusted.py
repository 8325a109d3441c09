"""Glue job `accelerometer_trusted`: phone readings of customers who consented.

Consent scope `reading` (the default) keeps readings taken at or after the
customer's shareWithResearchAsOfDate; `customer` keeps every reading of a
consenting customer. A record repeated exactly counts once; readings that
differ only in x/y/z are distinct and all stay.

Reads   the staged tables in READS
Writes  <staging>/accelerometer_trusted           the records kept
        <staging>/accelerometer_trusted_filtered  records left out, counted per rule:
          no_parent (no customer has this email), no_consent, before_consent, duplicate

Job arguments: --staging s3://bucket/runs/<run id>  --consent_scope reading|customer
               [--staging_database <Glue database>]  (on AWS: register the tables for Athena)
The script needs nothing but pyspark: on Glue it is uploaded alone.
"""

import argparse

READS = ("customer_landing", "customer_trusted", "accelerometer_landing")
WRITES = ("accelerometer_trusted", "accelerometer_trusted_filtered")

# Every input record, with the rule that leaves it out (NULL: kept).
SQL = """
WITH readings AS (
  SELECT `user`, `timestamp`, x, y, z,
    row_number() OVER (PARTITION BY `user`, `timestamp`, x, y, z ORDER BY source_file) AS copy_number
  FROM accelerometer_landing
),
known_emails AS (SELECT DISTINCT email FROM customer_landing)
SELECT r.`user`, r.`timestamp`, r.x, r.y, r.z,
       CASE
         WHEN k.email IS NULL THEN 'no_parent'
         WHEN c.email IS NULL THEN 'no_consent'
         WHEN :consent_scope = 'reading' AND r.`timestamp` < c.shareWithResearchAsOfDate THEN 'before_consent'
         WHEN r.copy_number > 1 THEN 'duplicate'
       END AS filtered_by
FROM readings r
LEFT JOIN known_emails k ON k.email = r.`user`
LEFT JOIN customer_trusted c ON c.email = r.`user`
"""


def run(spark, staging: str, consent_scope: str) -> None:
    for table in READS:
        spark.read.parquet(f"{staging}/{table}").createOrReplaceTempView(table)
    classified = spark.sql(SQL, args={"consent_scope": consent_scope}).persist()
    kept = classified.where("filtered_by IS NULL").drop("filtered_by")
    kept.write.mode("overwrite").parquet(f"{staging}/accelerometer_trusted")
    filtered = classified.where("filtered_by IS NOT NULL").groupBy("filtered_by").count()
    filtered = filtered.selectExpr("filtered_by AS rule", "count AS records")
    filtered.write.mode("overwrite").parquet(f"{staging}/accelerometer_trusted_filtered")
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
