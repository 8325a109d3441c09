"""Start one pipeline run per burst of landing uploads, never two at once.

S3 "Object Created" events reach an SQS queue through EventBridge; the queue
hands them to the trigger Lambda in batches gathered over a batching window,
several batches at once. For a batch:

- every upload is older than the start of the latest run: that run read them
  (a redelivered event, or the tail of a burst that was split over batches),
  so nothing starts;
- otherwise the trigger takes the run lock (stedi.aws.run_lock) for a run
  named after the batch's events, and starts it. If another run holds the
  lock, the uploads are handed back to the queue (reported as batch item
  failures) and come again after the visibility timeout, so files landing
  mid-run start the next run once this one has ended. The same batch
  delivered twice asks for the same execution name and cannot start a second.

An upload made just after a run started is still read by it: the landing job
lists the files only after the crawls, at least one crawler poll later. From
then on the run reads its snapshot of the landing files and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from stedi.aws.run_lock import TRIGGER_HOLD_SECONDS, RunLockHeld, release, take
from stedi.catalogue import SOURCES

LANDING_KEY = re.compile(r"^(?P<source>" + "|".join(map(re.escape, SOURCES)) + r")/landing/(?P<file>[^/]+)$")


class NotAnUpload(ValueError):
    """The message is not an S3 Object Created event for a landing file of this lake."""


@dataclass(frozen=True)
class Upload:
    message_id: str
    event_id: str
    time: datetime


@dataclass(frozen=True)
class Decision:
    action: str  # start | wait | skip
    reason: str
    execution_name: str | None = None


def parse_upload(message_id: str, body: str, bucket: str) -> Upload:
    """Validate one SQS message body (an EventBridge event) as a landing upload to `bucket`."""
    try:
        event = json.loads(body)
        detail = event["detail"]
        key, bucket_name = detail["object"]["key"], detail["bucket"]["name"]
        source, detail_type, event_id = event["source"], event["detail-type"], event["id"]
        time = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise NotAnUpload(f"message {message_id} is not an S3 event: {error!r}") from error
    if (source, detail_type) != ("aws.s3", "Object Created"):
        raise NotAnUpload(f"message {message_id} is a {source} {detail_type!r} event")
    if bucket_name != bucket:
        raise NotAnUpload(f"message {message_id} is about bucket {bucket_name!r}, not the lake")
    match = LANDING_KEY.match(str(key))
    # Spark skips hidden and _-prefixed files, so they are no reason to run.
    if not match or match["file"].startswith((".", "_")):
        raise NotAnUpload(f"message {message_id}: {key!r} is not a landing file")
    if not isinstance(event_id, str) or time.tzinfo is None:
        raise NotAnUpload(f"message {message_id} has no usable event id or time")
    return Upload(message_id, event_id, time)


def execution_name(uploads: Iterable[Upload]) -> str:
    """The same uploads always give the same name: the newest upload's time and a digest of the event ids."""
    uploads = list(uploads)
    newest = max(upload.time for upload in uploads)
    digest = hashlib.sha256("\n".join(sorted({u.event_id for u in uploads})).encode()).hexdigest()[:16]
    return f"upload-{newest:%Y%m%dT%H%M%SZ}-{digest}"


def decide(uploads: list[Upload], latest_start: datetime | None) -> Decision:
    """Whether a batch of uploads asks for a run, given when the latest run started (whatever its status)."""
    if not uploads:
        return Decision("skip", "no landing upload in the batch")
    new = [upload for upload in uploads if latest_start is None or upload.time > latest_start]
    if not new:
        started = f"{latest_start:%Y-%m-%dT%H:%M:%SZ}"
        return Decision("skip", f"every upload is older than the latest run's start ({started})")
    return Decision("start", f"{len(new)} new upload(s)", execution_name(new))


def latest_start(sfn: Any, state_machine_arn: str) -> datetime | None:
    """When the most recent execution started: executions are listed newest first. A run started a moment
    ago may be missing (ListExecutions is eventually consistent); the run lock, not this, keeps runs apart."""
    latest = sfn.list_executions(stateMachineArn=state_machine_arn, maxResults=1)["executions"]
    return latest[0]["startDate"] if latest else None


def start_run(sfn: Any, state_machine_arn: str, name: str) -> bool:
    """Start the execution; False when that name was already started (a redelivered batch)."""
    try:
        sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input="{}")
    except sfn.exceptions.ExecutionAlreadyExists:
        return False
    return True


def trigger(uploads: list[Upload], sfn: Any, dynamodb: Any, *, state_machine_arn: str, run_lock_table: str
            ) -> Decision:
    """Decide about a batch and carry it out: at most one run starts, and only while no run holds the lock."""
    decision = decide(uploads, latest_start(sfn, state_machine_arn))
    if decision.action != "start":
        return decision
    name = decision.execution_name
    try:
        take(dynamodb, run_lock_table, name, seconds=TRIGGER_HOLD_SECONDS, may_renew=False)
    except RunLockHeld as held:
        running = held.holder.owner if held.holder else "another run"
        return Decision("wait", f"{running} is in progress: the uploads wait for the next run", name)
    started = False
    try:
        started = start_run(sfn, state_machine_arn, name)
    finally:
        if not started:  # started before, or StartExecution failed: free the lock at once
            release(dynamodb, run_lock_table, name)
    if not started:
        return Decision("skip", "this batch's run was started before (a redelivered batch)", name)
    return decision
