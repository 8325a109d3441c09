"""The CloudWatch dashboard of template.yaml graphs metrics the pipeline really emits.

A dashboard over a metric nobody emits draws an empty graph and says nothing
is wrong. So the metrics the functions emit are taken from their own output:
the state machine runs in moto (a published run and a run with a failed
check), and every metric the functions wrote in CloudWatch's embedded metric
format is collected. Each of the dashboard's SEARCH expressions must find one
of them: a schema `{Namespace,Dimension,...}` finds only metrics with exactly
those dimensions (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/search-expression-syntax.html).
"""

import json
import re

from aws_fakes import ENVIRONMENT, nothing_found
from aws_template import load_template, resources_of_type

STACK, REGION, STATE_MACHINE = "stedi-dev", "eu-west-1", "arn:aws:states:eu-west-1:111122223333:stateMachine:x"
# The execution metrics Step Functions publishes per state machine (dimension StateMachineArn):
# https://docs.aws.amazon.com/step-functions/latest/dg/procedure-cw-metrics.html
STEP_FUNCTIONS_METRICS = {"ExecutionTime", "ExecutionThrottled", "ExecutionsAborted", "ExecutionsFailed",
                          "ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsTimedOut", "ExecutionsRedriven"}
SEARCH = re.compile(r"SEARCH\('\{(?P<schema>[^}]*)\} MetricName=\"(?P<name>\w+)\" service=\"(?P<service>[^\"]+)\"'")


def dashboard() -> dict:
    [resource] = resources_of_type(load_template(), "AWS::CloudWatch::Dashboard").values()
    body = resource["Properties"]["DashboardBody"]["Sub"]
    for name, value in {"AWS::Region": REGION, "AWS::StackName": STACK, "Pipeline": STATE_MACHINE}.items():
        body = body.replace("${%s}" % name, value)
    assert "${" not in body, "a substitution the test does not know"
    return json.loads(body)


def searched(board: dict) -> list[tuple[str, str, frozenset[str], str]]:
    """(namespace, metric, dimensions, service) of every SEARCH expression of the dashboard."""
    found = []
    for widget in board["widgets"]:
        for metric in widget["properties"]["metrics"]:
            if isinstance(metric[0], dict):
                match = SEARCH.search(metric[0]["expression"])
                assert match, metric[0]["expression"]
                namespace, *dimensions = match["schema"].split(",")
                found.append((namespace, match["name"], frozenset(dimensions), match["service"]))
    return found


def emitted(output: str) -> set[tuple[str, str, frozenset[str]]]:
    """(namespace, metric, dimensions) of every metric the functions printed in the embedded metric format."""
    metrics = set()
    for line in output.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]:
            for dimensions in directive["Dimensions"]:
                for metric in directive["Metrics"]:
                    metrics.add((directive["Namespace"], metric["Name"], frozenset(dimensions)))
    return metrics


def test_every_graph_of_the_dashboard_is_over_a_metric_a_run_emits(stack, capsys):
    stack.run(name="run-published")
    duplicate_emails = "SELECT count(*) - count(DISTINCT email) FROM customer_trusted"
    stack.answer = lambda sql: 3 if sql == duplicate_emails else nothing_found(sql)
    stack.run(name="run-failed")
    metrics = emitted(capsys.readouterr().out)

    board = dashboard()
    searches = searched(board)
    assert {name for _, name, _, _ in searches} == {"CheckFailures", "StageSeconds", "CheckSeconds", "Rows",
                                                    "UnknownKeys"}
    for namespace, name, dimensions, service in searches:
        assert (namespace, name, dimensions) in metrics, (name, sorted(dimensions))
        assert namespace == ENVIRONMENT["POWERTOOLS_METRICS_NAMESPACE"] and service == STACK
    assert ("STEDI", "CheckFailures", frozenset({"check", "service"})) in metrics  # the failed run's check

    graphed = {metric[1] for widget in board["widgets"] for metric in widget["properties"]["metrics"]
               if metric[0] == "AWS/States"}
    assert graphed and graphed <= STEP_FUNCTIONS_METRICS
    assert {"ExecutionsFailed", "ExecutionsSucceeded"} <= graphed


def test_the_functions_name_their_service_and_namespace_as_the_dashboard_searches_them():
    environment = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert environment["POWERTOOLS_SERVICE_NAME"] == {"Ref": "AWS::StackName"}
    assert {namespace for namespace, *_ in searched(dashboard())} == {environment["POWERTOOLS_METRICS_NAMESPACE"]}
