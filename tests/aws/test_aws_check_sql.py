"""Every query the check Lambda sends to Athena is valid Trino SQL (moto runs no SQL, so this is the test of it).

That the same text gives the expected numbers is tested by running it on
DuckDB over a real run (the last test here, and the local pipeline's suite).
"""

import pytest
import sqlglot

from stedi.accounting import row_count_queries, set_aside_queries
from stedi.catalogue import CONSENT_SCOPES, STAGES
from stedi.checks import CHECKS

QUERIES = [
    pytest.param(stage, check, sql, scope, id=f"{check.table}.{check.name}.{part}[{scope}]")
    for stage in STAGES for check in CHECKS[stage] for scope in CONSENT_SCOPES
    for part, sql in (("actual", check.sql), ("expected", getattr(check.expect, "sql", None))) if sql
]


@pytest.mark.parametrize("stage, check, sql, scope", QUERIES)
def test_check_sql_parses_as_trino(stage, check, sql, scope):
    rendered = check.render(sql, scope)
    assert ":consent_scope" not in rendered
    tree = sqlglot.parse_one(rendered, read="trino", error_level=sqlglot.ErrorLevel.RAISE)
    assert isinstance(tree, sqlglot.exp.Select)


@pytest.mark.parametrize("sql", [sql for stage in STAGES for queries in (row_count_queries, set_aside_queries)
                                 for sql in queries(stage).values()])
def test_row_count_and_set_aside_queries_parse_as_trino(sql):
    sqlglot.parse_one(sql, read="trino", error_level=sqlglot.ErrorLevel.RAISE)


def test_every_check_query_passes_on_duckdb_over_a_generated_run(tmp_path):
    """The SQL sent to Athena, run where it can run offline: the local pipeline's audit on DuckDB."""
    from stedi.generate import generate_lake
    from stedi.lake import Lake
    from stedi.pipeline import run_pipeline

    lake = Lake(tmp_path / "lake")
    generate_lake(lake.root, scale=0.05, dirt=True)
    report = run_pipeline(lake, engine="duckdb")
    assert report.published, [result.describe() for result in report.failures]
    assert {result.check for result in report.checks} == {check.name for stage in STAGES for check in CHECKS[stage]}
