"""One run at a time, for certain: the run lock (stedi.aws.run_lock) against batches at once, manual starts,
and every way a run ends (that a run holds it from its start and frees it when it succeeds or fails is
asserted by the happy path and the failed job of test_aws_state_machine.py).

Two behaviours of AWS that moto does not have are made so here, as AWS documents them:
- ListExecutions "is eventually consistent. The results are best effort and may not reflect very recent
  updates and changes" (https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html):
  `eventually_consistent_listing` leaves out executions started in the last minute.
- A conditional write is evaluated and applied as one operation: DynamoDB writes the item only if the
  condition holds (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html);
  moto checks and writes in two Python steps, so `atomic_conditional_writes` makes each write one step.
"""

import json
import threading
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from aws_fakes import (
    LOCK_TABLE,
    REGION,
    LambdaContext,
    Trigger,
    load_handler,
    load_handler_in_new_environment,
    s3_event,
    status_change_event,
)
from aws_template import load_template
from moto import mock_aws
from moto.core.utils import utcnow
from moto.dynamodb.models import DynamoDBBackend
from moto.events.models import EventPattern
from moto.stepfunctions.models import StepFunctionBackend

from stedi.aws.run_lock import RUN_LOCK_SECONDS, RunLockHeld, held_by, release, take

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture
def eventually_consistent_listing(monkeypatch):
    listed = StepFunctionBackend.list_executions

    def list_executions(self, *args, **kwargs):
        executions, next_token = listed(self, *args, **kwargs)
        return [execution for execution in executions if execution.start_date < utcnow() - timedelta(minutes=1)], \
            next_token

    monkeypatch.setattr(StepFunctionBackend, "list_executions", list_executions)


@pytest.fixture
def atomic_conditional_writes(monkeypatch):
    one_at_a_time = threading.Lock()
    for name in ("put_item", "delete_item"):
        write = getattr(DynamoDBBackend, name)

        def atomic(self, *args, _write=write, **kwargs):
            with one_at_a_time:
                return _write(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, atomic)


@pytest.fixture
def trigger(monkeypatch, atomic_conditional_writes):
    with mock_aws():
        yield Trigger(monkeypatch)


def dynamodb():
    return boto3.client("dynamodb", region_name=REGION)


