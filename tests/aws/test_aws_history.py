"""The run history on AWS: the Glue table has the local history's columns, and the INSERT INTO statements
that append a run's rows give back, read as Athena writes them, exactly what history_rows built.

Athena appends the rows of INSERT INTO ... VALUES to the table's location in the table's format
(https://docs.aws.amazon.com/athena/latest/ug/insert-into.html) and takes a query string of at most
262,144 bytes (https://repost.aws/knowledge-center/athena-query-string-length).
"""

import json

import duckdb
import pytest
import sqlglot
from aws_template import load_template

from stedi.accounting import HISTORY_COLUMNS, history_rows, stage_summary
from stedi.aws.history import (
    GLUE_TYPES,
    MAX_QUERY_BYTES,
    ended_run_rows,
    glue_columns,
    insert_statements,
    run_history_rows,
    sql_literal,
    state_when_ended,
)
from stedi.aws.run_input import InvalidRunInput
from stedi.aws.settings import Settings
from stedi.aws.state_machine import steps_of_states
from stedi.checks import CheckResult

SETTINGS = Settings(lake_bucket="lake")


def test_the_template_s_history_table_has_the_history_columns_in_order_stored_as_parquet():
    table = load_template()["Resources"]["HistoryTable"]["Properties"]["TableInput"]
    assert table["StorageDescriptor"]["Columns"] == glue_columns()
    assert [column["Name"] for column in glue_columns()] == list(HISTORY_COLUMNS)
    assert {GLUE_TYPES[kind] for kind in HISTORY_COLUMNS.values()} == {"string", "double"}
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == \
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert table["Name"] == "history" and table["TableType"] == "EXTERNAL_TABLE"


def summaries(failed: bool = False) -> list[dict]:
    checks = [CheckResult("landing", "customer_landing", "all_lines_accounted", "passed", "12", "12"),
              CheckResult("landing", "customer_rejected", "reason_known", "skipped", "no count supplied", "-")]
    trusted = [CheckResult("customer_trusted", "customer_trusted", "unique_email", "failed" if failed else "passed",
                           "0", "3" if failed else "0")]
    return [stage_summary("landing", {"customer_landing": 12, "customer_rejected": 2}, checks,
                          {"customer": {"malformed_json": 2}, "accelerometer": {}, "step_trainer": {}}, 1.25),
            stage_summary("customer_trusted", {"customer_trusted": 9}, trusted, {"customer_trusted": {"no_consent": 3}},
                          0.5)]


