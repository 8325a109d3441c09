"""Uploads start runs: the EventBridge rule, then the SQS-fed trigger Lambda (burst, mid-run, redelivery).

The run lock that keeps runs apart is tested in test_aws_run_lock.py.
"""

import json
from datetime import datetime, timedelta, timezone

import pytest
from aws_fakes import BUCKET, Trigger, s3_event
from aws_template import load_template
from moto import mock_aws
from moto.events.models import EventPattern

from stedi.aws.trigger import NotAnUpload, execution_name, parse_upload, start_run
from stedi.catalogue import LANDING_SOURCES, SOURCES

STARTER_UPLOAD = (
    [f"customer/landing/customer-{n}.json" for n in range(1, 4)]
    + [f"accelerometer/landing/accelerometer-{n}.json" for n in range(1, 6)]
    + [f"step_trainer/landing/step_trainer-{n}.json" for n in range(1, 6)]
)  # 13 files


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
    assert trigger.deliver(tail) == []  # made before the run started, so that run reads them
    trigger.finish_runs()
    assert trigger.deliver(tail) == []
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
    assert trigger.deliver(burst) == []  # during the run: older than its start, dropped
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
