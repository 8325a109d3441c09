"""Second state of a run: hold the run lock for the whole run, or fail at once naming the run that holds it."""

import boto3
from aws_lambda_powertools import Logger, Tracer

from stedi.aws.run_input import validate_run_id
from stedi.aws.run_lock import RUN_LOCK_SECONDS, take
from stedi.aws.settings import Settings

logger = Logger()
tracer = Tracer()
dynamodb = boto3.client("dynamodb")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event, context):
    owner = validate_run_id(event.get("owner"))
    # The trigger may have taken it for this very execution: the run renews it.
    holder = take(dynamodb, Settings.from_env().run_lock_table, owner, seconds=RUN_LOCK_SECONDS, may_renew=True)
    logger.info("run lock taken", extra={"owner": holder.owner, "expires_at": holder.expires_at})
    return {"owner": holder.owner, "expires_at": holder.expires_at}