def read_back(statements: list[str]) -> list[dict]:
    """The statements run on a table of HISTORY_COLUMNS, as Athena runs them on the Glue table."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE history ({', '.join(f'{n} {t}' for n, t in HISTORY_COLUMNS.items())})")
    for statement in statements:
        con.execute(statement)
    result = con.execute("SELECT * FROM history")
    columns = [d[0] for d in result.description]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def test_the_statements_give_back_exactly_the_rows_history_rows_built():
    rows = history_rows("run-1", "glue", "reading", "failed", summaries(failed=True), {"landing": 61.5})
    rows[0]["detail"] = "it's a 'quoted' detail; DROP TABLE history; --"  # a quote cannot end a literal
    statements = insert_statements(rows)
    assert len(statements) == 1
    assert read_back(statements) == rows
    for statement in statements:
        assert isinstance(sqlglot.parse_one(statement, read="trino"), sqlglot.exp.Insert)


def test_a_run_too_big_for_one_statement_is_appended_by_several_each_within_athena_s_limit():
    rows = history_rows("run-1", "glue", "reading", "published", summaries(), {}) * 40
    statements = insert_statements(rows, max_bytes=4_000)
    assert len(statements) > 1
    assert all(len(statement.encode()) <= 4_000 for statement in statements)
    assert read_back(statements) == rows
    assert len(insert_statements(rows)) == 1 and len(insert_statements(rows)[0].encode()) <= MAX_QUERY_BYTES


def test_no_rows_no_statement_and_no_figure_that_is_not_a_number():
    assert insert_statements([]) == []
    assert sql_literal(None, "DOUBLE") == "CAST(NULL AS DOUBLE)"
    with pytest.raises(ValueError):
        sql_literal(float("nan"), "DOUBLE")


def state(**parts) -> dict:
    run = {"run_id": "run-7", "staging": "s3://lake/runs/run-7", "consent_scope": "customer", "expected_counts": {}}
    return {"run": run, **parts}


@pytest.mark.parametrize("parts, published, outcome", [
    ({"published": {"summary": {}}}, True, "published"),
    ({"failed_stage": "customer_trusted"}, False, "failed"),
    ({"failed_stage": "publish"}, False, "crashed"),
])
def test_the_outcome_and_the_figures_of_a_run_state(parts, published, outcome):
    failed = outcome == "failed"
    checks = {summary["stage"]: summary for summary in summaries(failed)}
    jobs = {"landing": {"seconds": 61}, "customer_trusted": {"seconds": 42}, "accelerometer_trusted": {"seconds": 5}}
    rows = run_history_rows(state(checks=checks, jobs=jobs, **parts), execution_name="run-7", published=published,
                            settings=SETTINGS)
    assert rows == history_rows("run-7", "glue", "customer", outcome, summaries(failed),
                                {"landing": 61.0, "customer_trusted": 42.0, "accelerometer_trusted": 5.0},
                                parts.get("failed_stage", ""))
    assert {row["outcome"] for row in rows} == {outcome}
    assert rows[0]["measure"] == "run" and rows[0]["stage"] == parts.get("failed_stage", "")  # where it ended


def test_a_run_that_failed_at_its_input_or_never_got_a_run_has_no_rows():
    checks = {summary["stage"]: summary for summary in summaries()}
    assert run_history_rows(state(checks=checks, failed_stage="input"), execution_name="run-7", published=False,
                            settings=SETTINGS) == []
    assert run_history_rows({"failure": {}}, execution_name="run-7", published=False, settings=SETTINGS) == []


def test_a_run_that_failed_before_its_first_check_has_its_own_row():
    [row] = run_history_rows(state(checks={}, failed_stage="landing"), execution_name="run-7", published=False,
                             settings=SETTINGS)
    assert (row["run_id"], row["outcome"], row["measure"], row["stage"], row["value"]) == (
        "run-7", "crashed", "run", "landing", None)


@pytest.mark.parametrize("status, detail_type, execution_input", [
    ("SUCCEEDED", "Step Functions Execution Status Change", "{}"),  # ended through its own Record run
    ("FAILED", "Step Functions Execution Status Change", "{}"),
    ("ABORTED", "Step Functions State Machine Status Change", "{}"),
    ("ABORTED", "Step Functions Execution Status Change", "not json"),
    ("ABORTED", "Step Functions Execution Status Change", '{"consent_scope": "everyone"}'),
])
def test_only_an_execution_stopped_or_timed_out_as_a_run_has_rows_of_its_ending(status, detail_type, execution_input):
    event = {"detail-type": detail_type, "detail": {"name": "run-7", "status": status, "input": execution_input}}

    def history_not_needed(execution_arn):
        raise AssertionError("the history of an execution that needs no rows was read")

    assert ended_run_rows(event, SETTINGS, history_not_needed) == []


def entered(name: str) -> dict:
    return {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": name}}


def exited(name: str, output: str) -> dict:
    return {"type": "TaskStateExited", "stateExitedEventDetails": {"name": name, "output": output}}


def test_a_stopped_run_s_state_is_what_the_last_state_to_finish_left_and_its_step_the_last_entered():
    landing = {"run": {"run_id": "run-7"}, "jobs": {"landing": {"seconds": 60}}, "checks": {"landing": {}}}
    events = [
        {"type": "ExecutionStarted"},
        entered("Validate input"), exited("Validate input", json.dumps({"run": {"run_id": "run-7"}})),
        entered("Run landing job"), entered("Check landing"), exited("Check landing", json.dumps(landing)),
        entered("Did landing pass?"),  # a state that belongs to no step: the run is still at landing's
        exited("Did landing pass?", '{"run": {"run_id": "run-7"}, "checks": {"lan'),  # cut short: passed over
        {"type": "ExecutionAborted"},
    ]
    assert state_when_ended(events, steps_of_states()) == (landing, "landing")
    assert state_when_ended(events[:2], steps_of_states()) == ({}, "input")
    assert state_when_ended(events[:1], steps_of_states()) == ({}, "")


def test_the_run_must_be_this_execution_s():
    with pytest.raises(InvalidRunInput, match="not this execution"):
        run_history_rows(state(checks={}), execution_name="run-8", published=False, settings=SETTINGS)
