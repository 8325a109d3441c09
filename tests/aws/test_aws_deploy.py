"""Deploy on any account: names from the stack's, the partition in every ARN, what a new account refuses,
old versions and stuck uploads looked after, and the checks `make deploy` makes first (stedi.aws.preflight).

That `make deploy` needs no python3.11 on PATH is shown by `sam build` itself, in test_aws_packaging.py.
"""

import re

import boto3
import pytest
from aws_template import REPO, all_states, load_definition, load_template, resources_of_type
from moto import mock_aws

from stedi.aws.preflight import IAM_ONLY, lake_formation_problem, problems, stack_name_problem

# Properties that name a resource, by type: a name shared by two stacks makes the second one fail.
NAME_PROPERTIES = {
    "AWS::Glue::Database": ("DatabaseInput", "Name"), "AWS::Glue::Job": ("Name",), "AWS::Glue::Crawler": ("Name",),
    "AWS::Athena::WorkGroup": ("Name",), "AWS::SNS::Topic": ("TopicName",), "AWS::SQS::Queue": ("QueueName",),
    "AWS::DynamoDB::Table": ("TableName",), "AWS::S3::Bucket": ("BucketName",),
    "AWS::Serverless::Function": ("FunctionName",), "AWS::Serverless::StateMachine": ("Name",),
    "AWS::Serverless::LayerVersion": ("LayerName",), "AWS::CloudWatch::Alarm": ("AlarmName",),
    "AWS::Events::Rule": ("Name",), "AWS::IAM::Role": ("RoleName",),
}


def evaluate(node, stack: str):
    """The value of the few intrinsic functions names are made of, for a stack called `stack`."""
    if isinstance(node, str):
        return node
    [(function, argument)] = node.items()
    if function == "Ref":
        assert argument == "AWS::StackName", f"a name from {argument}, not from the stack's name"
        return stack
    if function == "Join":
        return argument[0].join(evaluate(part, stack) for part in evaluate_list(argument[1], stack))
    if function == "Split":
        return evaluate(argument[1], stack).split(argument[0])
    if function == "Sub":
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {"AWS::StackName": stack, **{key: evaluate(value, stack) for key, value in variables.items()}}
        return re.sub(r"\$\{([\w:]+)\}", lambda match: values[match[1]], text)
    raise AssertionError(f"a name made with {function}")


def evaluate_list(node, stack: str) -> list:
    return node if isinstance(node, list) else evaluate(node, stack)


def given_names(stack: str) -> dict[str, str]:
    names = {}
    for logical_id, resource in load_template()["Resources"].items():
        value = resource.get("Properties", {})
        for key in NAME_PROPERTIES.get(resource["Type"], ("-",)):
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            names[logical_id] = evaluate(value, stack)
    return names


def test_every_name_the_template_gives_derives_from_the_stack_name():
    """Two stacks (dev, prod) deploy side by side in one account and Region: no name is shared."""
    dev, prod = given_names("stedi-dev"), given_names("stedi-prod")
    assert dev.keys() == prod.keys() >= {"PublishedDatabase", "StagingDatabase", "CrawledDatabase", "CheckWorkGroup"}
    assert not set(dev.values()) & set(prod.values())
    assert dev["PublishedDatabase"] == "stedi_dev_published"  # Glue and Athena take no hyphen in a database name


def test_the_alert_topic_says_which_stack_it_speaks_for():
    topic = load_template()["Resources"]["AlertTopic"]["Properties"]
    assert "TopicName" not in topic and "${AWS::StackName}" in topic["DisplayName"]["Sub"]


