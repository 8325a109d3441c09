"""The smoke test's helpers (smoke.py) against moto, and the local figures it holds a deployed stack to."""

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.athena.models import QueryResults, athena_backends
from moto.core import DEFAULT_ACCOUNT_ID
from smoke import (
    GARBAGE,
    STARTER,
    STARTER_PUBLISHED,
    deployed_stack,
    landing_keys,
    local_publication,
    published_entry,
    published_rows,
    recorded_outcomes,
    revocation,
    upload_landing,
    wait_for_run,
)

from stedi.aws.athena import AthenaQuery
from stedi.catalogue import RECORD_TABLES

REGION = "eu-west-1"
BUCKET = "stedi-dev-lakebucket-1a2b3c"

needs_starter = pytest.mark.skipif(not STARTER.is_dir(), reason=f"starter data not found at {STARTER}")


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        boto3.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield


def test_the_stack_is_found_by_its_outputs(aws):
    outputs = {"LakeBucketName": BUCKET, "StateMachineArn": "arn:aws:states:eu-west-1:123456789012:stateMachine:p",
               "PublishedDatabaseName": "stedi_dev_published", "CheckWorkGroupName": "stedi-dev-checks",
               "HistoryTableName": "stedi_dev_runs.history"}
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {key: {"Value": value} for key, value in outputs.items()}}
    boto3.client("cloudformation").create_stack(StackName="stedi-dev", TemplateBody=json.dumps(template))

    stack = deployed_stack(boto3.client("cloudformation"), "stedi-dev")

    assert (stack.bucket, stack.state_machine_arn, stack.published_database, stack.workgroup,
            stack.history_table) == tuple(outputs.values())


def test_landing_files_go_to_the_same_keys_and_are_seen_there(aws, tmp_path):
    s3 = boto3.client("s3")
    for source in ("customer", "accelerometer", "step_trainer"):
        (tmp_path / source / "landing").mkdir(parents=True)
        (tmp_path / source / "landing" / f"{source}-1.json").write_text("{}\n")
    s3.put_object(Bucket=BUCKET, Key="runs/r/x.parquet", Body=b"x")
    assert landing_keys(s3, BUCKET) == []

    keys = upload_landing(s3, BUCKET, tmp_path)

    assert landing_keys(s3, BUCKET) == keys == [f"{source}/landing/{source}-1.json"
                                                 for source in ("customer", "accelerometer", "step_trainer")]


def test_the_run_an_upload_started_is_waited_for_until_it_ends(aws):
    sfn = boto3.client("stepfunctions")
    definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}
    arn = sfn.create_state_machine(name="p", definition=json.dumps(definition),
                                   roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
    before = sfn.start_execution(stateMachineArn=arn, name="before-the-upload")
    uploaded_at = datetime.now(timezone.utc)
    sfn.start_execution(stateMachineArn=arn, name="upload-1")
    sleeps = []

    execution = wait_for_run(sfn, arn, uploaded_at, poll=0.05, sleep=sleeps.append)

    assert (execution["name"], execution["status"]) == ("upload-1", "SUCCEEDED")
    assert execution["executionArn"] != before["executionArn"]


def test_waiting_for_a_run_that_never_starts_says_so():
    class NoRuns:
        @staticmethod
        def list_executions(stateMachineArn):
            return {"executions": []}

    clock = iter(range(0, 10_000, 15))
    with pytest.raises(TimeoutError, match="no execution started 60s after the upload"):
        wait_for_run(NoRuns(), "arn", datetime.now(timezone.utc), timeout=60, sleep=lambda s: None,
                     clock=lambda: next(clock))


def test_what_was_published_is_read_from_the_manifest_and_by_a_reader(aws):
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key="published.json",
                  Body=json.dumps({"current": {"run_id": "upload-1", "tables": {"customer_trusted": 482}},
                                   "history": []}).encode())
    assert published_entry(s3, BUCKET) == {"run_id": "upload-1", "tables": {"customer_trusted": 482}}

    athena = boto3.client("athena")
    athena.create_work_group(Name="stedi-dev-checks", Configuration={
        "ResultConfiguration": {"OutputLocation": f"s3://{BUCKET}/athena-results/"}})
    rows = [(table, str(n)) for n, table in enumerate(RECORD_TABLES)]
    athena_backends[DEFAULT_ACCOUNT_ID][REGION].query_results_queue.append(QueryResults(
        rows=[{"Data": [{"VarCharValue": "table"}, {"VarCharValue": "rows"}]},
              *({"Data": [{"VarCharValue": table}, {"VarCharValue": n}]} for table, n in rows)],
        column_info=[{"Name": "table"}, {"Name": "rows"}]))

    assert published_rows(AthenaQuery(athena, "stedi_dev_published", "stedi-dev-checks")) == {
        table: int(n) for table, n in rows}

    athena_backends[DEFAULT_ACCOUNT_ID][REGION].query_results_queue.append(QueryResults(
        rows=[{"Data": [{"VarCharValue": "run_id"}, {"VarCharValue": "outcome"}]},
              {"Data": [{"VarCharValue": "upload-1"}, {"VarCharValue": "published"}]}],
        column_info=[{"Name": "run_id"}, {"Name": "outcome"}]))
    query = AthenaQuery(athena, "stedi_dev_published", "stedi-dev-checks")
    assert recorded_outcomes(query, "stedi_dev_runs.history", ["upload-1", "it's"]) == {"upload-1": "published"}
    queries = [athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Query"]
               for query_id in athena.list_query_executions()["QueryExecutionIds"]]
    [sql] = [query for query in queries if "history" in query]
    assert sql.endswith("FROM stedi_dev_runs.history WHERE measure = 'run' AND run_id IN ('upload-1', 'it''s')")


def test_the_figures_the_smoke_test_holds_a_stack_to_are_the_readme_s():
    """The README's table "Against the starter data the run publishes", scope `reading` (its last column);
    tests/test_starter.py shows the local run publishes them."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    readme_figures = {}
    for names, customer, reading in re.findall(r"^\| ([a-z_ /]+) \| ([\d,/ ]+) \| ([\d,/ ]+|same) \|$", readme,
                                               re.MULTILINE):
        tables = [f"{name}_landing" for name in names.removesuffix(" landing").split(" / ")] \
            if names.endswith(" landing") else [names]
        readme_figures.update(zip(tables, (customer if reading == "same" else reading).split(" / "), strict=True))
    assert {table: int(figure.replace(",", "")) for table, figure in readme_figures.items()} == STARTER_PUBLISHED


@needs_starter
def test_the_revocation_and_the_garbage_change_what_is_published_as_the_smoke_test_expects(tmp_path):
    email, record = revocation(STARTER)
    assert "shareWithResearchAsOfDate" not in json.loads(record) and json.loads(record)["email"] == email
    revoked = {"customer/landing/smoke-revocation.json": record + "\n"}
    garbage = {"accelerometer/landing/smoke-garbage.json": "".join(line + "\n" for line in GARBAGE)}

    before, after = local_publication(STARTER, revoked), local_publication(STARTER, revoked | garbage)

    for table in ("customer_trusted", "accelerometer_trusted", "customer_curated", "step_trainer_trusted",
                  "machine_learning_curated"):
        assert before["tables"][table] < STARTER_PUBLISHED[table], table
    assert after["tables"] == {**before["tables"], "accelerometer_rejected": len(GARBAGE)}
    assert after["rejected"]["accelerometer"] == {"malformed_json": 1, "missing_field:timestamp": 1,
                                                  "wrong_type:timestamp": 1}

