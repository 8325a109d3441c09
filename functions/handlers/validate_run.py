"""First state of a run: validate the execution input into the run's parameters."""

from aws_lambda_powertools import Logger, Tracer

from stedi.aws.run_input import validate_run_input
from stedi.aws.settings import Settings

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event, context):
    run = validate_run_input(event.get("run_id"), event.get("input"), Settings.from_env())
    logger.info("run parameters", extra=run.as_state())
    return run.as_state()
