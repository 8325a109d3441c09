"""The run history on AWS: every run, published or not, appends its figures to one table in the lake.

The rows are the local run's (stedi.accounting.history_rows builds both); locally each run writes
one Parquet file under <lake>/history/, here Athena appends them to the Glue table `history` of the
database `<stack>_runs`, at s3://<bucket>/history/, with one `INSERT INTO history (...) VALUES ...`
statement: Athena writes the rows as Parquet, the table's format, so the Lambda layer needs no
Parquet writer. A statement longer than Athena takes (262,144 bytes) would be split in several.

Standard library only: the Lambda layer ships this module.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Iterable, Iterator, Mapping

from stedi.accounting import HISTORY_COLUMNS, history_rows
from stedi.aws.run_input import InvalidRunInput, RunInput, run_input_from_state, validate_run_input
from stedi.aws.settings import Settings
from stedi.aws.state_machine import steps_of_states
from stedi.catalogue import STAGES

HISTORY_TABLE = "history"
HISTORY_PREFIX = "history/"
ENGINE = "glue"
# The Glue Data Catalog's (Hive's) name of each type the history's columns have.
GLUE_TYPES = {"VARCHAR": "string", "DOUBLE": "double"}
# The outcome of an execution that ran none of its states after it ended, Record run included, by its status.
UNRECORDED_ENDINGS = {"ABORTED": "stopped", "TIMED_OUT": "timed_out"}
# Athena refuses a longer query string: https://repost.aws/knowledge-center/athena-query-string-length
MAX_QUERY_BYTES = 262_144


def glue_columns() -> list[dict[str, str]]:
    """The history table's columns as the Glue Data Catalog lists them: HISTORY_COLUMNS, in order."""
    return [{"Name": name, "Type": GLUE_TYPES[kind]} for name, kind in HISTORY_COLUMNS.items()]


def sql_literal(value: Any, kind: str) -> str:
    """`value` as a literal of the column type `kind` (a HISTORY_COLUMNS type), in SQL that Athena and
    DuckDB read alike."""
    if value is None:
        return f"CAST(NULL AS {kind})"
    if kind == "DOUBLE":
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{value!r} is no figure of the history")
        return f"CAST({number!r} AS DOUBLE)"
    if kind == "VARCHAR":
        return "'" + str(value).replace("'", "''") + "'"
    raise ValueError(f"no literal for the type {kind}")


def insert_statements(rows: Iterable[Mapping[str, Any]], table: str = HISTORY_TABLE,
                      max_bytes: int = MAX_QUERY_BYTES) -> list[str]:
    """INSERT INTO statements appending `rows` (history rows) to `table`: one, unless the rows
    take more than `max_bytes`; none for no rows."""
    head = f"INSERT INTO {table} ({', '.join(HISTORY_COLUMNS)}) VALUES "
    statements: list[str] = []
    values: list[str] = []
    size = len(head.encode())
    for row in rows:
        value = "(" + ", ".join(sql_literal(row[name], kind) for name, kind in HISTORY_COLUMNS.items()) + ")"
        grown = len(value.encode()) + len(", ".encode())
        if len(head.encode()) + grown > max_bytes:
            raise ValueError(f"one history row takes more than {max_bytes} bytes")
        if values and size + grown > max_bytes:
            statements.append(head + ", ".join(values))
            values, size = [], len(head.encode())
        values.append(value)
        size += grown
    if values:
        statements.append(head + ", ".join(values))
    return statements


def run_history_rows(state: Mapping[str, Any], *, execution_name: str, published: bool,
                     settings: Settings) -> list[dict[str, Any]]:
    """The history rows of the run whose state machine state is `state`: its own row, then every stage it
    checked, with its Glue job's seconds. Outcome: published, failed (a check failed) or crashed (anything
    else, before the first stage was checked too).

    A run that failed at its input has no rows: its state is the execution input, which said nothing
    true about a run.
    """
    if state.get("failed_stage") == "input" or not isinstance(state.get("run"), Mapping):
        return []
    run = run_input_from_state(state["run"], settings)
    if run.run_id != execution_name:
        raise InvalidRunInput(f"run {run.run_id!r} is not this execution's ({execution_name!r})")
    if published and "published" in state:
        outcome = "published"
    elif any(int(summary["checks_failed"]) for summary in _checked(state)):
        outcome = "failed"
    else:
        outcome = "crashed"
    ended_at = "" if outcome == "published" else str(state.get("failed_stage", ""))
    return _rows(run, state, outcome, ended_at)


