"""Glue job `customer_curated`: trusted customers who have trusted accelerometer data.

Reads   the staged tables in READS
Writes  <staging>/customer_curated           the records kept
        <staging>/customer_curated_filtered  records left out, counted per rule:
          no_trusted_readings

Job arguments: --staging s3://bucket/runs/<run id>  --consent_scope reading|customer
               [--staging_database <Glue database>]  (on AWS: register the tables for Athena)
The script needs nothing but pyspark: on Glue it is uploaded alone.
"""

import argparse

READS = ("customer_trusted", "accelerometer_trusted")
WRITES = ("customer_curated", "customer_curated_filtered")

# Every input record, with the rule that leaves it out (NULL: kept).
SQL = """
WITH readers AS (SELECT DISTINCT `user` FROM accelerometer_trusted)
SELECT c.customerName, c.email, c.phone, c.birthDay, c.serialNumber, c.registrationDate, c.lastUpdateDate,
       c.shareWithResearchAsOfDate, c.shareWithPublicAsOfDate, c.shareWithFriendsAsOfDate,
       CASE WHEN r.`user` IS NULL THEN 'no_trusted_readings' END AS filtered_by
FROM customer_trusted c
LEFT JOIN readers r ON r.`user` = c.email
"""


def run(spark, staging: str, consent_scope: str) -> None:
    for table in READS:
        spark.read.parquet(f"{staging}/{table}").createOrReplaceTempView(table)
    classified = spark.sql(SQL, args={"consent_scope": consent_scope}).persist()
    kept = classified.where("filtered_by IS NULL").drop("filtered_by")
    kept.write.mode("overwrite").parquet(f"{staging}/customer_curated")
    filtered = classified.where("filtered_by IS NOT NULL").groupBy("filtered_by").count()
    filtered = filtered.selectExpr("filtered_by AS rule", "count AS records")
    filtered.write.mode("overwrite").parquet(f"{staging}/customer_curated_filtered")
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
