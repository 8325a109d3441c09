"""EventBridge "Step Functions Execution Status Change" -> free the run lock of an execution that has ended.

The state machine frees the lock in its own end states; an execution that is
stopped or times out runs none of them, and this catches every ending.
"""

import boto3
from aws_lambda_powertools import Logger, Tracer

from stedi.aws.run_lock import ended_execution, release
from stedi.aws.settings import Settings

logger = Logger()
tracer = Tracer()
dynamodb = boto3.client("dynamodb")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event, context):
    settings = Settings.from_env()
    name = ended_execution(event, settings.state_machine_arn)
    if name is None:
        logger.warning("not an ended execution of the pipeline", extra={"event": str(event)[:500]})
        return {"released": False}
    released = release(dynamodb, settings.run_lock_table, name)
    logger.info("run ended", extra={"execution": name, "status": event["detail"]["status"], "released": released})
    return {"released": released}
