"""The state machine, the template and the Glue scripts agree with stedi.stages and stedi.checks.

The local run takes its stage order from stedi.stages and its checks from
stedi.checks; these tests make the AWS deployment fail to build whenever its
definition drifts from them. That each check step runs exactly the checks of
stedi.checks is shown by executing the definition (test_aws_state_machine).
"""

import re

from aws_template import REPO, all_states, load_definition, load_template, main_path, resources_of_type

from stedi.engines import glue_script
from stedi.stages import SOURCES, STAGE_TABLES, STAGES

CHECK_FUNCTION = "${CheckStageFunctionArn}"
GLUE_SYNC = "arn:aws:states:::glue:startJobRun.sync"


def stage_of_job_placeholder(template: dict) -> dict[str, str]:
    """"${XJob}" -> the stage whose script that Glue job runs."""
    substitutions = template["Resources"]["Pipeline"]["Properties"]["DefinitionSubstitutions"]
    jobs = resources_of_type(template, "AWS::Glue::Job")
    mapping = {}
    for key, value in substitutions.items():
        if isinstance(value, dict) and value.get("Ref") in jobs:
            script = jobs[value["Ref"]]["Properties"]["Command"]["ScriptLocation"]
            mapping["${%s}" % key] = re.fullmatch(r"glue_scripts/(\w+)\.py", script)[1]
    return mapping


def test_the_state_machine_runs_the_stages_in_order_each_job_followed_by_its_checks():
    definition, template = load_definition(), load_template()
    stage_of = stage_of_job_placeholder(template)
    states = definition["States"]
    path = main_path(definition)

    job_steps = [name for name in path if states[name].get("Resource") == GLUE_SYNC]
    assert [stage_of[states[name]["Parameters"]["JobName"]] for name in job_steps] == list(STAGES)
    for name in job_steps:
        stage = stage_of[states[name]["Parameters"]["JobName"]]
        check = states[states[name]["Next"]]
        assert check["Parameters"]["FunctionName"] == CHECK_FUNCTION
        assert check["Parameters"]["Payload"]["stage"] == stage
    check_steps = [name for name in path if states[name].get("Parameters", {}).get("FunctionName") == CHECK_FUNCTION]
    assert len(check_steps) == len(STAGES)
    assert path[:2] == ["Validate input", "Crawl landing zones"]
    assert path[-2:] == ["Publish run", "Published"]


class RecordingSpark:
    def __init__(self):
        self.statements = []

    def sql(self, statement):
        self.statements.append(statement)


def test_every_stage_script_is_a_glue_job_and_registers_the_tables_of_its_stage():
    template = load_template()
    jobs = resources_of_type(template, "AWS::Glue::Job").values()
    scripts = {job["Properties"]["Command"]["ScriptLocation"] for job in jobs}
    assert scripts == {f"glue_scripts/{stage}.py" for stage in STAGES}
    for stage in STAGES:
        script = glue_script(stage)
        assert script.WRITES == STAGE_TABLES[stage]

        fake_spark = RecordingSpark()
        script.register_tables(fake_spark, "stedi_staging", "s3://lake/runs/r1")
        statements = fake_spark.statements
        for table in STAGE_TABLES[stage]:
            assert (f"CREATE TABLE `stedi_staging`.`{table}` USING PARQUET LOCATION 's3://lake/runs/r1/{table}'"
                    in statements)


def test_glue_jobs_are_sized_and_bounded():
    for name, job in resources_of_type(load_template(), "AWS::Glue::Job").items():
        properties = job["Properties"]
        assert properties["GlueVersion"] == "5.0", name
        assert properties["WorkerType"] == "G.1X", name
        assert properties["NumberOfWorkers"] == {"Ref": "GlueWorkers"}
        assert properties["Timeout"] == {"Ref": "GlueJobTimeoutMinutes"}
        assert properties["DefaultArguments"]["--staging_database"] == {"Ref": "StagingDatabase"}
        assert properties["DefaultArguments"]["--enable-glue-datacatalog"] == "true"
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
        if state.get("Resource") == "arn:aws:states:::lambda:invoke":
            assert any("Lambda.TooManyRequestsException" in r["ErrorEquals"] for r in state["Retry"]), name


def test_every_failure_goes_through_the_one_notify_step_to_the_one_fail_state():
    definition = load_definition()
    states = definition["States"]
    for name in main_path(definition)[:-1]:
        [catcher] = states[name]["Catch"]
        assert catcher["ErrorEquals"] == ["States.ALL"], name
        assert catcher["ResultPath"] == "$.failure"
        recorder = states[catcher["Next"]]
        assert recorder["Type"] == "Pass" and recorder["ResultPath"] == "$.failed_stage"
        assert recorder["Next"] == "Describe failure"
    assert states["Describe failure"]["Next"] == "Notify failure"
    assert states["Notify failure"]["Resource"] == "arn:aws:states:::sns:publish"
    assert states["Notify failure"]["Next"] == "Run failed"
    top_level_fails = [name for name, state in states.items() if state["Type"] == "Fail"]
    assert top_level_fails == ["Run failed"]
    assert states["Run failed"]["ErrorPath"] == "$.alert.error"


def test_crawl_polling_is_bounded_and_checks_the_last_crawl_status():
    crawl = load_definition()["States"]["Crawl landing zones"]
    assert len(crawl["Branches"]) == len(SOURCES)
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


def test_raw_landing_tables_of_the_checks_exist_for_every_source():
    tables = resources_of_type(load_template(), "AWS::Glue::Table")
    raw = {table["Properties"]["TableInput"]["Name"]: table["Properties"] for table in tables.values()}
    assert set(raw) == {f"{source}_raw" for source in SOURCES}
    for name, properties in raw.items():
        assert properties["DatabaseName"] == {"Ref": "StagingDatabase"}
        descriptor = properties["TableInput"]["StorageDescriptor"]
        assert descriptor["Columns"] == [{"Name": "line", "Type": "string"}]
        assert descriptor["Location"]["Sub"] == "s3://${LakeBucket}/%s/landing/" % name.removesuffix("_raw")


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
