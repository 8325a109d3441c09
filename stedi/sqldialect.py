"""Run the Glue scripts' Spark SQL on DuckDB: one home for the SQL, translated.

sqlglot translates the dialect. Two differences it does not cover are mended
here: DuckDB raises on malformed JSON where Spark returns NULL, so JSON
functions are wrapped in TRY(); and the :consent_scope parameter marker
becomes a literal.
"""

import sqlglot
from sqlglot import exp

_NULL_ON_BAD_JSON = (exp.JSONExtractScalar, exp.JSONExtract, exp.JSONKeys)


def spark_to_duckdb(sql: str, **params: str) -> str:
    tree = sqlglot.parse_one(sql, read="spark")
    tree = exp.replace_placeholders(tree, **params)
    tree = tree.transform(_null_on_bad_json)
    return tree.sql(dialect="duckdb")


def _null_on_bad_json(node: exp.Expression) -> exp.Expression:
    if isinstance(node, _NULL_ON_BAD_JSON) and not isinstance(node.parent, exp.Anonymous):
        return exp.Anonymous(this="TRY", expressions=[node.copy()])
    return node
