"""The end of a run on AWS, executed by moto: what the console shows, what the mail says, the history.

The state machine's Fail state takes its Error and Cause from the state (ErrorPath, CausePath: "the
reference path must select a field that contains a string value",
https://docs.aws.amazon.com/step-functions/latest/dg/state-fail.html), the console link is made with
States.Format from $$.Execution.Id (https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html),
and an execution's error and cause are at most 256 and 32,768 characters
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_ExecutionFailedEventDetails.html,
checked by FakeStack.run). A function error's Cause is the error document of Lambda's Python runtime,
stack trace and all (https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html, as the fake
Lambda writes it); SNS refuses a message over 256 KiB and a subject of 100 characters or more (patch_sns);
Athena appends INSERT INTO rows to a Parquet table as Parquet files (athena_insert); CloudWatch runs an
alarm's actions when it goes to ALARM (alarm_deliveries). The links to these pages are beside each fake.
"""

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from aws_fakes import (
    BUCKET,
    REGION,
    RUNS_DB,
    STAGING_DB,
    WORKGROUP,
    LakeAthena,
    LambdaContext,
    alarm_deliveries,
    history_location,
    load_handler,
    nothing_found,
    read_parquet_table,
    status_change_event,
)
from aws_template import load_template
from moto.events.models import EventPattern

from stedi.accounting import HISTORY_COLUMNS, history_rows
from stedi.aws.history import execution_events
from stedi.aws.outcome import console_link
from stedi.catalogue import STAGES
from stedi.checks import CHECKS, offending_rows_sql

# A check function that crashes before measuring anything has no metrics to flush; Powertools warns, rightly.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

DUPLICATE_EMAILS = "SELECT count(*) - count(DISTINCT email) FROM customer_trusted"
CUSTOMER_TRUSTED_ROWS = "SELECT count(*) FROM customer_trusted"
LAMBDA_WRAPPER = ("errorType", "errorMessage", "requestId", "stackTrace", "Traceback", 'File "')


def states_entered(execution) -> list[str]:
    return [event["stateEnteredEventDetails"]["name"] for event in execution["history"]
            if "stateEnteredEventDetails" in event]


def state_output(execution, name: str) -> dict:
    """The output of the last time the execution left the state `name`."""
    outputs = [json.loads(event["stateExitedEventDetails"]["output"]) for event in execution["history"]
               if event.get("stateExitedEventDetails", {}).get("name") == name]
    assert outputs, f"the execution never left {name}"
    return outputs[-1]


def state_input(execution, name: str) -> dict:
    inputs = [json.loads(event["stateEnteredEventDetails"]["input"]) for event in execution["history"]
              if event.get("stateEnteredEventDetails", {}).get("name") == name]
    assert inputs, f"the execution never entered {name}"
    return inputs[-1]


FILTERED_BY_RULE = "SELECT rule, records FROM customer_trusted_filtered"


def failing_answers(answers: dict):
    return lambda sql: answers[sql] if sql in answers else nothing_found(sql)


def lake_answers(stack, extra_customers: int, filtered: list[tuple[str, str]]):
    """Athena's answers over what the fake jobs wrote (every check passes), after `extra_customers` more
    customer lines were uploaded; customer_trusted set aside `filtered` (rule, records) besides."""
    stack.upload("customer/landing/more.json", "".join(f'{{"email": "c{n}@test.com"}}\n'
                                                       for n in range(extra_customers)))
    lake = LakeAthena(stack)
    return lambda sql: filtered if sql == FILTERED_BY_RULE else lake(sql)


def link(execution) -> str:
    return (f"https://{REGION}.console.aws.amazon.com/states/home?region={REGION}"
            f"#/v2/executions/details/{execution['executionArn']}")


def mails_to_the_alert_topic(stack, metrics: dict[str, float]) -> int:
    """Every message the alert topic got: the state machine's, and those of the template's alarms for the
    execution metrics the run made (CloudWatch's AWS/States namespace)."""
    alarms = [topic for metric, value in metrics.items() for topic in alarm_deliveries("AWS/States", metric, value)]
    return len(stack.alerts()) + alarms.count("AlertTopic")


