"""Properties of the deployment: template.yaml as written, and the state machine it deploys.

The state machine is generated from stedi.catalogue (stedi/aws/state_machine.py),
so its stage order and steps cannot drift from the local run; these tests check
what generation does not guarantee: that the hand-written template matches the
definition and the catalogue, and how failures are retried and routed. What the
definition does when run is shown by executing it (test_aws_state_machine).
"""

import re

from aws_template import REPO, all_states, load_definition, load_template, main_path, resources_of_type

from stedi.aws.audit import checked_tables
from stedi.catalogue import LANDING_SOURCES, SOURCES

GLUE_SYNC = "arn:${Partition}:states:::glue:startJobRun.sync"
CRAWLER_START = "arn:${Partition}:states:::aws-sdk:glue:startCrawler"
LAMBDA_INVOKE = "arn:${Partition}:states:::lambda:invoke"


def substituted_resources(template: dict, placeholders: set[str]) -> set[str]:
    """The template resources that the definition's "${X}" placeholders are substituted by."""
    substitutions = template["Resources"]["Pipeline"]["Properties"]["DefinitionSubstitutions"]
    return {substitutions[placeholder[2:-1]]["Ref"] for placeholder in placeholders}


def test_every_job_step_runs_the_one_glue_job_on_the_generated_script():
    template, states = load_template(), all_states(load_definition()["States"])
    job_names = {state["Parameters"]["JobName"] for state in states.values() if state.get("Resource") == GLUE_SYNC}
    jobs = resources_of_type(template, "AWS::Glue::Job")
    assert substituted_resources(template, job_names) == set(jobs) == {"StageJob"}
    assert jobs["StageJob"]["Properties"]["Command"]["ScriptLocation"] == "glue_scripts/stedi_stage.py"


def glue_permissions(template: dict) -> dict[str, set[str]]:
    """Glue action -> the resources (logical ids) the state machine's role may call it on."""
    allowed = {}
    for policy in template["Resources"]["Pipeline"]["Properties"]["Policies"]:
        for statement in policy.get("Statement", []):
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for action in statement["Action"]:
                if action.startswith("glue:"):
                    allowed[action] = {re.search(r"/\$\{(\w+)\}$", resource["Sub"])[1] for resource in resources}
    return allowed


def test_the_state_machine_may_use_exactly_the_crawlers_and_the_job_it_runs():
    template, states = load_template(), all_states(load_definition()["States"])
    allowed = glue_permissions(template)
    jobs = {state["Parameters"]["JobName"] for state in states.values() if state.get("Resource") == GLUE_SYNC}
    for action in ("glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"):
        assert allowed[action] == substituted_resources(template, jobs), action
    crawlers = {state["Parameters"]["Name"] for state in states.values() if state.get("Resource") == CRAWLER_START}
    for action in ("glue:StartCrawler", "glue:GetCrawler"):
        assert allowed[action] == substituted_resources(template, crawlers), action


def test_glue_jobs_are_sized_and_bounded():
    for name, job in resources_of_type(load_template(), "AWS::Glue::Job").items():
        properties = job["Properties"]
        assert properties["GlueVersion"] == "5.0", name
        assert properties["WorkerType"] == "G.1X", name
        assert properties["NumberOfWorkers"] == {"Ref": "GlueWorkers"}
        assert properties["Timeout"] == {"Ref": "GlueJobTimeoutMinutes"}
        assert properties["DefaultArguments"]["--staging_database"] == {"Ref": "StagingDatabase"}
        assert properties["DefaultArguments"]["--enable-glue-datacatalog"] == "true"
        # A failed job run fails the run at its stage; it is never rerun by Glue itself.
        assert properties["MaxRetries"] == 0, name
        assert properties["ExecutionProperty"] == {"MaxConcurrentRuns": 1}, name
    assert load_template()["Parameters"]["GlueWorkers"]["Default"] == 2


def test_every_definition_placeholder_is_substituted_by_the_template():
    text = (REPO / "statemachine" / "pipeline.asl.json").read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    substitutions = load_template()["Resources"]["Pipeline"]["Properties"]["DefinitionSubstitutions"]
    assert placeholders == set(substitutions)