def test_a_failed_run_is_told_by_the_run_alone_and_a_timed_out_one_by_its_alarm():
    """The state machine sends the one message of a failed run; an action on ExecutionsFailed would send a second.
    A timed-out run runs none of its states, so its alarm is all that tells of it."""
    alarms = resources_of_type(load_template(), "AWS::CloudWatch::Alarm")
    failed = alarms["FailedRunsAlarm"]["Properties"]
    assert (failed["Namespace"], failed["MetricName"]) == ("AWS/States", "ExecutionsFailed")
    assert "AlarmActions" not in failed and failed["ActionsEnabled"] is False
    timed_out = alarms["TimedOutRunsAlarm"]["Properties"]
    assert (timed_out["Namespace"], timed_out["MetricName"]) == ("AWS/States", "ExecutionsTimedOut")
    assert timed_out["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": "Pipeline"}}]
    assert timed_out["AlarmActions"] == [{"Ref": "AlertTopic"}]


def test_the_success_topic_exists_only_where_a_success_email_was_given():
    template = load_template()
    assert template["Parameters"]["SuccessEmail"]["Default"] == ""
    assert template["Conditions"]["HasSuccessEmail"] == {"Not": [{"Equals": [{"Ref": "SuccessEmail"}, ""]}]}
    for name in ("SuccessTopic", "SuccessEmailSubscription", "SuccessTopicPublishPolicy"):
        assert template["Resources"][name]["Condition"] == "HasSuccessEmail", name
    substitutions = template["Resources"]["Pipeline"]["Properties"]["DefinitionSubstitutions"]
    assert substitutions["SuccessTopicArn"] == {"If": ["HasSuccessEmail", {"Ref": "SuccessTopic"}, ""]}
    policy = template["Resources"]["SuccessTopicPublishPolicy"]["Properties"]
    assert policy["Roles"] == [{"Ref": "PipelineRole"}]  # the state machine's role, which SAM makes
    assert policy["PolicyDocument"]["Statement"] == [{"Effect": "Allow", "Action": "sns:Publish",
                                                      "Resource": {"Ref": "SuccessTopic"}}]
    assert "${AWS::StackName}" in template["Resources"]["SuccessTopic"]["Properties"]["DisplayName"]["Sub"]


def test_every_arn_names_the_partition():
    """GovCloud and the China Regions are partitions of their own (arn:aws-us-gov:, arn:aws-cn:)."""
    assert "arn:aws:" not in (REPO / "template.yaml").read_text()
    resources = [state["Resource"] for state in all_states(load_definition()["States"]).values() if "Resource" in state]
    assert resources and all(resource.startswith("arn:${Partition}:states:::") for resource in resources)
    substitutions = load_template()["Resources"]["Pipeline"]["Properties"]["DefinitionSubstitutions"]
    assert substitutions["Partition"] == {"Ref": "AWS::Partition"}


def statements(role: dict) -> list[dict]:
    return [statement for policy in role["Properties"]["Policies"]
            for statement in policy["PolicyDocument"]["Statement"]]


@pytest.mark.parametrize("role", ["GlueJobRole", "CrawlerRole"])
def test_glue_may_ask_where_the_lake_bucket_is(role):
    granted = [statement for statement in statements(load_template()["Resources"][role])
               if "s3:GetBucketLocation" in statement["Action"]]
    assert [statement["Resource"] for statement in granted] == [{"GetAtt": "LakeBucket.Arn"}]


def test_glue_job_starts_are_retried_on_glue_s_own_errors():
    for name, state in all_states(load_definition()["States"]).items():
        if state.get("Resource", "").endswith(":states:::glue:startJobRun.sync"):
            retried = {error for retrier in state["Retry"] for error in retrier["ErrorEquals"]}
            assert {"Glue.AWSGlueException", "Glue.ConcurrentRunsExceededException"} <= retried, name


