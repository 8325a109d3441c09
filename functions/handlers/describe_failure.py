"""On a failed run's way out: the execution's Error and Cause in plain text, and its one mail.

Reads the run's state as the state machine has it (stedi.aws.outcome.failure_alert); calls no service.
"""

from aws_lambda_powertools import Logger, Tracer

from stedi.aws.outcome import console_link, failure_alert

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event, context):
    state = event.get("state")
    alert = failure_alert(state if isinstance(state, dict) else {}, execution_name=str(event.get("execution_name")),
                          link=console_link(str(event["execution_arn"])))
    logger.info("run failed", extra={"error": alert["error"]})
    return alert
