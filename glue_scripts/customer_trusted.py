"""Glue job `customer_trusted`: the current record of each customer who consented to research.

A customer's current record is the one with the latest lastUpdateDate. On a
tie, a record without consent wins (consent holds only when every tied record
gives it); the remaining columns make the choice deterministic. A later record
without shareWithResearchAsOfDate revokes consent.

Reads   the staged tables in READS
Writes  <staging>/customer_trusted           the records kept
        <staging>/customer_trusted_filtered  records left out, counted per rule:
          superseded (an older record of the same email), no_consent

Job arguments: --staging s3://bucket/runs/<run id>  --consent_scope reading|customer
               [--staging_database <Glue database>]  (on AWS: register the tables for Athena)
The script needs nothing but pyspark: on Glue it is uploaded alone.
"""

import argparse

READS = ("customer_landing",)
WRITES = ("customer_trusted", "customer_trusted_filtered")

# Every input record, with the rule that leaves it out (NULL: kept).
SQL = """
WITH ranked AS (
  SELECT *,
    row_number() OVER (
      PARTITION BY email
      ORDER BY lastUpdateDate DESC, shareWithResearchAsOfDate DESC NULLS FIRST, source_file DESC,
               serialNumber, registrationDate, customerName, phone, birthDay,
               shareWithPublicAsOfDate, shareWithFriendsAsOfDate
    ) AS recency
  FROM customer_landing
)
SELECT customerName, email, phone, birthDay, serialNumber, registrationDate, lastUpdateDate,
       shareWithResearchAsOfDate, shareWithPublicAsOfDate, shareWithFriendsAsOfDate,
       CASE
         WHEN recency > 1 THEN 'superseded'
         WHEN shareWithResearchAsOfDate IS NULL THEN 'no_consent'
       END AS filtered_by
FROM ranked
"""


def run(spark, staging: str, consent_scope: str) -> None:
    for table in READS:
        spark.read.parquet(f"{staging}/{table}").createOrReplaceTempView(table)
    classified = spark.sql(SQL, args={"consent_scope": consent_scope}).persist()
    kept = classified.where("filtered_by IS NULL").drop("filtered_by")
    kept.write.mode("overwrite").parquet(f"{staging}/customer_trusted")
    filtered = classified.where("filtered_by IS NOT NULL").groupBy("filtered_by").count()
    filtered = filtered.selectExpr("filtered_by AS rule", "count AS records")
    filtered.write.mode("overwrite").parquet(f"{staging}/customer_trusted_filtered")
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
