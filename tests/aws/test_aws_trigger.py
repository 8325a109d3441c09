"""Uploads start runs: the EventBridge rule, then the SQS-fed trigger Lambda (burst, mid-run, redelivery)."""

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from aws_fakes import BUCKET, REGION, LambdaContext, load_handler
from aws_template import load_template
from moto import mock_aws
from moto.events.models import EventPattern

from stedi.aws.trigger import NotAnUpload, PipelineState, decide, execution_name, parse_upload, start_run
from stedi.catalogue import LANDING_SOURCES, SOURCES

STARTER_UPLOAD = (
    [f"customer/landing/customer-{n}.json" for n in range(1, 4)]
    + [f"accelerometer/landing/accelerometer-{n}.json" for n in range(1, 6)]
    + [f"step_trainer/landing/step_trainer-{n}.json" for n in range(1, 6)]
)  # 13 files


def s3_event(key: str, time: datetime, bucket: str = BUCKET, detail_type: str = "Object Created") -> dict:
    """An S3 event as EventBridge delivers it."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": "aws.s3",
        "account": "123456789012", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {"version": "0", "bucket": {"name": bucket},
                   "object": {"key": key, "size": 1024, "etag": "0123456789abcdef", "sequencer": "0062E99A88DC407460"},
                   "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "reason": "PutObject"},
    }


def sqs_batch(events: list[dict]) -> dict:
    return {"Records": [{"messageId": f"m-{event['id']}", "body": json.dumps(event), "eventSource": "aws:sqs"}
                        for event in events]}


def upload_rule_pattern() -> str:
    pattern = load_template()["Resources"]["UploadRule"]["Properties"]["EventPattern"]
    pattern["detail"]["bucket"]["name"] = [BUCKET]  # the template's !Ref LakeBucket
    return json.dumps(pattern)


@pytest.mark.parametrize("key", [f"{source}/landing/{source}-1.json" for source in SOURCES])
def test_the_rule_matches_an_upload_to_each_landing_zone(key):
    assert EventPattern.load(upload_rule_pattern()).matches_event(s3_event(key, datetime.now(timezone.utc)))


@pytest.mark.parametrize("event", [
    s3_event("runs/upload-1/customer_landing/part-0.parquet", datetime.now(timezone.utc)),
    s3_event("athena-results/abc.csv", datetime.now(timezone.utc)),
    s3_event("published.json", datetime.now(timezone.utc)),
    s3_event("customer/landingzone/customer-1.json", datetime.now(timezone.utc)),
    s3_event("customer/landing/customer-1.json", datetime.now(timezone.utc), bucket="someone-else"),
    s3_event("customer/landing/customer-1.json", datetime.now(timezone.utc), detail_type="Object Deleted"),
])
def test_the_rule_ignores_everything_else(event):
    assert not EventPattern.load(upload_rule_pattern()).matches_event(event)


def test_the_rule_covers_exactly_the_sources_of_the_catalogue():
    keys = load_template()["Resources"]["UploadRule"]["Properties"]["EventPattern"]["detail"]["object"]["key"]
    assert keys == [{"prefix": f"{source.landing_folder}/"} for source in LANDING_SOURCES]


@pytest.mark.parametrize("key", ["customer/landing/.hidden", "customer/landing/_SUCCESS",
                                 "customer/landing/sub/x.json", "shoes/landing/x.json"])
def test_files_the_landing_job_would_not_read_are_not_uploads(key):
    with pytest.raises(NotAnUpload):
        parse_upload("m1", json.dumps(s3_event(key, datetime.now(timezone.utc))), BUCKET)


@pytest.mark.parametrize("body", ["not json", "[]", json.dumps({"detail": {}}), json.dumps({"source": "aws.s3"})])
def test_malformed_messages_are_not_uploads(body):
    with pytest.raises(NotAnUpload):
        parse_upload("m1", body, BUCKET)


def test_the_execution_name_depends_only_on_the_events():
    time = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    uploads = [parse_upload(f"m{i}", json.dumps(s3_event(key, time)), BUCKET) for i, key in enumerate(STARTER_UPLOAD)]
    assert execution_name(uploads) == execution_name(list(reversed(uploads)))
    assert execution_name(uploads).startswith("upload-20260102T030405Z-")
    assert execution_name(uploads) != execution_name(uploads[1:])


def test_a_run_in_progress_makes_every_batch_wait():
    upload = parse_upload("m1", json.dumps(s3_event(STARTER_UPLOAD[0], datetime.now(timezone.utc))), BUCKET)
    running = PipelineState(running=True, latest_start=datetime.now(timezone.utc) - timedelta(hours=1))
    assert decide([upload], running).action == "wait"


class Trigger:
    """The trigger Lambda against a state machine in moto whose executions stay RUNNING until stopped."""

    def __init__(self, monkeypatch):
        self.sfn = __import__("boto3").client("stepfunctions", region_name=REGION)
        role = "arn:aws:iam::123456789012:role/stedi-test"
        definition = json.dumps({"StartAt": "Run", "States": {"Run": {"Type": "Pass", "End": True}}})
        created = self.sfn.create_state_machine(name="stedi-pipeline", definition=definition, roleArn=role)
        self.arn = created["stateMachineArn"]
        monkeypatch.setenv("STATE_MACHINE_ARN", self.arn)
        self.handler = load_handler("start_run").handler

    def deliver(self, events: list[dict]) -> list[str]:
        """One SQS batch; returns the message ids handed back to the queue."""
        response = self.handler(sqs_batch(events), LambdaContext(function_name="start-run"))
        return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]

    def executions(self) -> list[dict]:
        return self.sfn.list_executions(stateMachineArn=self.arn)["executions"]

    def finish_runs(self) -> None:
        for execution in self.executions():
            if execution["status"] == "RUNNING":
                self.sfn.stop_execution(executionArn=execution["executionArn"])


@pytest.fixture
def trigger(monkeypatch):
    with mock_aws():
        yield Trigger(monkeypatch)


def uploaded(keys, seconds_from_now: float) -> list[dict]:
    time = datetime.now(timezone.utc) + timedelta(seconds=seconds_from_now)
    return [s3_event(key, time) for key in keys]


def test_a_burst_of_uploads_starts_one_run(trigger):
    burst = uploaded(STARTER_UPLOAD, -20)
    assert trigger.deliver(burst) == []
    [execution] = trigger.executions()
    assert execution["status"] == "RUNNING" and execution["name"].startswith("upload-")


def test_a_burst_split_over_batches_still_starts_one_run(trigger):
    burst = uploaded(STARTER_UPLOAD, -20)
    trigger.deliver(burst[:10])
    tail = burst[10:]
    assert trigger.deliver(tail) == [f"m-{event['id']}" for event in tail]  # wait while the run goes on
    trigger.finish_runs()
    assert trigger.deliver(tail) == []  # read by the run that started after they were made
    assert len(trigger.executions()) == 1


def test_uploads_made_mid_run_start_the_next_run_once_it_has_ended(trigger):
    trigger.deliver(uploaded(STARTER_UPLOAD, -20))
    mid_run = uploaded(["customer/landing/customer-4.json", "step_trainer/landing/step_trainer-6.json"], +5)
    handed_back = trigger.deliver(mid_run)
    assert handed_back == [f"m-{event['id']}" for event in mid_run]
    assert len(trigger.executions()) == 1  # never a second run while one is running
    assert trigger.deliver(mid_run) == handed_back  # still running: still waiting
    trigger.finish_runs()
    assert trigger.deliver(mid_run) == []
    executions = trigger.executions()
    assert len(executions) == 2
    assert sum(execution["status"] == "RUNNING" for execution in executions) == 1
    trigger.finish_runs()
    assert trigger.deliver(mid_run) == []  # read by the second run: nothing more starts
    assert len(trigger.executions()) == 2


def test_redelivered_events_never_start_a_second_run(trigger):
    burst = uploaded(STARTER_UPLOAD, -20)
    trigger.deliver(burst)
    assert trigger.deliver(burst) != []  # during the run: handed back
    trigger.finish_runs()
    assert trigger.deliver(burst) == []  # after it: older than its start, dropped
    assert trigger.deliver(burst[:1]) == []
    assert len(trigger.executions()) == 1


def test_starting_an_execution_name_twice_is_not_a_second_run(trigger):
    name = execution_name([parse_upload("m1", json.dumps(s3_event(STARTER_UPLOAD[0], datetime.now(timezone.utc))),
                                        BUCKET)])
    assert start_run(trigger.sfn, trigger.arn, name) is True
    trigger.finish_runs()
    assert start_run(trigger.sfn, trigger.arn, name) is False
    assert len(trigger.executions()) == 1


def test_messages_that_are_not_landing_uploads_are_dropped_without_a_run(trigger):
    now = datetime.now(timezone.utc)
    events = [s3_event("runs/x/part-0.parquet", now), s3_event("customer/landing/x.json", now, bucket="other")]
    assert trigger.deliver(events) == []
    assert trigger.executions() == []
