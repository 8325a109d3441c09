"""At the end of every run, published or not: append its figures to the run history (stedi.aws.history).

The state machine calls it on its way out; EventBridge calls it for an execution stopped or timed out,
which runs none of the state machine's states after that: its figures come from the execution's history.
"""

import functools

import boto3
from aws_lambda_powertools import Logger, Tracer
from botocore.config import Config

from stedi.aws.athena import AthenaQuery
from stedi.aws.history import append_rows, ended_run_rows, execution_events, record_run
from stedi.aws.settings import Settings

logger = Logger()
tracer = Tracer()
athena = boto3.client("athena", config=Config(retries={"mode": "standard", "max_attempts": 8}))
sfn = boto3.client("stepfunctions", config=Config(retries={"mode": "standard", "max_attempts": 8}))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event, context):
    settings = Settings.from_env()
    state = event.get("state")

    def remaining() -> float:
        return context.get_remaining_time_in_millis() / 1000

    # The statement runs in the history table's database, in the checks' workgroup.
    query = AthenaQuery(athena, settings.history_database, settings.athena_workgroup,
                        timeout_seconds=settings.query_timeout_seconds, remaining_seconds=remaining,
                        reserve_seconds=min(10.0, remaining() / 10))
    if "detail-type" in event:  # EventBridge's: an execution stopped or timed out
        recorded = append_rows(query.execute, ended_run_rows(event, settings, functools.partial(execution_events, sfn)))
    else:
        recorded = record_run(query.execute, state if isinstance(state, dict) else {},
                              execution_name=str(event.get("execution_name")),
                              published=event.get("published") is True, settings=settings)
    logger.info("run recorded", extra=recorded)
    return recorded
