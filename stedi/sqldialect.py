"""Run the Glue scripts' Spark SQL on DuckDB: one home for the SQL, translated.

sqlglot translates the dialect. What it does not cover is mended here:
- from_json(line, 'a STRING, b BIGINT, ...') becomes DuckDB's json_transform
  with the same structure, which likewise reads a STRING key's value as text
  (a nested value as its JSON text);
- DuckDB raises on malformed JSON where Spark returns NULL, so JSON functions
  are wrapped in TRY();
- the :consent_scope parameter marker becomes a literal.
"""

import json

import sqlglot
from sqlglot import exp

_NULL_ON_BAD_JSON = (exp.JSONExtractScalar, exp.JSONExtract, exp.JSONKeys)


def spark_to_duckdb(sql: str, **params: str) -> str:
    tree = sqlglot.parse_one(sql, read="spark")
    # copy=False: the tree is ours alone, and copying it costs more than the rest of the translation.
    tree = exp.replace_placeholders(tree, copy=False, **params)
    tree = tree.transform(_from_json, copy=False).transform(_null_on_bad_json, copy=False)
    return tree.sql(dialect="duckdb")


def duckdb_type(sql_type: str) -> str:
    """A Spark SQL type name (STRING, BIGINT, ...) as DuckDB names it."""
    return exp.DataType.build(sql_type, dialect="spark").sql(dialect="duckdb")


def _from_json(node: exp.Expression) -> exp.Expression:
    if not isinstance(node, exp.FromJson):
        return node
    document, schema = node.this, node.expression
    structure = {}
    for field in schema.name.split(","):
        name, sql_type = field.split()
        structure[name.strip("`")] = duckdb_type(sql_type)
    structure_text = exp.Literal.string(json.dumps(structure))
    transform = exp.Anonymous(this="json_transform", expressions=[document.copy(), structure_text])
    return exp.Anonymous(this="TRY", expressions=[transform])


def _null_on_bad_json(node: exp.Expression) -> exp.Expression:
    if isinstance(node, _NULL_ON_BAD_JSON) and not isinstance(node.parent, exp.Anonymous):
        return exp.Anonymous(this="TRY", expressions=[node.copy()])
    return node
