"""What an operator does after a failed run: fix the cause, then start a new execution.

A run writes only under its own staging prefix (runs/<execution name>/) and
publishes only when every check passed, so a new execution reads the landing
files afresh and publishes as if the failed run had never been. Redriving the
failed execution would not: every failure is caught and ends in the "Run
failed" Fail state, and Step Functions "continues the failed execution from
the unsuccessful step and uses the same input"
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_RedriveExecution.html),
so a redrive would only enter that Fail state again, with the lock already released.
"""

import json

import pytest
from aws_fakes import BUCKET, PUBLISHED_DB, nothing_found

from stedi.catalogue import TABLES

DUPLICATE_EMAILS = "SELECT count(*) - count(DISTINCT email) FROM customer_trusted"


def states_entered(execution) -> list[str]:
    return [event["stateEnteredEventDetails"]["name"] for event in execution["history"]
            if "stateEnteredEventDetails" in event]


def published(stack) -> tuple[str, dict[str, str]]:
    """The run published.json names, and where each published table points."""
    manifest = json.loads(stack.client("s3").get_object(Bucket=BUCKET, Key="published.json")["Body"].read())
    tables = stack.client("glue").get_tables(DatabaseName=PUBLISHED_DB)["TableList"]
    return manifest["current"]["run_id"], {t["Name"]: t["StorageDescriptor"]["Location"] for t in tables}


def test_a_new_execution_after_the_fix_publishes_as_if_the_failed_run_had_never_been(stack):
    stack.answer = lambda sql: 3 if sql == DUPLICATE_EMAILS else nothing_found(sql)
    failed = stack.run(name="run-before-fix")
    assert failed["status"] == "FAILED"
    # Its last step is the Fail state: that is where a redrive would start again.
    assert states_entered(failed)[-1] == "Run failed"
    assert stack.lock_owner() is None  # the failed run let go of the lock: a new run may start at once

    stack.answer = nothing_found  # the landing data fixed
    fixed = stack.run(name="run-after-fix")

    assert fixed["status"] == "SUCCEEDED", fixed.get("cause")
    run_id, locations = published(stack)
    assert run_id == "run-after-fix"
    assert locations == {table: f"s3://{BUCKET}/runs/run-after-fix/{table}" for table in TABLES}
    # The failed run was never published. It failed before the first publish, so its staging stays as long as
    # that publish is kept: the query in its Cause still shows the rows it failed on.
    manifest = stack.client("s3").get_object(Bucket=BUCKET, Key="published.json")["Body"].read().decode()
    assert "run-before-fix" not in manifest
    staged = {obj["Key"].split("/")[1] for obj in
              stack.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="runs/").get("Contents", [])}
    assert staged == {"run-before-fix", "run-after-fix"}


def test_an_execution_name_is_used_once_so_a_rerun_is_always_a_new_run(stack):
    """Step Functions refuses a second StartExecution with a used name and another input
    (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html:
    ExecutionAlreadyExists), so no re-run writes over a failed run's staging."""
    stack.answer = lambda sql: 3 if sql == DUPLICATE_EMAILS else nothing_found(sql)
    assert stack.run(name="run-once")["status"] == "FAILED"
    sfn = stack.client("stepfunctions")
    with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):
        sfn.start_execution(stateMachineArn=stack.state_machine_arn, name="run-once",
                            input=json.dumps({"consent_scope": "customer"}))
