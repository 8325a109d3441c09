"""After each Glue job: count the stage's tables and run its checks on Athena.

Failed checks are a result, not an error of this function: it returns the stage's summary (row counts
kept) with `failure`, the execution's Error and Cause in plain text (stedi.aws.outcome.check_failure),
and the state machine ends the run with them. An exception here is a crash of the check itself.

After the landing stage it also says whether the landing crawler has anything to catalogue (`crawl`,
stedi.aws.crawl.plan_crawl), and reports every key outside a schema as the metric UnknownKeys.
"""

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.config import Config

from stedi.aws.athena import AthenaQuery
from stedi.aws.audit import audit_stage, checked_tables, verify_landing_unchanged, verify_staged_tables
from stedi.aws.crawl import plan_crawl
from stedi.aws.outcome import check_failure
from stedi.aws.run_input import run_input_from_state, validate_stage
from stedi.aws.settings import Settings
from stedi.catalogue import STAGE, TYPED

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# Throttled Athena and Glue calls are retried here, with backoff, before the state machine sees an error.
athena = boto3.client("athena", config=Config(retries={"mode": "standard", "max_attempts": 8}))
glue = boto3.client("glue", config=Config(retries={"mode": "standard", "max_attempts": 8}))
s3 = boto3.client("s3")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    settings = Settings.from_env()
    stage = validate_stage(event.get("stage"))
    run = run_input_from_state(event.get("run"), settings)
    logger.append_keys(stage=stage, run_id=run.run_id)
    verify_staged_tables(glue, settings.staging_database, run.staging, checked_tables(stage))
    if STAGE[stage].kind == TYPED:
        verify_landing_unchanged(s3, run.staging)

    def remaining() -> float:
        return context.get_remaining_time_in_millis() / 1000

    # Every query's deadline keeps back a tenth of the invocation's time (at most 20 s) to stop the queries
    # and say so (QueryTimedOut, which the state machine retries) before Lambda ends the invocation.
    query = AthenaQuery(athena, settings.staging_database, settings.athena_workgroup,
                        timeout_seconds=settings.query_timeout_seconds, concurrency=settings.query_concurrency,
                        remaining_seconds=remaining, reserve_seconds=min(20.0, remaining() / 10))
    audit = audit_stage(stage, run, query)
    _record_metrics(audit, (event.get("job") or {}).get("seconds"))
    for result in audit.results:
        logger.info("check", extra={"table": result.table, "check": result.check, "status": result.status,
                                    "expected": result.expected, "actual": result.actual})
    summary = audit.summary()
    failure = check_failure(stage, summary["results"], staging=run.staging, database=settings.staging_database,
                            workgroup=settings.athena_workgroup, consent_scope=run.consent_scope
                            ) if audit.failures else None
    if STAGE[stage].kind != TYPED:
        return {**summary, "failure": failure}
    crawl = ({"needed": False, "reasons": ["the landing checks failed"], "columns": {}} if audit.failures else
             plan_crawl(glue, settings.crawled_database, settings.lake_bucket, audit.drift))
    logger.info("crawl", extra={"needed": crawl["needed"], "reasons": crawl["reasons"]})
    return {**summary, "failure": failure, "crawl": crawl}


def _record_metrics(audit, job_seconds):
    """What the dashboard of template.yaml graphs: per stage its checks and seconds, per table its rows,
    per failed check a failure, per source its keys outside the schema."""
    metrics.add_dimension(name="stage", value=audit.stage)
    for status in ("passed", "failed", "skipped"):
        metrics.add_metric(name=f"Checks{status.capitalize()}", unit=MetricUnit.Count, value=audit.count(status))
    metrics.add_metric(name="CheckSeconds", unit=MetricUnit.Seconds, value=audit.seconds)
    if job_seconds is not None:  # the Glue job run's ExecutionTime, as the state machine passes it on
        metrics.add_metric(name="StageSeconds", unit=MetricUnit.Seconds, value=float(job_seconds))
    for result in audit.failures:
        with single_metric(name="CheckFailures", unit=MetricUnit.Count, value=1,
                           namespace=metrics.namespace) as metric:
            metric.add_dimension(name="check", value=f"{result.table}.{result.check}")
    for table, rows in audit.rows.items():
        with single_metric(name="Rows", unit=MetricUnit.Count, value=rows, namespace=metrics.namespace) as metric:
            metric.add_dimension(name="table", value=table)
    # Schema drift: per source, how many keys its lines carry outside the schema (0 is a figure too).
    for source, keys in audit.drift.items():
        with single_metric(name="UnknownKeys", unit=MetricUnit.Count, value=len(keys),
                           namespace=metrics.namespace) as metric:
            metric.add_dimension(name="source", value=source)
        for key, found in keys.items():
            logger.info("unknown key", extra={"source": source, "key": key, **found})
