"""Every query the check Lambda sends to Athena is valid Trino SQL (moto runs no SQL, so this is the test of it).

That the same text gives the expected numbers is tested by running it on
DuckDB over a real run (the last test here, and the local pipeline's suite).
"""

import duckdb
import pytest
import sqlglot

from stedi.accounting import row_count_queries, set_aside_queries
from stedi.catalogue import CONSENT_SCOPES, STAGES
from stedi.checks import CHECKS, ROWS_SHOWN, offending_rows_sql

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


# ---------------------------------------------------------------- the query that shows a failed check's rows

EVERY_CHECK = [pytest.param(check, id=f"{check.stage}.{check.table}.{check.name}")
               for stage in STAGES for check in CHECKS[stage]]


@pytest.mark.parametrize("check", EVERY_CHECK)
@pytest.mark.parametrize("scope", CONSENT_SCOPES)
def test_the_query_showing_a_check_s_rows_parses_as_trino_and_asks_for_a_few(check, scope):
    sql = offending_rows_sql(check, scope, "stedi_staging")
    assert ":consent_scope" not in sql and ":schema" not in sql
    tree = sqlglot.parse_one(sql, read="trino", error_level=sqlglot.ErrorLevel.RAISE)
    assert isinstance(tree, sqlglot.exp.Select) and tree.args["limit"].expression.name == str(ROWS_SHOWN)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """DuckDB over one generated run, twice: as staged (every check passes), and with violations put in."""
    from stedi import duck
    from stedi.catalogue import LANDING_SOURCES, STAGE
    from stedi.generate import generate_lake
    from stedi.lake import Lake
    from stedi.pipeline import run_pipeline

    lake = Lake(tmp_path_factory.mktemp("offending") / "lake")
    generate_lake(lake.root, scale=0.02, seed=3, dirt=True)
    report = run_pipeline(lake, engine="duckdb")
    assert report.published
    landing = lake.snapshot()
    connections = {}
    for name in ("clean", "broken"):
        con = duckdb.connect()
        for source in LANDING_SOURCES:
            duck.view_raw(con, source.raw_table, landing[source.landing_folder], source.landing_folder)
        duck.view_tables(con, report.staging, [table for stage in STAGES for table in STAGE[stage].tables])
        connections[name] = con
    broken = connections["broken"]
    for table in ("customer_trusted", "accelerometer_trusted", "customer_rejected", "machine_learning_curated"):
        broken.execute(f"CREATE TABLE kept_{table} AS SELECT * FROM {table}")
    # Two customers twice, one of them without consent; a reading repeated, and one of nobody's.
    broken.execute("CREATE OR REPLACE VIEW customer_trusted AS SELECT * FROM kept_customer_trusted UNION ALL "
                   "(SELECT * REPLACE (NULL AS shareWithResearchAsOfDate) FROM kept_customer_trusted LIMIT 2)")
    broken.execute("CREATE OR REPLACE VIEW accelerometer_trusted AS SELECT * FROM kept_accelerometer_trusted "
                   "UNION ALL (SELECT * FROM kept_accelerometer_trusted LIMIT 1) UNION ALL "
                   "(SELECT * REPLACE ('nobody@test.com' AS \"user\") FROM kept_accelerometer_trusted LIMIT 1)")
    # A rejected line without its reason, and another with a reason nobody gives; a personal column.
    broken.execute("CREATE OR REPLACE VIEW customer_rejected AS SELECT * FROM kept_customer_rejected UNION ALL BY NAME "
                   "SELECT '{' AS line, NULL AS reason, 'customer/landing/x.json' AS source_file UNION ALL BY NAME "
                   "SELECT '{' AS line, 'no_reason_known' AS reason, 'customer/landing/x.json' AS source_file")
    broken.execute("CREATE OR REPLACE VIEW machine_learning_curated AS "
                   "SELECT *, 'a@test.com' AS email FROM kept_machine_learning_curated")
    yield connections
    for con in connections.values():
        con.close()


BROKEN = {("customer_trusted", "unique_email"), ("customer_trusted", "no_non_consenting_customer"),
          ("accelerometer_trusted", "parent_exists"), ("accelerometer_trusted", "no_exact_duplicates"),
          ("customer_rejected", "reason_given"), ("customer_rejected", "reason_known"),
          ("machine_learning_curated", "no_personal_columns")}


@pytest.mark.parametrize("check", EVERY_CHECK)
@pytest.mark.parametrize("run", ["clean", "broken"])
def test_the_query_shows_the_rows_behind_the_check_s_figure(runs, run, check):
    """A check counting violations: exactly the rows it counted, none when it passes; a uniqueness check:
    each repeated key; a count compared with another figure: the rows counted; a share: the table's rows."""
    from stedi.checks import Zero

    con = runs[run]
    value = con.execute(check.render(check.sql, "reading")).fetchone()[0]
    shown = con.execute(offending_rows_sql(check, "reading", limit=None)).fetchall()
    if check.name.startswith("unique_"):
        key = check.name.removeprefix("unique_")
        repeats = con.execute(f"SELECT count(*) - count(DISTINCT {key}) FROM {check.table}").fetchone()[0]
        assert sum(copies - 1 for _, copies in shown) + sum(key is None for key, _ in shown) == repeats == value
    elif check.name == "rejected_share":
        assert len(shown) == con.execute(f"SELECT count(*) FROM {check.table}").fetchone()[0]
    else:
        assert len(shown) == value
    if isinstance(check.expect, Zero):
        assert (value > 0) == ((check.table, check.name) in BROKEN and run == "broken"), value
        assert len(con.execute(offending_rows_sql(check, "reading")).fetchall()) == min(len(shown), ROWS_SHOWN)