def _checked(state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The summaries of the stages a run's state has the checks of, in stage order."""
    checks = state.get("checks") if isinstance(state.get("checks"), Mapping) else {}
    return [checks[stage] for stage in STAGES if stage in checks]


def _rows(run: RunInput, state: Mapping[str, Any], outcome: str, ended_at: str) -> list[dict[str, Any]]:
    jobs = state.get("jobs") if isinstance(state.get("jobs"), Mapping) else {}
    seconds = {stage: float(jobs[stage]["seconds"]) for stage in STAGES if stage in jobs}
    return history_rows(run.run_id, ENGINE, run.consent_scope, outcome, _checked(state), seconds, ended_at)


def ended_run_rows(event: Mapping[str, Any], settings: Settings,
                   execution_events: Callable[[str], Iterable[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """The history rows of an execution stopped or timed out, which runs none of its states after that: from
    EventBridge's "Step Functions Execution Status Change" event (its ARN, name, status and input:
    https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html) and `execution_events(arn)`, the
    execution's history, oldest event first (execution_events): its run's own row, with the step it was at,
    then every stage it checked. None for any other event, or for an input that was never a run's."""
    detail = event.get("detail") if isinstance(event.get("detail"), Mapping) else {}
    outcome = UNRECORDED_ENDINGS.get(detail.get("status"))
    if event.get("detail-type") != "Step Functions Execution Status Change" or outcome is None:
        return []
    try:
        run = validate_run_input(detail.get("name"), json.loads(detail.get("input") or "{}"), settings)
    except ValueError:  # InvalidRunInput, or input that is not JSON
        return []
    state, step = state_when_ended(execution_events(str(detail.get("executionArn"))), steps_of_states())
    return _rows(run, state, outcome, step)


def state_when_ended(events: Iterable[Mapping[str, Any]], steps: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    """From an execution's history, oldest event first: the run's state as the last state to finish left it
    (with the `jobs` and `checks` of the stages it got through), and the step (`steps`: state -> step) of the
    last state it entered that belongs to one ('' before any). An output that the history gives cut short
    (outputDetails.truncated) is no JSON, and passed over."""
    state: dict[str, Any] = {}
    step = ""
    for event in events:
        entered = (event.get("stateEnteredEventDetails") or {}).get("name")
        step = steps.get(entered, step)
        output = (event.get("stateExitedEventDetails") or {}).get("output")
        try:
            left = json.loads(output) if output else None
        except ValueError:
            continue
        if isinstance(left, dict) and isinstance(left.get("run"), Mapping):
            state = left
    return state, step


def execution_events(sfn: Any, execution_arn: str) -> Iterator[Mapping[str, Any]]:
    """Every event of an execution's history, oldest first, page by page (GetExecutionHistory:
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html)."""
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        yield from page["events"]


def record_run(execute: Callable[[str], Any], state: Mapping[str, Any], *, execution_name: str, published: bool,
               settings: Settings) -> dict[str, Any]:
    """Append the run's rows to the history table (see append_rows)."""
    return append_rows(execute, run_history_rows(state, execution_name=execution_name, published=published,
                                                 settings=settings))


def append_rows(execute: Callable[[str], Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Append history rows to the history table; `execute(sql)` runs one statement on Athena, in the
    database of the history table, and waits for it."""
    statements = insert_statements(rows)
    for statement in statements:
        execute(statement)
    return {"rows": len(rows), "statements": len(statements),
            "outcome": rows[0]["outcome"] if rows else None}