def test_failed_checks_are_never_retried_and_transient_errors_are():
    states = all_states(load_definition()["States"])
    for name, state in states.items():
        for retrier in state.get("Retry", []):
            if name != "Notify failure":
                assert not {"CheckFailed", "States.ALL", "States.TaskFailed"} & set(retrier["ErrorEquals"]), name
            assert retrier.get("BackoffRate", 1) >= 2 or retrier["MaxAttempts"] <= 1, name
    for name, state in states.items():
        if state.get("Resource") == GLUE_SYNC:
            assert any("Glue.ConcurrentRunsExceededException" in r["ErrorEquals"] for r in state["Retry"]), name
        if state.get("Resource") == LAMBDA_INVOKE:
            assert any("Lambda.TooManyRequestsException" in r["ErrorEquals"] for r in state["Retry"]), name


def test_every_failure_goes_through_the_one_notify_step_to_the_one_fail_state():
    definition = load_definition()
    states = definition["States"]
    # Releasing the run lock is no failure of the run: it ends the run the way it was going to end.
    for name in [name for name in main_path(definition)[:-1] if name != "Release run lock"]:
        [catcher] = states[name]["Catch"]
        assert catcher["ErrorEquals"] == ["States.ALL"], name
        assert catcher["ResultPath"] == "$.failure"
        recorder = states[catcher["Next"]]
        assert recorder["Type"] == "Pass" and recorder["ResultPath"] == "$.failed_stage"
        assert recorder["Next"] == "Release run lock after failure"
    assert main_path(definition)[-2:] == ["Release run lock", "Published"]
    for release, after in (("Release run lock", "Published"), ("Release run lock after failure", "Describe failure")):
        assert states[release]["Next"] == after
        assert states[release]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.release_error",
                                             "Next": after}]
    assert states["Describe failure"]["Next"] == "Notify failure"
    assert states["Notify failure"]["Resource"] == "arn:${Partition}:states:::sns:publish"
    assert states["Notify failure"]["Next"] == "Run failed"
    top_level_fails = [name for name, state in states.items() if state["Type"] == "Fail"]
    assert top_level_fails == ["Run failed"]
    assert states["Run failed"]["ErrorPath"] == "$.alert.error"


def test_crawl_polling_is_bounded_and_checks_the_last_crawl_status():
    crawl = load_definition()["States"]["Crawl landing zones"]
    for branch in crawl["Branches"]:
        states = branch["States"]
        choices = [state for state in states.values() if state["Type"] == "Choice"]
        conditions = str(choices)
        assert "$.crawler.Crawler.LastCrawl.Status" in conditions and "SUCCEEDED" in conditions
        assert "NumericGreaterThanEquals" in conditions
        assert {state.get("Error") for state in states.values() if state["Type"] == "Fail"} == {"CrawlFailed",
                                                                                             "CrawlTimedOut"}


def test_crawlers_name_each_landing_table_and_never_retype_it():
    template = load_template()
    crawlers = resources_of_type(template, "AWS::Glue::Crawler")
    prefixes = set()
    for crawler in crawlers.values():
        properties = crawler["Properties"]
        [target] = properties["Targets"]["S3Targets"]
        source = re.search(r"/(\w+)/landing/$", target["Path"]["Sub"])[1]
        assert properties["TablePrefix"] == f"{source}_"  # + folder "landing" = <source>_landing
        assert properties["SchemaChangePolicy"] == {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
        assert '"TableLevelConfiguration":3' in properties["Configuration"]
        assert properties["DatabaseName"] == {"Ref": "CrawledDatabase"}
        prefixes.add(source)
    assert prefixes == set(SOURCES)


def test_the_raw_landing_tables_are_each_run_s_not_the_stack_s():
    """A table over a landing folder reads every file in it when queried, uploads made since the landing job
    listed them included; the landing job registers each run's raw tables over its own snapshot instead."""
    assert resources_of_type(load_template(), "AWS::Glue::Table") == {}
    assert set(checked_tables("landing")) >= {source.raw_table for source in LANDING_SOURCES}


def test_no_wildcard_resource_where_the_arn_is_known():
    """Only CloudWatch PutMetricData (which has no resource ARN) may name "*"."""
    template = load_template()
    wildcards = []

    def visit(node, where):
        if isinstance(node, dict):
            if node.get("Effect") == "Allow" and node.get("Resource") in ("*", ["*"]):
                wildcards.append((where, node["Action"]))
            for key, value in node.items():
                visit(value, f"{where}.{key}")
        elif isinstance(node, list):
            for item in node:
                visit(item, where)

    visit(template["Resources"], "Resources")
    assert [action for _, action in wildcards] == ["cloudwatch:PutMetricData"]
