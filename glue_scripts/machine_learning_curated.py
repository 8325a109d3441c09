"""Glue job `machine_learning_curated`: step trainer readings paired with the same
customer's phone readings at the same instant, without personal data.

The pair is made through the customer who owns the serial number: joining on
the timestamp alone would pair one customer's step trainer with another
customer's phone whenever two customers share an instant.

Reads   the staged tables in READS
Writes  <staging>/machine_learning_curated

Job arguments: --staging s3://bucket/runs/<run id>  --consent_scope reading|customer
               [--staging_database <Glue database>]  (on AWS: register the tables for Athena)
The script needs nothing but pyspark: on Glue it is uploaded alone.
"""

import argparse

READS = ("customer_curated", "step_trainer_trusted", "accelerometer_trusted")
WRITES = ("machine_learning_curated",)

# The business logic of this stage.
SQL = """
SELECT s.serialNumber, s.sensorReadingTime, s.distanceFromObject, a.`timestamp`, a.x, a.y, a.z
FROM step_trainer_trusted s
JOIN customer_curated c ON c.serialNumber = s.serialNumber
JOIN accelerometer_trusted a ON a.`user` = c.email AND a.`timestamp` = s.sensorReadingTime
"""


def run(spark, staging: str, consent_scope: str) -> None:
    for table in READS:
        spark.read.parquet(f"{staging}/{table}").createOrReplaceTempView(table)
    spark.sql(SQL).write.mode("overwrite").parquet(f"{staging}/machine_learning_curated")


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