def test_old_versions_and_delete_markers_are_cleaned_up_after_a_number_of_days_you_choose():
    template = load_template()
    rules = {rule["Id"]: rule for rule in
             template["Resources"]["LakeBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-replaced-versions"]["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": {"Ref": "NoncurrentVersionDays"}}
    # A delete marker with no versions left behind it is removed:
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/ManagingDelMarkers.html
    assert rules["remove-expired-delete-markers"]["ExpiredObjectDeleteMarker"] is True
    assert template["Parameters"]["NoncurrentVersionDays"]["Type"] == "Number"


def test_uploads_stuck_in_the_dead_letter_queue_alert():
    alarm = load_template()["Resources"]["UploadDeadLetterAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"GetAtt": "UploadDeadLetterQueue.QueueName"}}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"] == [{"Ref": "AlertTopic"}]


def test_no_function_reserves_concurrency():
    """Lambda keeps 100 of an account's concurrency unreserved, so reserving any fails on a new account whose
    quota is below 101: https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html"""
    functions = resources_of_type(load_template(), "AWS::Serverless::Function")
    assert "StartRunFunction" in functions
    assert [name for name, function in functions.items() if "ReservedConcurrentExecutions" in function["Properties"]
            ] == []


def test_the_check_function_runs_as_many_queries_at_once_as_the_stack_says():
    template = load_template()
    variables = template["Resources"]["CheckStageFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["QUERY_CONCURRENCY"] == {"Ref": "CheckQueryConcurrency"}
    assert template["Parameters"]["CheckQueryConcurrency"]["Default"] <= 20


# ---------------------------------------------------------------- preflight


@pytest.mark.parametrize("name", ["stedi-lakehouse", "stedi-dev", "s3"])
def test_usable_stack_names(name):
    assert stack_name_problem(name) is None


@pytest.mark.parametrize("name", ["Stedi-Dev", "stedi_dev", "1stedi", "x" * 72, ""])
def test_stack_names_glue_or_athena_would_mangle_are_refused(name):
    assert "stack name" in stack_name_problem(name)


def test_every_name_fits_the_longest_stack_name_preflight_accepts():
    """The state machine's name is at most 80 characters (the longest of the template's limits):
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_StateMachineListItem.html"""
    longest = "s" * 71
    assert stack_name_problem(longest) is None
    assert len(given_names(longest)["Pipeline"]) <= 80


def test_the_record_function_may_read_the_history_of_the_pipeline_s_executions_alone():
    """A stopped or timed-out run's figures come from GetExecutionHistory, whose resource is the execution:
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html"""
    statements = load_template()["Resources"]["RecordRunFunction"]["Properties"]["Policies"][0]["Statement"]
    [history] = [statement for statement in statements if "states:GetExecutionHistory" in statement["Action"]]
    assert history["Action"] == ["states:GetExecutionHistory"]
    execution = history["Resource"]["Sub"].replace("${AWS::StackName}", "stedi-dev")
    pipeline = given_names("stedi-dev")["Pipeline"]
    assert execution == f"arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:execution:{pipeline}:*"


@pytest.fixture
def account(monkeypatch):
    for variable, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(variable, value)
    with mock_aws():
        yield boto3.session.Session()


def test_an_account_whose_lake_formation_keeps_its_initial_settings_is_ready(account):
    assert problems("stedi-dev", account) == []


def test_lake_formation_governing_new_databases_stops_the_deploy_unless_grants_were_made(account):
    lakeformation = account.client("lakeformation")
    settings = lakeformation.get_data_lake_settings()["DataLakeSettings"]
    assert IAM_ONLY in settings["CreateDatabaseDefaultPermissions"]  # as Lake Formation starts out
    lakeformation.put_data_lake_settings(DataLakeSettings={**settings, "CreateDatabaseDefaultPermissions": []})

    problem = lake_formation_problem(lakeformation)

    assert "CreateDatabaseDefaultPermissions" in problem and "--lake-formation-granted" in problem
    assert problems("stedi-dev", account, lake_formation_granted=True) == []


def test_no_region_is_said_plainly(account, monkeypatch):
    for variable in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    [problem] = problems("stedi-dev", boto3.session.Session())
    assert problem.startswith("no AWS Region")

