"""The landing stage's SQL, built from the landing schemas of stedi.catalogue.

`make generate` writes one statement per source to stedi/sql/spark/landing_<source>.sql;
nothing imports this module at run time. The statement types every non-blank
line of `<source>_raw(line, source_file)`. Nearly every line is *plain*: a flat
object of the schema's keys with plainly written values; it is typed in one
parse. Any other line has each key read as text and checked against its type,
which the plain form never contradicts. The reasons a line is rejected for
are defined in stedi.catalogue.
"""

from stedi.catalogue import MALFORMED_JSON, SOURCE, missing_field, wrong_type

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


def does_not_fit(value: str, sql_type: str) -> str:
    """SQL condition: the text `value` of a field is present but does not fit `sql_type`."""
    if sql_type == "STRING":  # a nested object or array is not a string
        return f"substr({value}, 1, 1) IN ('{{', '[')"
    return f"NOT {value} RLIKE '{NUMBER_PATTERNS[sql_type]}'"


def plain_pattern(source: str) -> str:
    """A regular expression for a plain line: one flat object of the schema's keys, plainly written values."""
    keys = []
    for name, sql_type, required in SOURCE[source].fields:
        value = PLAIN_VALUES[sql_type] if required else f"{PLAIN_VALUES[sql_type]}|null"
        keys.append(f'"{name}": ?({value})')
    key = "(" + "|".join(keys) + ")"
    return f"^[{{]{key}(, ?{key})*[}}]$"


def parse_sql(source: str) -> str:
    """The statement that types every non-blank line of `<source>_raw(line, source_file)`.

    Result: line, source_file, reason (NULL for a valid record), one typed column per field.
    """
    fields = SOURCE[source].fields
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
            problems.append(f"WHEN {text} IS NULL OR trim({text}) = '' THEN '{missing_field(name)}'")
        problems.append(f"WHEN {text} IS NOT NULL AND {does_not_fit(text, sql_type)} THEN '{wrong_type(name)}'")
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
      WHEN NOT is_object THEN '{MALFORMED_JSON}'
{reasons}
    END AS reason
  FROM read_as_text
)
SELECT line, source_file, reason,
{typed}
FROM checked
"""
