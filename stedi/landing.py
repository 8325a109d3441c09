"""The landing stage's SQL, built from the landing schemas of stedi.catalogue.

`make generate` writes one statement per source to stedi/sql/spark/landing_<source>.sql;
nothing imports this module at run time. The statement types every non-blank
line of `<source>_raw(line, source_file, valid_utf8)` (source_file is
`<source>/landing/<file name>`: stedi.runner.raw_lines). Nearly every line is
*plain*: one flat object of the schema's keys in the schema's order with
plainly written values; it is typed in one parse. Any other line is first
proved to be one strict JSON object (see `strict_object`), then has each key
read as text and checked against its type, which the plain form never
contradicts. The reasons a line is rejected for are defined in stedi.catalogue.

Keys outside the schema are no reason to reject a line: each line that is an
object gives them as `unknown_keys` (a plain line has none), and the stage's
drift statement (`drift_sql`, written to stedi/sql/spark/landing_drift.sql)
counts per key the lines that carry it, with the first file that has one.

Spark (Jackson) and DuckDB (yyjson) read JSON differently at the edges: Spark
ignores whatever follows the first value and takes single quotes, DuckDB takes
trailing commas and nan, they keep a different copy of a repeated key, and
Jackson gives up past 1000 levels of nesting or 1000 digits. So neither parser
decides alone: a line is an object only if it is strict JSON, lexically (the
patterns below) and by both parsers' reading, within limits both parsers keep.
"""

from stedi.catalogue import (
    INVALID_ENCODING,
    MALFORMED_JSON,
    SOURCE,
    blank_characters_sql,
    missing_field,
    not_blank,
    wrong_type,
)
from stedi.runner import TYPED_LINES

# A JSON value, as text, that fits each type.
NUMBER_PATTERNS = {
    "BIGINT": "^-?[0-9]{1,18}$",
    "INT": "^-?[0-9]{1,9}$",
    "DOUBLE": "^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$",
}
# A number with a fraction or an exponent, as either engine writes one as text (1.5, 1.0E21, 1e+21).
FLOAT_TEXT = "^-?[0-9]+([.][0-9]+([eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)$"
LARGEST_DOUBLE = "1.7976931348623157E308"  # past it, a number is no DOUBLE (Spark and DuckDB read it as infinity)

# How a value is written in a *plain* line, the shape of nearly every upload.
# Each form is a subset of what the rules above accept, and every JSON parser
# reads it to the same value the rules give: numbers no longer than a double
# holds exactly, strings of printable ASCII without quote, backslash or
# bracket characters (so never a nested value, never an escape).
# Groups are non-capturing: the test only asks whether a line matches, and captures slow the match.
PLAIN_VALUES = {
    "STRING": '"[a-zA-Z0-9 !#$%&()*+,./:;<=>?@^_`|}~-]*"',
    "BIGINT": "-?(?:0|[1-9][0-9]{0,17})",
    "INT": "-?(?:0|[1-9][0-9]{0,8})",
    "DOUBLE": "-?(?:0|[1-9][0-9]{0,14})(?:[.][0-9]{1,15})?",
}

# The lexical rules of strict JSON (RFC 8259), as regular expressions that Java
# (Spark) and RE2 (DuckDB) read alike: no possessive quantifiers, no lookaround,
# and no repeated group, which Java matches by recursion (a line of a thousand
# escapes would overflow its stack). Each is matched token by token by regexp_replace.
# An escape JSON allows: a surrogate only as a high one followed by a low one.
ESCAPE_TOKEN = (r'\\(["\\/bfnrt]|u([0-9a-cA-Ce-fE-F][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2}'
                r'|[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}))')
# A string, once every escape is replaced by _: no backslash left, no raw control character.
STRING_TOKEN = r'"[^"\\\x00-\x1f]*"'
# Any other token, once every string is replaced by 0: punctuation, JSON whitespace, a number, a literal.
OTHER_TOKEN = r"[\[\]{}:, \t]|-?(0|[1-9][0-9]*)([.][0-9]+)?([eE][-+]?[0-9]+)?|true|false|null"
# A comma with no value after it or before it (DuckDB reads a trailing comma; Spark does not).
STRAY_COMMA = r",[ \t]*[\]},]|[\[{][ \t]*,"

# Limits within which both parsers read a line alike (Jackson's defaults: 1000 levels, 1000 digits,
# 20 million characters in a string; a line is at most 16 MiB, see stedi.runner.MAX_LINE_BYTES).
MAX_OPENINGS = 500  # objects and arrays in a line (so no deeper than Jackson reads, once wrapped for the checks)
MAX_DIGITS = 300  # digits in a row in a number (its integer part, fraction or exponent)