def test_many_batches_at_once_start_exactly_one_run(trigger, eventually_consistent_listing, monkeypatch):
    """The queue hands the trigger up to five batches at once, and more as it scales:
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html"""
    started, start = [], StepFunctionBackend.start_execution

    def start_execution(self, state_machine_arn, name, *args, **kwargs):
        started.append(name)
        return start(self, state_machine_arn, name, *args, **kwargs)

    monkeypatch.setattr(StepFunctionBackend, "start_execution", start_execution)
    now = datetime.now(timezone.utc)
    batches = [[s3_event(f"customer/landing/customer-{n}.json", now - timedelta(seconds=n))] for n in range(12)]
    handed_back, ready = [], threading.Barrier(len(batches))

    def deliver(batch, handler):
        ready.wait()
        handed_back.append(trigger.deliver(batch, handler))

    # Batches in flight together are handled in execution environments of their own.
    threads = [threading.Thread(target=deliver, args=(batch, load_handler_in_new_environment("start_run").handler))
               for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    [name] = started
    assert held_by(dynamodb(), LOCK_TABLE).owner == name
    assert sorted(map(len, handed_back)) == [0] + [1] * (len(batches) - 1)  # the others wait for the next run


def test_a_failed_start_execution_frees_the_lock_at_once(trigger, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("StartExecution failed")

    monkeypatch.setattr(StepFunctionBackend, "start_execution", refuse)
    with pytest.raises(RuntimeError):
        trigger.deliver([s3_event("customer/landing/customer-1.json", datetime.now(timezone.utc))])
    assert held_by(dynamodb(), LOCK_TABLE) is None


# ---------------------------------------------------------------- the lock itself


@pytest.fixture
def table():
    with mock_aws():
        from aws_fakes import create_lock_table

        create_lock_table()
        yield dynamodb()


def test_only_the_holder_releases_and_a_run_may_renew_what_its_trigger_took(table):
    take(table, LOCK_TABLE, "upload-1", seconds=600, may_renew=False)
    with pytest.raises(RunLockHeld, match="run upload-1 holds the pipeline since .*: upload-2 did nothing"):
        take(table, LOCK_TABLE, "upload-2", seconds=600, may_renew=True)
    with pytest.raises(RunLockHeld):  # the trigger never renews: a redelivered batch must not start a second run
        take(table, LOCK_TABLE, "upload-1", seconds=600, may_renew=False)
    assert take(table, LOCK_TABLE, "upload-1", seconds=RUN_LOCK_SECONDS, may_renew=True).owner == "upload-1"
    assert release(table, LOCK_TABLE, "upload-2") is False
    assert held_by(table, LOCK_TABLE).owner == "upload-1"
    assert release(table, LOCK_TABLE, "upload-1") is True
    assert held_by(table, LOCK_TABLE) is None


def test_a_stale_lock_is_free_before_dynamodb_deletes_it(table):
    """TTL deletes an expired item within days, not at once:
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html"""
    an_hour_ago = datetime.now(timezone.utc).timestamp() - 3600
    take(table, LOCK_TABLE, "crashed", seconds=60, may_renew=False, clock=lambda: an_hour_ago)
    assert take(table, LOCK_TABLE, "upload-2", seconds=600, may_renew=False).owner == "upload-2"


def test_no_run_outlasts_its_lock():
    from aws_template import load_definition

    assert load_definition()["TimeoutSeconds"] < RUN_LOCK_SECONDS


# ---------------------------------------------------------------- the state machine takes and releases it


def lock_owner() -> str | None:
    holder = held_by(dynamodb(), LOCK_TABLE)
    return holder.owner if holder else None


def test_a_manual_start_while_a_run_holds_the_lock_fails_at_once_naming_that_run(stack):
    take(dynamodb(), LOCK_TABLE, "upload-20260101T000000Z-0123456789abcdef", seconds=600, may_renew=False)

    execution = stack.run(name="manual-1")

    assert execution["status"] == "FAILED"
    assert execution["error"] == "lock: RunLockHeld"
    assert "run upload-20260101T000000Z-0123456789abcdef holds the pipeline" in execution["cause"]
    assert "manual-1 did nothing" in execution["cause"]
    assert lock_owner() == "upload-20260101T000000Z-0123456789abcdef"  # its holder's still
    assert not [event for event in execution["history"] if event.get("taskScheduledEventDetails", {})
                .get("resourceType") == "glue"]


@pytest.mark.parametrize("status", ["ABORTED", "TIMED_OUT"])
def test_a_run_that_never_reaches_its_end_states_is_freed_by_its_status_change_event(trigger, status):
    """A stopped or timed-out execution runs none of its states: the EventBridge rule on its status change
    (template.yaml, ReleaseRunLockFunction) frees the lock."""
    trigger.deliver([s3_event("customer/landing/customer-1.json", datetime.now(timezone.utc))])
    [execution] = trigger.executions()
    trigger.sfn.stop_execution(executionArn=execution["executionArn"])
    event = status_change_event(trigger.sfn.describe_execution(executionArn=execution["executionArn"]), status)
    assert EventPattern.load(run_ended_pattern(trigger.arn)).matches_event(event)
    assert lock_owner() == execution["name"]

    released = load_handler("release_run_lock").handler(event, LambdaContext())

    assert released == {"released": True} and lock_owner() is None


def run_ended_pattern(state_machine_arn: str) -> str:
    events = load_template()["Resources"]["ReleaseRunLockFunction"]["Properties"]["Events"]
    pattern = events["RunEnded"]["Properties"]["Pattern"]
    pattern["detail"]["stateMachineArn"] = [state_machine_arn]  # the template's !Ref Pipeline
    return json.dumps(pattern)


@pytest.mark.parametrize("status", ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"])
def test_the_rule_catches_every_way_an_execution_ends_and_nothing_else(status):
    arn = f"arn:aws:states:{REGION}:123456789012:stateMachine:stedi-pipeline"
    execution = {"executionArn": f"{arn.replace('stateMachine', 'execution')}:run-1", "stateMachineArn": arn,
                 "name": "run-1"}
    pattern = EventPattern.load(run_ended_pattern(arn))
    assert pattern.matches_event(status_change_event(execution, status))
    assert not pattern.matches_event(status_change_event(execution, "RUNNING"))
    other = {**execution, "stateMachineArn": arn + "-other"}
    assert not pattern.matches_event(status_change_event(other, status))