# ---------------------------------------------------------------- the console


def test_a_failed_check_ends_the_run_with_the_check_as_error_and_a_plain_cause(stack):
    stack.answer = failing_answers({DUPLICATE_EMAILS: 3})
    execution = stack.run(name="run-duplicate")

    assert execution["status"] == "FAILED"
    assert execution["error"] == "customer_trusted.unique_email"
    cause = execution["cause"]
    check = next(check for check in CHECKS["customer_trusted"] if check.name == "unique_email")
    assert "customer_trusted.unique_email: expected 0, got 3." in cause
    assert offending_rows_sql(check, "reading", STAGING_DB) in cause  # the query that shows the rows
    assert f"workgroup {WORKGROUP}, database {STAGING_DB}" in cause
    assert f"s3://{BUCKET}/runs/run-duplicate/" in cause  # where the run's tables are
    assert not any(word in cause for word in LAMBDA_WRAPPER)
    assert "Publish run" not in states_entered(execution)


def test_several_failed_checks_name_the_first_and_list_every_one_and_the_stage_keeps_its_rows(stack):
    # 7 rows, 3 of them repeats: uniqueness fails, and so does the recount from landing (0).
    stack.answer = failing_answers({DUPLICATE_EMAILS: 3, CUSTOMER_TRUSTED_ROWS: 7})
    execution = stack.run(name="run-many")

    summary = state_output(execution, "Check customer_trusted")["checks"]["customer_trusted"]
    failed = [result for result in summary["results"] if result["status"] == "failed"]
    assert [result["check"] for result in failed] == ["unique_email", "recount_from_landing"]
    assert execution["error"] == "customer_trusted.unique_email"  # the first
    cause = execution["cause"]
    assert cause.startswith(f"2 of {len(summary['results'])} checks of stage customer_trusted failed.")
    lines = [f"{result['table']}.{result['check']}: expected {result['expected']}, got {result['actual']}."
             for result in failed]
    assert [cause.index(line) for line in lines] == sorted(cause.index(line) for line in lines)  # in order, each
    checks = {check.name: check for check in CHECKS["customer_trusted"]}
    for result in failed:
        assert offending_rows_sql(checks[result["check"]], "reading", STAGING_DB) in cause
    # The failed stage kept its row counts.
    assert summary["rows"] == {"customer_trusted": 7}


def test_a_crash_of_our_own_code_shows_its_type_and_message_not_lambda_s_error_document(stack):
    stack.answer = failing_answers({"SELECT count(*) FROM customer_curated": "n/a"})  # no number: parsing raises
    execution = stack.run(name="run-crash")

    assert execution["status"] == "FAILED"
    assert execution["error"] == "customer_curated: ValueError"
    # What the function raised, and nothing of the document Lambda wrapped it in.
    raised = state_output(execution, "Failed at customer_curated")["failure"]
    document = json.loads(raised["Cause"])
    assert document["stackTrace"] and document["requestId"]  # as Lambda reports it
    assert execution["cause"].startswith(f"ValueError: {document['errorMessage']}\n")
    assert document["errorMessage"] == "could not convert string to float: 'n/a'"
    assert f"s3://{BUCKET}/runs/run-crash/" in execution["cause"]
    assert not any(word in execution["cause"] for word in LAMBDA_WRAPPER)


def test_a_cause_too_long_for_an_execution_is_cut_short_and_still_mailed(stack):
    # Lambda's answer stays under the 256 KB a state's data may hold (moto enforces it).
    stack.failing_functions = {"check_stage": RuntimeError("no such table: " + "x" * 40_000)}
    execution = stack.run(name="run-long")

    assert execution["error"] == "landing: RuntimeError"
    assert len(execution["cause"]) == 32_768 and execution["cause"].endswith("[cut short]")
    [(_, message)] = stack.alerts()
    assert len(message.encode()) <= 262_144 and execution["cause"] in message