def _regex(pattern: str) -> str:
    """A regular expression as a SQL string expression that means the same in Spark and DuckDB.

    A backslash is escaping in a Spark SQL literal and not in DuckDB's (and the Glue
    script embeds the SQL in a Python string): it is written as ~ and put back by replace().
    """
    if "\\" not in pattern:
        return f"'{pattern}'"
    assert "~" not in pattern and "'" not in pattern, pattern
    return f"replace('{pattern.replace(chr(92), '~')}', '~', chr(92))"


def does_not_fit(value: str, sql_type: str, name: str, text: str) -> str:
    """SQL condition: the text `value` of field `name` (of the record `text`) is present but does not fit `sql_type`."""
    if sql_type == "STRING":
        # A nested object or array is not a string, nor is a number with a fraction or an exponent:
        # Spark and DuckDB write one back as text differently (1e21 is 1.0E21 or 1e+21), so it is
        # rejected, found by its key in the record (a string can hold `"name":` only with its quotes escaped).
        # A whole number or true/false is read as its text, alike on both.
        key = f'"{name}"[ \\t]*:'
        written_as_float = _regex(f"{key}[ \\t]*-?[0-9]+[.eE]")
        # A key written with an escape ("us\u0065r") is not found so: then 1.5 and "1.5" cannot be told
        # apart, and a value that reads as a number with a fraction or an exponent is rejected either way.
        key_escaped = f"NOT {text} RLIKE {_regex(key)}"
        reads_as_float = f"{value} RLIKE '{FLOAT_TEXT}'"
        return (f"(substr({value}, 1, 1) IN ('{{', '[') OR {text} RLIKE {written_as_float} "
                f"OR ({key_escaped} AND {reads_as_float}))")
    fits = f"{value} RLIKE '{NUMBER_PATTERNS[sql_type]}'"
    if sql_type == "DOUBLE":
        fits = f"coalesce({fits} AND abs(TRY_CAST({value} AS DOUBLE)) <= {LARGEST_DOUBLE}, false)"
    return f"NOT {fits}"


def plain_pattern(source: str) -> str:
    """A regular expression for a plain line: one flat object of the schema's keys, in the schema's order,
    plainly written values. In order, a key cannot come twice (which Spark and DuckDB would read differently)."""
    fields = SOURCE[source].fields
    first_required = next(i for i, field in enumerate(fields) if field.required)
    pattern = ""
    for i, (name, sql_type, required) in enumerate(fields):
        value = PLAIN_VALUES[sql_type] if required else f"{PLAIN_VALUES[sql_type]}|null"
        key = f'"{name}": ?(?:{value})'
        if i < first_required:
            pattern += f"(?:{key}, ?)?"
        elif i == first_required:
            pattern += key
        else:
            pattern += f", ?{key}" if required else f"(?:, ?{key})?"
    return f"^[{{]{pattern}[}}]$"


def strict_object(text: str, skeleton: str) -> str:
    """SQL condition: `text` is one JSON object, strictly, within the limits; `skeleton` is `text` with
    each string replaced by 0 (so no quote, bracket or comma in it stands inside a string)."""
    count_openings = f"length({skeleton}) - length(replace(replace({skeleton}, '[', ''), '{{', ''))"
    conditions = [
        f"{text} LIKE '{{%}}'",
        f"regexp_replace({skeleton}, {_regex(OTHER_TOKEN)}, '') = ''",  # strict tokens only
        f"NOT {skeleton} RLIKE {_regex(STRAY_COMMA)}",
        f"NOT {skeleton} RLIKE '[0-9]{{{MAX_DIGITS + 1}}}'",
        f"{count_openings} <= {MAX_OPENINGS}",
        # One value and nothing after it: whatever follows it breaks one of the two wrappings.
        f"json_array_length(concat('[', {text}, ']')) = 1",
        f"""size(json_object_keys(concat('{{"":', {text}, '}}'))) = 1""",
        f"size(json_object_keys({text})) = size(array_distinct(json_object_keys({text})))",  # no key twice
    ]
    return "coalesce(" + "\n        AND ".join(conditions) + ", false)"


def not_blank_plain(value: str) -> str:
    """SQL condition: a plain string `value` is not blank, as trim(value) <> '' says. A string that does not
    open with a space is blank only when empty, so trim() (a tenth of the landing statement's time when
    it ran on every line) runs only on one that does."""
    return f"CASE WHEN {value} LIKE ' %' THEN trim({value}) <> '' ELSE {value} <> '' END"


