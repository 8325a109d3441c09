"""SQS batch of S3 upload events -> at most one pipeline run; uploads made mid-run go back to the queue."""

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from stedi.aws.settings import Settings
from stedi.aws.trigger import NotAnUpload, parse_upload, trigger

logger = Logger()
tracer = Tracer()
metrics = Metrics()
sfn = boto3.client("stepfunctions")
dynamodb = boto3.client("dynamodb")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    settings = Settings.from_env()
    uploads = []
    for record in event.get("Records", []):
        try:
            uploads.append(parse_upload(record["messageId"], record["body"], settings.lake_bucket))
        except NotAnUpload as reason:  # acknowledged and dropped: retrying cannot make it an upload
            logger.warning("ignored message", extra={"reason": str(reason)})
    metrics.add_metric(name="UploadsSeen", unit=MetricUnit.Count, value=len(uploads))
    decision = trigger(uploads, sfn, dynamodb, state_machine_arn=settings.state_machine_arn,
                       run_lock_table=settings.run_lock_table)
    logger.info("trigger decision", extra={"action": decision.action, "reason": decision.reason,
                                           "execution_name": decision.execution_name, "uploads": len(uploads)})
    if decision.action == "wait":
        return {"batchItemFailures": [{"itemIdentifier": upload.message_id} for upload in uploads]}
    metrics.add_metric(name="RunsStarted", unit=MetricUnit.Count, value=int(decision.action == "start"))
    return {"batchItemFailures": []}