def test_a_published_run_s_output_is_its_summary(stack):
    stack.answer = lake_answers(stack, 2, [("no_consent", "2"), ("superseded", "1")])
    execution = stack.run(name="run-ok")

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    output = json.loads(execution["output"])
    manifest = json.loads(stack.client("s3").get_object(Bucket=BUCKET, Key="published.json")["Body"].read())
    assert output == manifest["current"]
    assert output["run_id"] == "run-ok" and output["engine"] == "glue"
    assert output["tables"]["customer_landing"] == 3  # the seed line and the two uploaded
    assert output["tables"]["customer_trusted"] == 0
    assert output["filtered"]["customer_trusted"] == {"no_consent": 2, "superseded": 1}
    assert output["rejected"] == {"customer": {}, "accelerometer": {}, "step_trainer": {}}
    assert output["checks"]["failed"] == 0
    assert output["checks"]["passed"] + output["checks"]["skipped"] == sum(len(CHECKS[stage]) for stage in STAGES)


# ---------------------------------------------------------------- the mail


def test_a_failed_run_sends_exactly_one_mail_with_stage_check_cause_and_console_link(stack):
    stack.answer = failing_answers({DUPLICATE_EMAILS: 3})
    execution = stack.run(name="run-mail")

    [(subject, message)] = stack.alerts()
    # ExecutionsFailed counts this run; its alarm sends nothing more to the alert topic.
    assert mails_to_the_alert_topic(stack, {"ExecutionsFailed": 1}) == 1
    assert subject == "STEDI run run-mail failed: customer_trusted.unique_email"
    assert "failed in stage customer_trusted, check customer_trusted.unique_email." in message
    assert execution["cause"] in message
    assert link(execution) in message
    assert link(execution) == console_link(execution["executionArn"])


def test_a_run_that_times_out_is_told_by_its_alarm_alone(stack):
    """A timed-out execution runs none of its states, so only the alarm on ExecutionsTimedOut tells of it;
    it is no failed execution, so the state machine's alert and ExecutionsFailed say nothing."""
    assert alarm_deliveries("AWS/States", "ExecutionsTimedOut", 1) == ["AlertTopic"]
    assert alarm_deliveries("AWS/States", "ExecutionsTimedOut", 0) == []
    assert alarm_deliveries("AWS/States", "ExecutionsFailed", 1) == []


def test_a_crash_mails_its_type_and_message_too(stack):
    stack.failing_jobs = {"step_trainer_trusted"}
    execution = stack.run(name="run-job-fails")

    [(subject, message)] = stack.alerts()
    assert subject == "STEDI run run-job-fails failed: step_trainer_trusted: States.TaskFailed"
    assert "failed in stage step_trainer_trusted." in message
    assert "RuntimeError: stage step_trainer_trusted fails, as the test asked" in message
    assert link(execution) in message


def test_when_describing_fails_the_run_still_ends_with_its_own_error_and_one_mail(stack):
    stack.answer = failing_answers({DUPLICATE_EMAILS: 3})
    stack.failing_functions = {"describe_failure": RuntimeError("describing is broken")}
    execution = stack.run(name="run-undescribed")

    assert "Describe failure plainly" in states_entered(execution)
    assert execution["error"] == "customer_trusted: customer_trusted.unique_email"
    assert "customer_trusted.unique_email: expected 0, got 3." in execution["cause"]
    [(_, message)] = stack.alerts()
    # The states language cannot look up the partition's console host: the plain message names the execution.
    assert message.endswith(f"Execution: {execution['executionArn']}")


def test_the_success_summary_goes_to_the_success_topic_only_where_it_exists(stack_with_success_email):
    stack = stack_with_success_email
    stack.answer = lake_answers(stack, 2, [])
    execution = stack.run(name="run-told")

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    [(subject, message)] = stack.success_mails()
    summary = json.loads(execution["output"])
    assert subject == "STEDI run run-told published"
    assert re.search(r"^  customer_landing +3$", message, re.MULTILINE)
    assert f"checks: {summary['checks']['passed']} passed, 0 failed, {summary['checks']['skipped']} skipped" \
        in message
    assert link(execution) in message
    assert stack.alerts() == []

    stack.answer = failing_answers({DUPLICATE_EMAILS: 3})
    assert stack.run(name="run-not-told")["status"] == "FAILED"
    assert len(stack.success_mails()) == 1 and len(stack.alerts()) == 1  # a failed run: the alert alone


