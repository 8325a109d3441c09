"""The real state machine definition, executed by moto with the real handlers in-process.

Each test runs statemachine/pipeline.asl.json from the start: validation,
a run of the Glue job per stage, each followed by its checks on (moto's)
Athena (the landing crawl: test_aws_crawl.py), publishing, and on any failure the one notify step and the
Fail state.
"""

import functools
import json

import pytest
from aws_fakes import (
    BUCKET,
    PUBLISHED_DB,
    STAGE_JOB,
    STAGING_DB,
    WORKGROUP,
    answer_from_duckdb,
    nothing_found,
    one_row_parts,
)

from stedi.catalogue import STAGES, TABLES
from stedi.checks import CHECKS, EqualsQuery


def states_entered(execution) -> list[str]:
    return [event["stateEnteredEventDetails"]["name"] for event in execution["history"]
            if "stateEnteredEventDetails" in event]


def glue_job_arguments(execution) -> dict[str, dict]:
    """Stage (its --stage argument) -> the arguments the one Glue job was started with for it."""
    arguments = {}
    for event in execution["history"]:
        details = event.get("taskScheduledEventDetails")
        if details and details["resourceType"] == "glue":
            parameters = json.loads(details["parameters"])
            assert parameters["JobName"] == STAGE_JOB
            arguments[parameters["Arguments"]["--stage"]] = parameters["Arguments"]
    return arguments


def check_outputs(execution) -> dict[str, dict]:
    """Stage -> what the state machine kept of its check state's result (the stage summary)."""
    found = {}
    for event in execution["history"]:
        details = event.get("stateExitedEventDetails")
        if details and details["name"].startswith("Check "):
            stage = details["name"].removeprefix("Check ")
            found[stage] = json.loads(details["output"])["checks"][stage]
    return found


def published_locations(stack) -> dict[str, str]:
    glue = stack.client("glue")
    tables = glue.get_tables(DatabaseName=PUBLISHED_DB)["TableList"]
    return {table["Name"]: table["StorageDescriptor"]["Location"] for table in tables}


def test_happy_path_runs_every_stage_checks_it_on_athena_and_publishes(stack):
    pinned = {"customer_trusted": 0, "machine_learning_curated": 0}
    lock_owners = []
    stack.after_jobs["landing"] = lambda: lock_owners.append(stack.lock_owner())
    execution = stack.run({"consent_scope": "customer", "expected_counts": pinned}, name="run-ok")

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    summaries = check_outputs(execution)
    assert list(summaries) == list(STAGES)
    for stage in STAGES:
        summary = summaries[stage]
        assert summary["checks_failed"] == 0 and summary["failure"] is None
        assert summary["checks_passed"] + summary["checks_skipped"] == len(CHECKS[stage])
        assert all(isinstance(n, int) for n in summary["rows"].values())
    assert summaries["customer_trusted"]["rows"] == {"customer_trusted": 0}
    # The execution's output is the run summary, what published.json records of the run.
    output = json.loads(execution["output"])
    assert output == json.loads(stack.client("s3").get_object(Bucket=BUCKET, Key="published.json")["Body"].read()
                                )["current"]
    assert output["tables"] == {table: n for summary in summaries.values() for table, n in summary["rows"].items()}
    assert output["checks"] == {status: sum(summary[f"checks_{status}"] for summary in summaries.values())
                                for status in ("passed", "failed", "skipped")}

    arguments = glue_job_arguments(execution)
    assert list(arguments) == list(STAGES)
    assert arguments["landing"] == {"--stage": "landing", "--lake": f"s3://{BUCKET}",
                                    "--staging": f"s3://{BUCKET}/runs/run-ok"}
    for stage in STAGES[1:]:
        assert arguments[stage] == {"--stage": stage, "--staging": f"s3://{BUCKET}/runs/run-ok",
                                    "--consent_scope": "customer"}

    # Every check of stedi.checks ran, rendered with the run's scope, in (and naming) the staging database.
    issued = [part for query in stack.queries for part in one_row_parts(query["sql"]) or [query["sql"]]]
    for stage in STAGES:
        for check in CHECKS[stage]:
            if check.table in pinned or check.name != "row_count":
                assert check.render(check.sql, "customer", STAGING_DB) in issued, (stage, check.name)
            if isinstance(check.expect, EqualsQuery):
                assert check.render(check.expect.sql, "customer", STAGING_DB) in issued
    checking = [query for query in stack.queries if not query["sql"].startswith("INSERT INTO")]
    assert {(query["database"], query["workgroup"]) for query in checking} == {(STAGING_DB, WORKGROUP)}

    assert published_locations(stack) == {table: f"s3://{BUCKET}/runs/run-ok/{table}" for table in TABLES}
    manifest = json.loads(stack.client("s3").get_object(Bucket=BUCKET, Key="published.json")["Body"].read())
    assert manifest["current"]["run_id"] == "run-ok"
    assert manifest["current"]["consent_scope"] == "customer"
    assert stack.alerts() == []
    assert lock_owners == ["run-ok"] and stack.lock_owner() is None  # the run lock, held from start to end


