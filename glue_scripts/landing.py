"""Glue job `landing`: type the raw JSON-lines uploads, rejecting what does not fit.

Reads   <lake>/<source>/landing/*   one JSON object per line, as uploaded
Writes  <staging>/<source>_landing   each valid record, typed, with the file it came from
        <staging>/<source>_rejected  each invalid line as uploaded, the reason, the file

Every non-blank line lands in exactly one of the two. Nearly every line is
*plain*: a flat object of the schema's keys with plainly written values; it
is typed in one parse. Any other line has each key read as text and checked
against its type, which the plain form never contradicts. Reasons:
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

# How a value is written in a *plain* line, the shape of nearly every upload.
# Each form is a subset of what the rules above accept, and every JSON parser
# reads it to the same value the rules give: numbers no longer than a double
# holds exactly, strings of printable ASCII without quote, backslash or
# bracket characters (so never a nested value, never an escape).
PLAIN_VALUES = {
    "STRING": '"[a-zA-Z0-9 !#$%&()*+,./:;<=>?@^_`|}~-]*"',
    "BIGINT": "-?(0|[1-9][0-9]{0,17})",
    "INT": "-?(0|[1-9][0-9]{0,8})",
    "DOUBLE": "-?(0|[1-9][0-9]{0,14})([.][0-9]{1,15})?",
}


def wrong_type(value: str, sql_type: str) -> str:
    """SQL condition: the text `value` of a field is present but does not fit `sql_type`."""
    if sql_type == "STRING":  # a nested object or array is not a string
        return f"substr({value}, 1, 1) IN ('{{', '[')"
    return f"NOT {value} RLIKE '{NUMBER_PATTERNS[sql_type]}'"


def plain_pattern(source: str) -> str:
    """A regular expression for a plain line: one flat object of the schema's keys, plainly written values."""
    keys = []
    for name, sql_type, required in LANDING_SCHEMAS[source]:
        value = PLAIN_VALUES[sql_type] if required else f"{PLAIN_VALUES[sql_type]}|null"
        keys.append(f'"{name}": ?({value})')
    key = "(" + "|".join(keys) + ")"
    return f"^[{{]{key}(, ?{key})*[}}]$"


def parse_sql(source: str) -> str:
    """The statement that types every non-blank line of `<source>_raw(line, source_file)`.

    Result: line, source_file, reason (NULL for a valid record), one typed column per field.
    """
    fields = LANDING_SCHEMAS[source]
    typed_schema = ", ".join(f"`{name}` {sql_type}" for name, sql_type, _ in fields)
    text_schema = ", ".join(f"`{name}` STRING" for name, _, _ in fields)
    complete = []  # every required key present, and a required string not blank
    for name, sql_type, required in fields:
        if required:
            complete.append(f"record.`{name}` IS NOT NULL")
            if sql_type == "STRING":
                complete.append(f"trim(record.`{name}`) <> ''")
    plain_valid = "\n      AND ".join(["plain", *complete])
    problems = []
    for name, sql_type, required in fields:
        text = f"as_text.`{name}`"
        if required:
            problems.append(f"WHEN {text} IS NULL OR trim({text}) = '' THEN 'missing_field:{name}'")
        problems.append(f"WHEN {text} IS NOT NULL AND {wrong_type(text, sql_type)} THEN 'wrong_type:{name}'")
    reasons = "\n".join(f"      {problem}" for problem in problems)
    typed = ",\n".join(
        f"  CASE WHEN plain_valid THEN record.`{name}` ELSE "
        + (f"as_text.`{name}`" if sql_type == "STRING" else f"TRY_CAST(as_text.`{name}` AS {sql_type})")
        + f" END AS `{name}`"
        for name, sql_type, _ in fields
    )
    return f"""
WITH lines AS (
  SELECT line,
    regexp_extract(source_file, '([^/]+/landing/[^/]+)$', 1) AS source_file,
    line RLIKE '{plain_pattern(source)}' AS plain  -- see plain_pattern
  FROM {source}_raw
  WHERE line LIKE '{{%' OR trim(line) <> ''  -- a blank line is no record; most lines open an object
),
read_typed AS (
  -- A plain line is read straight into typed columns: valid if nothing required is missing.
  SELECT *, from_json(line, '{typed_schema}') AS record
  FROM lines
),
plain_checked AS (
  SELECT *, {plain_valid} AS plain_valid
  FROM read_typed
),
read_as_text AS (
  -- Any other line (the CASE spares plain lines the cost) has every key read as
  -- text, in one parse: typing happens below, so a value of the wrong type is
  -- seen and named, not made NULL.
  SELECT *,
    CASE WHEN NOT plain_valid
      THEN trim(line) LIKE '{{%}}' AND json_object_keys(trim(line)) IS NOT NULL END AS is_object,
    CASE WHEN NOT plain_valid THEN from_json(trim(line), '{text_schema}') END AS as_text
  FROM plain_checked
),
checked AS (
  SELECT *,
    CASE
      WHEN plain_valid THEN NULL
      WHEN NOT is_object THEN 'malformed_json'
{reasons}
    END AS reason
  FROM read_as_text
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
