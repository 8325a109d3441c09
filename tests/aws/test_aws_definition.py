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
from stedi.catalogue import LANDING_SOURCES, SOURCES, STAGE_LIST

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
            if name not in ("Notify failure", "Notify success"):
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
    path = main_path(definition)
    assert path[-6:] == ["Publish run", "Release run lock", "Record run", "Anyone to tell?", "Notify success",
                         "Published"]
    # The run's work: any error of a step fails the run there. How it ends (the lock, the history, the mail) cannot.
    for name in [name for name in path[:path.index("Release run lock")] if states[name]["Type"] != "Choice"]:
        [catcher] = states[name]["Catch"]
        assert catcher["ErrorEquals"] == ["States.ALL"], name
        assert catcher["ResultPath"] == "$.failure"
        recorder = states[catcher["Next"]]
        assert recorder["Type"] == "Pass" and recorder["ResultPath"] == "$.failed_stage"
        assert recorder["Next"] == "Release run lock after failure"
    for step, after, kept in (("Release run lock", "Record run", "$.release_error"),
                              ("Release run lock after failure", "Record failed run", "$.release_error"),
                              ("Record run", "Anyone to tell?", "$.record_error"),
                              ("Record failed run", "Describe failure", "$.record_error"),
                              ("Notify success", "Published", "$.notify_error"),
                              ("Notify failure", "Run failed", "$.notify_error")):
        assert states[step]["Next"] == after, step
        assert states[step]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": kept, "Next": after}], step
    # Describing the failure failing, the failure as it came is described instead.
    assert states["Describe failure"]["Next"] == "Notify failure"
    assert states["Describe failure"]["Catch"][0]["Next"] == "Describe failure plainly"
    assert states["Describe failure plainly"]["Next"] == "Notify failure"
    assert states["Notify failure"]["Resource"] == "arn:${Partition}:states:::sns:publish"
    top_level_fails = [name for name, state in states.items() if state["Type"] == "Fail"]
    assert top_level_fails == ["Run failed"]
    assert (states["Run failed"]["ErrorPath"], states["Run failed"]["CausePath"]) == ("$.alert.error", "$.alert.cause")
    assert states["Published"] == {"Type": "Succeed", "OutputPath": "$.published.summary"}


def test_one_named_state_per_stage_and_check_and_failed_checks_take_the_failure_path():
    """The console's graph: per stage its job, its checks and the choice on their result."""
    states = load_definition()["States"]
    for stage in STAGE_LIST:
        check = states[f"Check {stage.name}"]
        assert states[f"Run {stage.name} job"]["Next"] == f"Check {stage.name}"
        assert check["Next"] == f"Did {stage.name} pass?"
        assert check["ResultSelector"]["failure.$"] == "$.Payload.failure"
        assert states[f"Did {stage.name} pass?"]["Choices"] == [
            {"Variable": f"$.checks.{stage.name}.checks_failed", "NumericGreaterThan": 0,
             "Next": f"Checks of {stage.name} failed"}]
        assert states[f"Checks of {stage.name} failed"] | {"Comment": None} == {
            "Type": "Pass", "Comment": None, "InputPath": f"$.checks.{stage.name}.failure", "ResultPath": "$.failure",
            "Next": f"Failed at {stage.name}"}


def test_one_crawl_at_most_only_when_the_landing_check_asks_for_it_with_bounded_polling():
    states = load_definition()["States"]
    starts = [name for name, state in states.items() if state.get("Resource") == CRAWLER_START]
    assert starts == ["Start landing crawl"]  # one crawler, one start: at most one crawl a run
    choice = states["Crawl needed?"]
    assert states["Did landing pass?"]["Default"] == "Crawl needed?"
    assert choice["Choices"] == [{"Variable": "$.checks.landing.crawl.needed", "BooleanEquals": True,
                                  "Next": "Prepare landing crawl"}]
    assert choice["Default"] == "Run customer_trusted job"
    assert states["Check landing"]["ResultSelector"]["crawl.$"] == "$.Payload.crawl"
    conditions = str([state for state in states.values() if state["Type"] == "Choice"])
    assert "$.crawl.crawler.Crawler.LastCrawl.Status" in conditions and "NumericGreaterThanEquals" in conditions
    # The crawl's polling: wait, get, done?, count, overdue? and nothing more.
    polling = [name for name in states if "landing crawl" in name.lower() or "landing crawler" in name.lower()]
    assert sorted(polling) == sorted(["Prepare landing crawl", "Start landing crawl", "Wait for landing crawl",
                                      "Get landing crawler", "Is landing crawl done?", "Count landing crawl poll",
                                      "Is landing crawl overdue?", "Verify landing crawl", "Landing crawl failed",
                                      "Landing crawl timed out"])
    for failed, error in (("Landing crawl failed", "CrawlFailed"), ("Landing crawl timed out", "CrawlTimedOut")):
        assert states[failed]["Result"]["Error"] == error and states[failed]["Next"] == "Failed at crawl"
    verify = states["Verify landing crawl"]
    assert verify["Parameters"]["FunctionName"] == "${VerifyCrawlFunctionArn}"
    assert verify["Catch"][0]["Next"] == "Failed at crawl" and verify["Next"] == "Run customer_trusted job"


def test_the_landing_crawler_keeps_the_catalogue_s_tables_and_adds_columns():
    template = load_template()
    [(name, crawler)] = resources_of_type(template, "AWS::Glue::Crawler").items()
    properties = crawler["Properties"]
    [target] = properties["Targets"]["CatalogTargets"]
    assert target == {"DatabaseName": {"Ref": "CrawledDatabase"},
                      "Tables": [source.landing_table for source in LANDING_SOURCES]}
    assert "S3Targets" not in properties["Targets"]
    # A table as target: the crawler deletes nothing (LOG) and updates the table, adding a new key's column;
    # a changed type fails the run after the crawl (Verify landing crawl).
    assert properties["SchemaChangePolicy"] == {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"}
    assert properties["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_EVERYTHING"}
    substitutions = template["Resources"]["Pipeline"]["Properties"]["DefinitionSubstitutions"]
    assert substitutions["LandingCrawler"] == {"Ref": name}
    check = template["Resources"]["CheckStageFunction"]["Properties"]
    assert check["Environment"]["Variables"]["CRAWLED_DATABASE"] == {"Ref": "CrawledDatabase"}
    assert len(target["Tables"]) == len(SOURCES)


def test_the_raw_landing_tables_are_each_run_s_not_the_stack_s():
    """A table over a landing folder reads every file in it when queried, uploads made since the landing job
    listed them included; the landing job registers each run's raw tables over its own snapshot instead."""
    # The stack's one table is the run history, under history/ (test_aws_history.py).
    [(name, table)] = resources_of_type(load_template(), "AWS::Glue::Table").items()
    assert name == "HistoryTable"
    assert table["Properties"]["TableInput"]["StorageDescriptor"]["Location"] == {"Sub": "s3://${LakeBucket}/history/"}
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