def test_a_failing_check_fails_the_run_naming_stage_and_check_and_publishes_nothing(stack):
    duplicate_emails = "SELECT count(*) - count(DISTINCT email) FROM customer_trusted"
    stack.answer = lambda sql: 3 if sql == duplicate_emails else nothing_found(sql)
    execution = stack.run(name="run-bad-check")

    assert execution["status"] == "FAILED"
    assert execution["error"] == "customer_trusted.unique_email"
    assert "customer_trusted.unique_email: expected 0, got 3." in execution["cause"]
    entered = states_entered(execution)
    assert entered.count("Check customer_trusted") == 1  # a failed check is never retried
    assert "Run accelerometer_trusted job" not in entered and "Publish run" not in entered
    assert entered[-4:] == ["Record failed run", "Describe failure", "Notify failure", "Run failed"]
    [(subject, message)] = stack.alerts()
    assert "customer_trusted.unique_email" in subject
    assert "customer_trusted.unique_email: expected 0, got 3." in message and "run-bad-check" in message
    assert published_locations(stack) == {}


def test_an_unexpected_row_count_fails_the_run(stack):
    execution = stack.run({"expected_counts": {"step_trainer_trusted": 10}}, name="run-pinned")

    assert execution["status"] == "FAILED"
    assert execution["error"] == "step_trainer_trusted.row_count"
    assert "step_trainer_trusted.row_count: expected 10, got 0." in execution["cause"]


def test_a_failed_glue_job_fails_the_run_at_its_stage_without_retrying(stack):
    stack.failing_jobs = {"accelerometer_trusted"}
    execution = stack.run(name="run-bad-job")

    assert execution["status"] == "FAILED"
    assert execution["error"] == "accelerometer_trusted: States.TaskFailed"
    # The job run, said in a sentence rather than as its JSON.
    assert execution["cause"].startswith("Glue job run jr_")
    assert " of job stedi-stage ended FAILED: RuntimeError: stage accelerometer_trusted fails, as the test asked" \
        in execution["cause"]
    entered = states_entered(execution)
    assert entered.count("Run accelerometer_trusted job") == 1
    assert "Check accelerometer_trusted" not in entered
    [(subject, _)] = stack.alerts()
    assert "accelerometer_trusted" in subject
    assert published_locations(stack) == {}
    assert stack.lock_owner() is None  # a failed run frees the run lock too


def test_a_busy_glue_job_is_retried_with_backoff(stack):
    stack.busy_job_starts = {"customer_curated": 2}
    execution = stack.run(name="run-busy")

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert stack.retry_intervals == [60, 120]


def test_a_throttled_lambda_is_retried_with_backoff(stack):
    stack.throttled_invocations = {"check_stage": 2}
    execution = stack.run(name="run-throttled")

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert stack.retry_intervals == [2, 4]
    errors = [event["taskFailedEventDetails"]["error"] for event in execution["history"]
              if "taskFailedEventDetails" in event]
    assert errors == ["Lambda.TooManyRequestsException"] * 2


@pytest.mark.parametrize("execution_input, problem", [
    ({"consent_scope": "everyone"}, "consent_scope"),
    ({"expected_counts": {"customers": 1}}, "unknown table"),
    ({"table": "customer_trusted"}, "unknown input keys"),
])
def test_invalid_input_fails_the_run_before_any_work(stack, execution_input, problem):
    execution = stack.run(execution_input, name="run-bad-input")

    assert execution["status"] == "FAILED"
    assert execution["error"] == "input: InvalidRunInput"
    assert problem in execution["cause"]
    assert not glue_job_arguments(execution)


def test_the_published_manifest_holds_the_figures_a_local_run_records_for_the_same_data(stack, tmp_path):
    """One function builds the entry for both: Athena answered from DuckDB over a local run's staged tables."""
    from stedi.generate import generate_lake
    from stedi.lake import Lake
    from stedi.pipeline import Audit, run_pipeline

    lake = Lake(tmp_path / "lake")
    generate_lake(lake.root, scale=0.02, seed=5, dirt=True)
    local = run_pipeline(lake, consent_scope="customer")
    assert local.published
    audit = Audit(lake.snapshot(), local.staging)
    for stage in STAGES:
        audit.show(stage)  # every staged table becomes a view
    stack.answer = functools.partial(answer_from_duckdb, audit.con)

    execution = stack.run({"consent_scope": "customer"}, name="run-same-data")
    audit.close()

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    on_aws = json.loads(stack.client("s3").get_object(Bucket=BUCKET, Key="published.json")["Body"].read())["current"]
    here = lake.published()["current"]
    for key in ("consent_scope", "tables", "rejected", "filtered", "checks"):
        assert on_aws[key] == here[key], key
    assert sum(map(sum, (counts.values() for counts in here["rejected"].values()))) > 0  # the lake was dirty
    assert on_aws["engine"] == "glue" and set(on_aws["stage_seconds"]) == set(STAGES)
