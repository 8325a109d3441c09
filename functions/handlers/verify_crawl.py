"""After the landing crawl: every column the crawled tables had keeps its type, or the run fails saying which."""

import boto3
from aws_lambda_powertools import Logger, Tracer

from stedi.aws.crawl import verify_crawl
from stedi.aws.settings import Settings

logger = Logger()
tracer = Tracer()
glue = boto3.client("glue")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event, context):
    settings = Settings.from_env()
    before = event.get("before")
    if not isinstance(before, dict):
        raise ValueError("verify_crawl needs `before`: the columns of each crawled table before the crawl")
    result = verify_crawl(glue, settings.crawled_database, before)
    logger.info("crawled", extra={"columns": {table: len(columns) for table, columns in result["columns"].items()}})
    return result
