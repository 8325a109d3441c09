"""Last state of a run whose every check passed: repoint the published tables to the run.

Returns the run summary (the manifest entry) and the mail that tells of it (stedi.aws.outcome.success_mail),
sent only where someone subscribed to it.
"""

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from stedi.aws.outcome import console_link, success_mail
from stedi.aws.publish import publish_run
from stedi.aws.run_input import run_input_from_state
from stedi.aws.settings import Settings
from stedi.catalogue import STAGES

logger = Logger()
tracer = Tracer()
metrics = Metrics()
glue = boto3.client("glue")
s3 = boto3.client("s3")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    settings = Settings.from_env()
    run = run_input_from_state(event.get("run"), settings)
    summaries = event.get("checks") or {}
    if set(summaries) != set(STAGES):
        raise ValueError(f"publishing needs the checks of every stage, got {sorted(summaries)}")
    result = publish_run(glue, s3, bucket=settings.lake_bucket, staging_database=settings.staging_database,
                         published_database=settings.published_database, run=run, stage_summaries=summaries,
                         jobs=event.get("jobs") or {})
    logger.info("published", extra={key: value for key, value in result.items() if key != "summary"})
    metrics.add_metric(name="RunsPublished", unit=MetricUnit.Count, value=1)
    return {**result, "mail": success_mail(result["summary"], console_link(str(event["execution_arn"])))}