def test_without_a_success_email_a_published_run_sends_no_mail(stack):
    execution = stack.run(name="run-quiet")

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    entered = states_entered(execution)
    assert "Anyone to tell?" in entered and "Notify success" not in entered
    assert stack.alerts() == []


# ---------------------------------------------------------------- the history


def expected_history(execution, record_state: str, outcome: str) -> list[dict]:
    """What history_rows builds for the run, from the state the record step was given."""
    state = state_input(execution, record_state)
    summaries = [state["checks"][stage] for stage in STAGES if stage in state.get("checks", {})]
    seconds = {stage: job["seconds"] for stage, job in state.get("jobs", {}).items()}
    ended_at = "" if outcome == "published" else state.get("failed_stage", "")
    return history_rows(state["run"]["run_id"], "glue", state["run"]["consent_scope"], outcome, summaries, seconds,
                        ended_at)


def without_time(rows: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if key != "finished_at"} for row in rows]


def assert_recorded_now(rows: list[dict]) -> None:
    [finished_at] = {row["finished_at"] for row in rows}
    moment = datetime.strptime(finished_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs(datetime.now(timezone.utc) - moment) < timedelta(minutes=5)


def test_a_published_run_appends_its_history_rows_to_the_history_table(stack):
    stack.answer = lake_answers(stack, 2, [("no_consent", "3")])
    execution = stack.run({"consent_scope": "customer"}, name="run-recorded")
    assert execution["status"] == "SUCCEEDED", execution.get("cause")

    rows = read_parquet_table(history_location())
    assert list(rows[0]) == list(HISTORY_COLUMNS)
    assert without_time(rows) == without_time(expected_history(execution, "Record run", "published"))
    assert_recorded_now(rows)
    summary = json.loads(execution["output"])
    assert {row["subject"]: row["value"] for row in rows if row["measure"] == "rows"} == summary["tables"]
    assert {(row["subject"], row["detail"]): row["value"] for row in rows if row["measure"] == "filtered"
            and row["detail"]} == {("customer_trusted", "no_consent"): 3}
    assert {row["subject"]: row["value"] for row in rows if row["measure"] == "rows"}["customer_landing"] == 3
    assert sum(row["measure"] == "check" for row in rows) == sum(len(CHECKS[stage]) for stage in STAGES)
    assert {row["consent_scope"] for row in rows} == {"customer"}
    [insert] = [query for query in stack.queries if query["sql"].startswith("INSERT INTO")]
    assert insert["database"] == RUNS_DB and insert["workgroup"] == WORKGROUP
    assert state_output(execution, "Record run")["recorded"] == {"rows": len(rows), "outcome": "published"}


@pytest.mark.parametrize("status, outcome", [("ABORTED", "stopped"), ("TIMED_OUT", "timed_out")])
def test_a_stopped_or_timed_out_run_appends_its_rows_from_its_execution_s_history(stack, status, outcome):
    """Such an execution runs none of its states after it ended, Record run included: EventBridge tells the
    record function of it (template.yaml, RecordRunFunction's rule), with the execution's ARN, name, status and
    input (https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html; moto sends no such event), and
    the function reads what the run got through from the execution's history, page by page. Here the run is
    stopped while its last stage is being checked: the five before it were checked."""
    sfn = stack.client("stepfunctions")
    arn = stack.state_machine_arn.replace(":stateMachine:", ":execution:") + ":run-stopped"

    def answer(sql):
        if "FROM machine_learning_curated" in sql:
            sfn.stop_execution(executionArn=arn)
        return nothing_found(sql)

    stack.answer = answer
    execution = stack.run({"consent_scope": "customer"}, name="run-stopped")
    assert execution["status"] == "ABORTED"
    # Its history is longer than GetExecutionHistory's first page: the function reads every page.
    assert len(execution["history"]) > 100 and list(execution_events(sfn, arn)) == execution["history"]
    event = status_change_event(execution, status)
    event["detail"]["input"] = execution["input"]
    rule = load_template()["Resources"]["RecordRunFunction"]["Properties"]["Events"]["RunStoppedOrTimedOut"]
    pattern = rule["Properties"]["Pattern"]
    pattern["detail"]["stateMachineArn"] = [stack.state_machine_arn]  # the template's !Ref Pipeline
    assert EventPattern.load(json.dumps(pattern)).matches_event(event)
    for other in ("SUCCEEDED", "FAILED"):  # those ran Record run (or Record failed run) themselves
        assert not EventPattern.load(json.dumps(pattern)).matches_event(status_change_event(execution, other))

    recorded = load_handler("record_run").handler(event, LambdaContext(function_name="record-run"))

    rows = read_parquet_table(history_location())
    [own] = [row for row in rows if row["measure"] == "run"]
    assert (own["run_id"], own["outcome"], own["stage"], own["consent_scope"], own["engine"]) == (
        "run-stopped", outcome, "machine_learning_curated", "customer", "glue")
    checked = STAGES[:-1]
    assert {row["stage"] for row in rows if row["measure"] == "check"} == set(checked)
    assert sum(row["measure"] == "check" for row in rows) == sum(len(CHECKS[stage]) for stage in checked)
    assert {row["subject"] for row in rows if row["measure"] == "stage_seconds"} == set(checked)
    assert {row["outcome"] for row in rows} == {outcome}
    assert recorded == {"rows": len(rows), "statements": 1, "outcome": outcome}


@pytest.mark.parametrize("how, outcome, last_stage, ended_at", [
    ("check", "failed", "customer_trusted", "customer_trusted"),
    ("crash", "crashed", "accelerometer_trusted", "customer_curated"),
])
def test_a_failed_run_appends_its_history_rows_too(stack, how, outcome, last_stage, ended_at):
    if how == "check":
        stack.answer = failing_answers({DUPLICATE_EMAILS: 3})
    else:
        stack.failing_jobs = {"customer_curated"}
    execution = stack.run(name="run-unpublished")
    assert execution["status"] == "FAILED"

    rows = read_parquet_table(history_location())
    assert without_time(rows) == without_time(expected_history(execution, "Record failed run", outcome))
    assert {row["outcome"] for row in rows} == {outcome}
    [own] = [row for row in rows if row["measure"] == "run"]
    assert own["stage"] == ended_at  # where the run ended: the check that failed, the job that crashed
    figures = [row for row in rows if row["measure"] != "run"]
    assert [stage for stage in STAGES if any(row["stage"] == stage for row in figures)][-1] == last_stage
    failed = [(row["subject"], row["detail"], row["expected"], row["actual"]) for row in rows
              if row["measure"] == "check" and row["status"] == "failed"]
    assert failed == ([("customer_trusted", "unique_email", "0", "3")] if how == "check" else [])


def test_a_run_that_failed_at_its_input_records_nothing(stack):
    execution = stack.run({"consent_scope": "everyone"}, name="run-bad-input")

    assert execution["error"] == "input: InvalidRunInput"
    assert state_output(execution, "Record failed run")["recorded"] == {"rows": 0, "outcome": None}
    assert read_parquet_table(history_location()) == []


def test_failing_to_record_the_history_hides_neither_the_run_s_error_nor_its_summary(stack):
    stack.failing_inserts = True
    stack.answer = failing_answers({DUPLICATE_EMAILS: 3})
    failed = stack.run(name="run-unrecorded")

    assert failed["error"] == "customer_trusted.unique_email"
    assert "customer_trusted.unique_email: expected 0, got 3." in failed["cause"]
    assert len(stack.alerts()) == 1
    assert "QueryFailed" in state_output(failed, "Record failed run")["record_error"]["Error"]

    stack.answer = nothing_found
    published = stack.run(name="run-published-unrecorded")
    assert published["status"] == "SUCCEEDED", published.get("cause")
    assert json.loads(published["output"])["run_id"] == "run-published-unrecorded"
    assert read_parquet_table(history_location()) == []
