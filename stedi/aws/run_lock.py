"""One run at a time, for certain: a DynamoDB item that a run holds from its start to its end.

Listing the running executions cannot guarantee that: ListExecutions "is
eventually consistent" (https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html),
and the upload queue hands the trigger up to five batches at once
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html). A
conditional write can: DynamoDB writes the item only if the condition holds
when it writes, and fails the write otherwise
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html).

- The trigger takes the lock for the execution it is about to start, briefly
  (TRIGGER_HOLD_SECONDS), so that of many batches at once only one starts a run.
- A run's first state takes it for the whole run, or fails the run at once if
  another run holds it: so do manual starts.
- Every way an execution ends releases it: the state machine's own end states
  and, for an execution stopped or timed out, an EventBridge rule on Step
  Functions' execution status changes. Both are best effort, so the item also
  expires: after RUN_LOCK_SECONDS no run can still be going on (the state
  machine's own timeout is shorter), and an expired lock is free to take even
  before DynamoDB's TTL deletes it, which can take days
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html).

Only the holder releases: a release names its owner in the condition.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

LOCK_ATTRIBUTE = "lock"  # the table's key
LOCK_KEY = "pipeline"  # the one item
OWNER_ATTRIBUTE = "owner"  # the execution name of the run holding it
EXPIRES_ATTRIBUTE = "expires_at"  # epoch seconds; the table's TTL attribute
# How long a run may hold the pipeline: the state machine's TimeoutSeconds, so none lasts longer.
RUN_TIMEOUT_SECONDS = 12 * 3600
RUN_LOCK_SECONDS = RUN_TIMEOUT_SECONDS + 600
TRIGGER_HOLD_SECONDS = 600  # from the trigger's StartExecution until the run's first state takes the lock
ENDED_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")  # every way an execution ends


@dataclass(frozen=True)
class Holder:
    owner: str
    since: str
    expires_at: int


class RunLockHeld(Exception):
    """Another run holds the pipeline; the message names it."""

    def __init__(self, holder: Holder | None, owner: str):
        self.holder = holder
        held = f"run {holder.owner} holds the pipeline since {holder.since}" if holder else "another run held the lock"
        super().__init__(f"{held}: {owner} did nothing. Start it again once that run has ended.")


def lock_key() -> dict[str, dict[str, str]]:
    return {LOCK_ATTRIBUTE: {"S": LOCK_KEY}}


def take(dynamodb: Any, table: str, owner: str, *, seconds: int, may_renew: bool,
         clock: Callable[[], float] = time.time) -> Holder:
    """Hold the lock for `owner` for `seconds`; raises RunLockHeld naming the holder if another owner has it.

    `may_renew`: an owner already holding it takes it again (a run's first state after its trigger).
    """
    now = int(clock())
    holder = Holder(owner, datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), now + seconds)
    free = "attribute_not_exists(#lock) OR #expires < :now" + (" OR #owner = :owner" if may_renew else "")
    try:
        dynamodb.put_item(
            TableName=table,
            Item={**lock_key(), OWNER_ATTRIBUTE: {"S": owner}, "since": {"S": holder.since},
                  EXPIRES_ATTRIBUTE: {"N": str(holder.expires_at)}},
            ConditionExpression=free,
            ExpressionAttributeNames={"#lock": LOCK_ATTRIBUTE, "#expires": EXPIRES_ATTRIBUTE,
                                      **({"#owner": OWNER_ATTRIBUTE} if may_renew else {})},
            ExpressionAttributeValues={":now": {"N": str(now)}, **({":owner": {"S": owner}} if may_renew else {})},
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        raise RunLockHeld(held_by(dynamodb, table), owner) from None
    return holder


def held_by(dynamodb: Any, table: str) -> Holder | None:
    item = dynamodb.get_item(TableName=table, Key=lock_key(), ConsistentRead=True).get("Item")
    if not item:
        return None
    return Holder(item[OWNER_ATTRIBUTE]["S"], item["since"]["S"], int(item[EXPIRES_ATTRIBUTE]["N"]))


def release(dynamodb: Any, table: str, owner: str) -> bool:
    """Free the lock if `owner` holds it; False if it does not (released already, or another run's)."""
    try:
        dynamodb.delete_item(TableName=table, Key=lock_key(), ConditionExpression="#owner = :owner",
                             ExpressionAttributeNames={"#owner": OWNER_ATTRIBUTE},
                             ExpressionAttributeValues={":owner": {"S": owner}})
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return False
    return True


def ended_execution(event: Any, state_machine_arn: str) -> str | None:
    """The name of the execution an EventBridge "Step Functions Execution Status Change" event says has
    ended, if it is one of `state_machine_arn`'s; None otherwise. Event shape:
    https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html"""
    if not isinstance(event, dict) or event.get("detail-type") != "Step Functions Execution Status Change":
        return None
    detail = event.get("detail") or {}
    if detail.get("stateMachineArn") != state_machine_arn or detail.get("status") not in ENDED_STATUSES:
        return None
    name = detail.get("name")
    return name if isinstance(name, str) else None
