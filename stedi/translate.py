"""Translate the stages' Spark SQL for DuckDB (`make generate` writes stedi/sql/duckdb/).

The output is meant to be read: sqlglot formats it, the leading `--` comment
block of the Spark text is put back verbatim at the top, and a comment alone on
its line inside the statement stays a `--` line.

What sqlglot rewrites, and why the meaning stays Spark's (Spark without ANSI
mode, its default and Glue's):
- ORDER BY: Spark puts NULLs first ascending and last descending; DuckDB puts
  them last both ways (its default_null_order, which the engine leaves alone).
  So an ascending key that does not say gets NULLS FIRST, in window ORDER BYs
  too; descending keys and explicit NULLS FIRST/LAST are kept.
- a / b becomes a / NULLIF(b, 0): Spark gives NULL on division by zero, DuckDB
  an infinity or NaN.
- CAST becomes TRY_CAST: Spark gives NULL for a value that does not convert,
  DuckDB raises.
- arr[i] becomes arr[i + 1]: Spark arrays are indexed from 0, DuckDB lists
  from 1 (element_at is 1-based in both).
- the :consent_scope parameter marker becomes DuckDB's $consent_scope.
- functions are renamed (RLIKE -> REGEXP_MATCHES, get_json_object -> ->>,
  json_object_keys -> JSON_KEYS, substr -> SUBSTRING, ...).

What sqlglot leaves different, mended here:
- from_json(line, 'a STRING, b STRUCT<c: INT>, ...') becomes DuckDB's
  json_transform with the same structure (a STRUCT is a nested object, an
  ARRAY a one-element list). Like Spark it reads a STRING key's value as text
  (a nested value as its JSON text) and gives NULL for a value not of the
  key's type. NOT NULL and COMMENT are dropped: Spark ignores them here.
- DuckDB raises on malformed JSON where Spark returns NULL, so each function
  that parses JSON text is wrapped in TRY(), where it stands: inside
  coalesce(...) the NULL must reach coalesce, not void the whole expression.
- a % b and a div b divide by NULLIF(b, 0): DuckDB raises on a zero divisor.
- a DECIMAL without precision is DECIMAL(10, 0) in Spark, DECIMAL(18, 3) in DuckDB.

Left different (the stages do not depend on them): DuckDB's TRY_CAST rounds
'1.5' to the integer 2 where Spark truncates to 1; JSON_KEYS of a JSON array is
[] and JSON_ARRAY_LENGTH of an object 0 where Spark gives NULL; from_json of
malformed JSON is a NULL struct where Spark gives a struct of NULLs (test the
fields, not the struct); regular expressions are RE2 rather than Java's;
TIMESTAMP becomes TIMESTAMPTZ.
"""

import json
import re

import sqlglot
from sqlglot import exp

# Spark functions that parse JSON text and that DuckDB translates to a function raising on malformed input.
_PARSES_JSON = (exp.JSONExtractScalar, exp.JSONKeys)
_PARSES_JSON_BY_NAME = {"json_array_length", "json_transform"}  # functions sqlglot leaves as they are named

_LINE_COMMENT = re.compile(r"^( *)/\* ?((?:(?!\*/).)*?) ?\*/$", re.MULTILINE)


def spark_to_duckdb(sql: str) -> str:
    header, statement = _split_header(sql)
    tree = sqlglot.parse_one(statement, read="spark")
    _refuse_quoted_comments(tree)
    for node in list(tree.find_all(exp.FromJson)):
        node.replace(_json_transform(node))
    for node in list(tree.find_all(exp.Expression)):
        _mend(node)
    text = tree.sql(dialect="duckdb", pretty=True)
    # A string spanning lines could hold what looks like a comment line: rewrite nothing then.
    if not any("\n" in node.name for node in tree.find_all(exp.Literal, exp.Identifier)):
        text = _LINE_COMMENT.sub(lambda match: f"{match[1]}-- {match[2]}".rstrip(), text)
    return f"{header}\n{text}" if header else text


def _refuse_quoted_comments(tree: exp.Expression) -> None:
    """DuckDB (2.0.1) misreads a string literal of a byte-order mark that follows a /* */ comment holding an
    apostrophe: length('\ufeff') is 3 after /* it's */, 1 without it, and a blank line got through the landing
    statement's filter. A comment inside a statement may end up as /* */, so none may hold one."""
    quoted = [comment for node in tree.walk() for comment in node.comments or [] if "'" in comment]
    if quoted:
        raise ValueError(f"a comment inside a statement holds an apostrophe, which DuckDB misreads: {quoted[0]!r}")


def duckdb_type(sql_type: str | exp.DataType) -> str:
    """A Spark SQL type (STRING, BIGINT, DECIMAL(10,2), ...) as DuckDB names it."""
    data_type = exp.DataType.build(sql_type, dialect="spark")
    for node in data_type.find_all(exp.DataType):
        _mend(node)
    return data_type.sql(dialect="duckdb")


def _split_header(sql: str) -> tuple[str, str]:
    """The leading block of `--` lines (blank lines between them included), and the rest."""
    lines = sql.splitlines(keepends=True)
    count = 0
    while count < len(lines) and (lines[count].lstrip().startswith("--") or not lines[count].strip()):
        count += 1
    return "".join(lines[:count]).strip("\n"), "".join(lines[count:])


def _json_transform(node: exp.FromJson) -> exp.Expression:
    schema = node.expression
    if not (isinstance(schema, exp.Literal) and schema.is_string) or node.args.get("options"):
        raise ValueError(f"from_json is translated only with a literal schema and no options: {node.sql('spark')}")
    columns = sqlglot.parse_one(f"CREATE TABLE t ({schema.name})", read="spark").this.expressions
    structure = {column.name: _structure(column.args["kind"]) for column in columns}
    return exp.Anonymous(this="json_transform", expressions=[node.this, exp.Literal.string(json.dumps(structure))])


def _structure(data_type: exp.DataType) -> dict | list | str:
    """A type as json_transform's structure describes it."""
    if data_type.is_type(exp.DataType.Type.STRUCT):
        return {field.name: _structure(field.args["kind"]) for field in data_type.expressions}
    if data_type.is_type(exp.DataType.Type.ARRAY):
        [element] = data_type.expressions
        return [_structure(element)]
    return duckdb_type(data_type)


def _mend(node: exp.Expression) -> None:
    """Make one node of the Spark tree mean in DuckDB what it means in Spark (see the module docstring)."""
    if _parses_json(node) and not isinstance(node.parent, exp.Try):
        try_ = exp.Try()
        node.replace(try_)
        try_.set("this", node)
    elif isinstance(node, (exp.Mod, exp.IntDiv)):
        node.set("expression", exp.Nullif(this=node.expression, expression=exp.Literal.number(0)))
    elif isinstance(node, exp.DataType) and node.is_type(exp.DataType.Type.DECIMAL) and not node.expressions:
        node.set("expressions", [exp.DataTypeParam(this=exp.Literal.number(n)) for n in (10, 0)])


def _parses_json(node: exp.Expression) -> bool:
    if isinstance(node, exp.Anonymous):
        return node.name.lower() in _PARSES_JSON_BY_NAME
    return isinstance(node, _PARSES_JSON)
