"""Glue job `landing`: type the raw JSON-lines uploads, rejecting what does not fit.

Reads   <lake>/<source>/landing/*   one JSON object per line, as uploaded
Writes  <staging>/<source>_landing   each valid record, typed, with the file it came from
        <staging>/<source>_rejected  each invalid line as uploaded, the reason, the file

Every non-blank line lands in exactly one of the two. Reasons:
  malformed_json       the line is not one JSON object
  missing_field:<f>    a required key is absent or null
  wrong_type:<f>       a value does not fit the column's type
The first problem found, in schema order, is the reason given.

Job arguments: --lake s3://bucket  --staging s3://bucket/runs/<run id>
               [--staging_database <Glue database>]  (on AWS: register the tables for Athena)
The script needs nothing but pyspark: on Glue it is uploaded alone.
"""

import argparse

# Source -> (field, SQL type, required). Landing is always read with these
# schemas, never inferred: a new or retyped key cannot change a table.
LANDING_SCHEMAS = {
    "customer": (
        ("customerName", "STRING", False),
        ("email", "STRING", True),
        ("phone", "STRING", False),
        ("birthDay", "STRING", False),
        ("serialNumber", "STRING", True),
        ("registrationDate", "BIGINT", False),
        ("lastUpdateDate", "BIGINT", True),
        ("shareWithResearchAsOfDate", "BIGINT", False),
        ("shareWithPublicAsOfDate", "BIGINT", False),
        ("shareWithFriendsAsOfDate", "BIGINT", False),
    ),
    "accelerometer": (
        ("user", "STRING", True),
        ("timestamp", "BIGINT", True),
        ("x", "DOUBLE", True),
        ("y", "DOUBLE", True),
        ("z", "DOUBLE", True),
    ),
    "step_trainer": (
        ("sensorReadingTime", "BIGINT", True),
        ("serialNumber", "STRING", True),
        ("distanceFromObject", "INT", True),
    ),
}

# A JSON value, as text, that fits each type. No backslashes, so the patterns
# mean the same in every SQL dialect the statement is translated to.
NUMBER_PATTERNS = {
    "BIGINT": "^-?[0-9]{1,18}$",
    "INT": "^-?[0-9]{1,9}$",
    "DOUBLE": "^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$",
}


def wrong_type(field: str, sql_type: str) -> str:
    """SQL condition: the extracted text of `field` is present but does not fit `sql_type`."""
    if sql_type == "STRING":  # a nested object or array is not a string
        return f"substr(`{field}`, 1, 1) IN ('{{', '[')"
    return f"NOT `{field}` RLIKE '{NUMBER_PATTERNS[sql_type]}'"


def parse_sql(source: str) -> str:
    """The statement that types every non-blank line of `<source>_raw(line, source_file)`.

    Result: line, source_file, reason (NULL for a valid record), one typed column per field.
    """
    fields = LANDING_SCHEMAS[source]
    # Every key read as text, in one parse of the line; typing happens below, so
    # a value of the wrong type is seen and named rather than turned into NULL.
    as_text = ", ".join(f"`{name}` STRING" for name, _, _ in fields)
    extracted = ",\n".join(f"    record.`{name}` AS `{name}`" for name, _, _ in fields)
    problems = []
    for name, sql_type, required in fields:
        if required:
            problems.append(f"WHEN `{name}` IS NULL OR trim(`{name}`) = '' THEN 'missing_field:{name}'")
        problems.append(f"WHEN `{name}` IS NOT NULL AND {wrong_type(name, sql_type)} THEN 'wrong_type:{name}'")
    reasons = "\n".join(f"      {problem}" for problem in problems)
    typed = ",\n".join(
        f"  `{name}`" if sql_type == "STRING" else f"  TRY_CAST(`{name}` AS {sql_type}) AS `{name}`"
        for name, sql_type, _ in fields
    )
    return f"""
WITH lines AS (
  SELECT trim(line) AS line,
         regexp_extract(source_file, '([^/]+/landing/[^/]+)$', 1) AS source_file
  FROM {source}_raw
  WHERE trim(line) <> ''
),
parsed AS (
  SELECT line, source_file,
    line LIKE '{{%}}' AND json_object_keys(line) IS NOT NULL AS is_object,
    from_json(line, '{as_text}') AS record
  FROM lines
),
extracted AS (
  SELECT line, source_file, is_object,
{extracted}
  FROM parsed
),
checked AS (
  SELECT *,
    CASE
      WHEN NOT is_object THEN 'malformed_json'
{reasons}
    END AS reason
  FROM extracted
)
SELECT line, source_file, reason,
{typed}
FROM checked
"""


PARSE_SQL = {source: parse_sql(source) for source in LANDING_SCHEMAS}
WRITES = tuple(f"{source}_{kind}" for source in LANDING_SCHEMAS for kind in ("landing", "rejected"))


def run(spark, lake: str, staging: str) -> None:
    for source, sql in PARSE_SQL.items():
        raw = spark.read.text(f"{lake}/{source}/landing/")
        raw.selectExpr("value AS line", "_metadata.file_path AS source_file").createOrReplaceTempView(f"{source}_raw")
        parsed = spark.sql(sql).persist()
        fields = [name for name, _, _ in LANDING_SCHEMAS[source]]
        valid = parsed.where("reason IS NULL").select(*fields, "source_file")
        valid.write.mode("overwrite").parquet(f"{staging}/{source}_landing")
        rejected = parsed.where("reason IS NOT NULL").select("line", "reason", "source_file")
        rejected.write.mode("overwrite").parquet(f"{staging}/{source}_rejected")
        parsed.unpersist()


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
    parser.add_argument("--lake", required=True)
    parser.add_argument("--staging", required=True)
    parser.add_argument("--staging_database")  # on AWS: the Glue database the Athena checks query
    args, _ = parser.parse_known_args()  # Glue adds arguments of its own (--JOB_ID, ...)
    spark = SparkSession.builder.getOrCreate()
    run(spark, args.lake, args.staging)
    if args.staging_database:
        register_tables(spark, args.staging_database, args.staging)