def parse_sql(source: str) -> str:
    """The statement that types every non-blank line of `<source>_raw(line, source_file, valid_utf8)`.

    Result: line, source_file, reason (NULL for a valid record), one typed column per field, and
    unknown_keys: for a line that is a JSON object, its keys outside the schema (NULL for any other line).
    """
    fields = SOURCE[source].fields
    typed_schema = ", ".join(f"`{name}` {sql_type}" for name, sql_type, _ in fields)
    text_schema = ", ".join(f"`{name}` STRING" for name, _, _ in fields)
    complete = []  # every required key present, and a required string not blank
    for name, sql_type, required in fields:
        if required:
            complete.append(f"record.`{name}` IS NOT NULL")
            if sql_type == "STRING":  # a plain string's only blank character is the space, which trim() removes
                complete.append(not_blank_plain(f"record.`{name}`"))
    plain_valid = "\n      AND ".join(["plain", *complete])
    problems = []
    for name, sql_type, required in fields:
        value = f"as_text.`{name}`"
        if required:
            problems.append(f"WHEN {value} IS NULL OR NOT {not_blank(value)} THEN '{missing_field(name)}'")
        problems.append(f"WHEN {value} IS NOT NULL AND {does_not_fit(value, sql_type, name, 'text')} "
                        f"THEN '{wrong_type(name)}'")
    reasons = "\n".join(f"      {problem}" for problem in problems)
    schema_keys = ", ".join(f"'{name}'" for name, _, _ in fields)
    typed = ",\n".join(
        f"  CASE WHEN plain_valid THEN record.`{name}` ELSE "
        + (f"as_text.`{name}`" if sql_type == "STRING" else f"TRY_CAST(as_text.`{name}` AS {sql_type})")
        + f" END AS `{name}`"
        for name, sql_type, _ in fields
    )
    return f"""
WITH raw_lines AS (
  SELECT
    -- A byte-order mark opening a line is no part of it (DuckDB drops the one opening a file, Spark does not).
    CASE WHEN line LIKE '\ufeff%' THEN substr(line, 2) ELSE line END AS line,
    source_file,
    valid_utf8
  FROM {source}_raw
  WHERE {not_blank('line')}  -- a blank line is no record (stedi.catalogue.BLANK_CHARACTERS)
),
lines AS (
  SELECT *, line RLIKE '{plain_pattern(source)}' AS plain  -- see plain_pattern
  FROM raw_lines
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
trimmed AS (
  -- Any other line (each CASE spares plain lines the cost): its text without blank characters around it,
  -- and that text with every string replaced by 0 (a NULL text, for a plain line, costs nothing).
  SELECT *,
    CASE WHEN NOT plain_valid AND valid_utf8 THEN trim(BOTH {blank_characters_sql()} FROM line) END AS text
  FROM plain_checked
),
lexed AS (
  SELECT *,
    regexp_replace(regexp_replace(text, {_regex(ESCAPE_TOKEN)}, '_'), {_regex(STRING_TOKEN)}, '0') AS skeleton
  FROM trimmed
),
read_as_text AS (
  -- Only a strict JSON object has its keys read, each as text, in one parse: typing happens
  -- below, so a value of the wrong type is seen and named, not made NULL.
  SELECT *,
    CASE WHEN NOT plain_valid AND valid_utf8 THEN {strict_object('text', 'skeleton')} END AS is_object
  FROM lexed
),
read_fields AS (
  SELECT *, CASE WHEN is_object THEN from_json(text, '{text_schema}') END AS as_text
  FROM read_as_text
),
checked AS (
  SELECT *,
    CASE
      WHEN plain_valid THEN NULL
      WHEN NOT valid_utf8 THEN '{INVALID_ENCODING}'
      WHEN NOT is_object THEN '{MALFORMED_JSON}'
{reasons}
    END AS reason
  FROM read_fields
)
SELECT line, source_file, reason,
{typed},
  -- Keys are compared exactly, as the fields are read: `timeStamp` is not `timestamp`.
  CASE WHEN is_object THEN filter(json_object_keys(text), k -> NOT k IN ({schema_keys})) END AS unknown_keys
FROM checked
"""


def drift_sql() -> str:
    """The statement that counts, per key outside a source's schema, the lines that carry it (a line that is
    no object carries none), with the first file, in name order, that has one. It reads the rows of the source's
    landing statement as the view stedi.runner.TYPED_LINES, whatever became of each line."""
    return f"""
SELECT key, count(*) AS lines, min(source_file) AS example_file
FROM (SELECT explode(unknown_keys) AS key, source_file FROM {TYPED_LINES}) AS carried
GROUP BY key
"""
