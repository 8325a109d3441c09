"""An offline AWS for the deployment's tests: moto, the real state machine, the real handlers.

`FakeStack` creates in moto what template.yaml deploys (bucket, Glue
databases, crawlers and jobs, topic, Lambda functions, the state machine
from statemachine/pipeline.asl.json with its substitutions applied) and
patches moto where it falls short of AWS (see the notes on offline testing):

- Lambda invocations run the real handler in-process; an exception becomes a
  function error whose type Step Functions matches, as on AWS.
- A run of the Glue job registers the tables of the stage named by its --stage
  argument in the staging database at the run's --staging prefix, as the
  job's script does with --staging_database.
- Athena answers each query through `answer(sql)`: moto does not run SQL.
  By default every count is 0 and nothing is set aside; a test may answer
  from DuckDB over a local run's staged tables instead. The SQL itself is
  tested on DuckDB and with the Trino parser elsewhere.
- Crawls finish at once and report SUCCEEDED; Wait states and retry
  intervals do not really sleep (the intervals asked for are recorded).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import boto3

REPO = Path(__file__).resolve().parents[2]
HANDLERS = REPO / "functions" / "handlers"
ASL = REPO / "statemachine" / "pipeline.asl.json"
REGION = "us-east-1"
BUCKET = "stedi-lake-test"
STAGING_DB, PUBLISHED_DB, CRAWLED_DB = "stedi_staging", "stedi_published", "stedi_landing_crawled"
STAGE_JOB = "stedi-stage"  # the one Glue job; each run names its stage in --stage
WORKGROUP = "stedi-checks"


ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_SERVICE_NAME": "stedi-pipeline",
    "POWERTOOLS_METRICS_NAMESPACE": "STEDI", "POWERTOOLS_LOG_LEVEL": "WARNING",
    "LAKE_BUCKET": BUCKET, "STAGING_DATABASE": STAGING_DB, "PUBLISHED_DATABASE": PUBLISHED_DB,
    "ATHENA_WORKGROUP": WORKGROUP, "QUERY_TIMEOUT_SECONDS": "30",
}


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def load_handler(name: str):
    """A handler module from functions/handlers/, imported once (its boto3 clients are module-level, as on Lambda)."""
    module_name = f"stedi_handlers_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, HANDLERS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"


def tiny_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "")
    return buffer.getvalue()


@dataclass
class FakeStack:
    """The deployed stack in moto. Tests steer it through the attributes below."""

    answer: Callable[[str], object] = field(default=lambda sql: nothing_found(sql))  # Athena: SQL -> a value or rows
    failing_jobs: set[str] = field(default_factory=set)  # stages whose Glue job run ends FAILED
    busy_job_starts: dict[str, int] = field(default_factory=dict)  # stage -> StartJobRun calls refused as busy
    failing_crawlers: set[str] = field(default_factory=set)  # sources whose crawl ends FAILED
    busy_crawlers: set[str] = field(default_factory=set)  # sources whose crawler is already crawling when asked
    throttled_invocations: dict[str, int] = field(default_factory=dict)  # handler -> invocations Lambda refuses
    queries: list[dict] = field(default_factory=list)  # every Athena query: sql, database, workgroup
    retry_intervals: list[float] = field(default_factory=list)  # seconds each Step Functions retry asked to wait
    functions: dict[str, str] = field(default_factory=dict)  # Lambda function name -> handler module
    crawlers: dict[str, str] = field(default_factory=dict)  # crawler name -> source
    state_machine_arn: str = ""
    topic_arn: str = ""

    def client(self, service: str):
        return boto3.client(service, region_name=REGION)

    def alerts(self) -> list[tuple[str, str]]:
        """(subject, message) of every alert published to the topic."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.sns.models import sns_backends

        topic = sns_backends[DEFAULT_ACCOUNT_ID][REGION].topics[self.topic_arn]
        return [(subject, message) for _, message, subject, _, _ in topic.sent_notifications]

    def run(self, execution_input: dict | None = None, name: str = "run-1", timeout: float = 60) -> dict:
        """Start an execution and wait for it to end; returns describe_execution plus its history."""
        sfn = self.client("stepfunctions")
        arn = sfn.start_execution(stateMachineArn=self.state_machine_arn, name=name,
                                  input=json.dumps(execution_input or {}))["executionArn"]
        deadline = time.monotonic() + timeout
        while True:
            execution = sfn.describe_execution(executionArn=arn)
            if execution["status"] != "RUNNING":
                break
            assert time.monotonic() < deadline, "the execution did not finish"
            time.sleep(0.05)
        execution["history"] = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        return execution


def substituted_definition(substitutions: dict[str, str]) -> str:
    text = ASL.read_text()
    for key, value in substitutions.items():
        text = text.replace("${%s}" % key, value)
    assert "${" not in text, "a substitution of the definition is not provided"
    return text


@functools.lru_cache(maxsize=4)
def _parsed_for_analysis(definition: str):
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    return AmazonStateLanguageParser.parse(definition)


def patch_moto(monkeypatch, stack: FakeStack) -> None:
    from moto.athena.models import AthenaBackend
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.glue.models import FakeCrawler, FakeJob
    from moto.moto_api import state_manager
    from moto.stepfunctions.parser import models as stepfunctions_models
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk,
        state_task_service_glue,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
    from moto.stepfunctions.parser.asl.static_analyser import static_analyser

    def invoke(self, function_name, qualifier, body, headers, response_headers):
        name = function_name.split(":")[-1]
        module = stack.functions[name]
        if stack.throttled_invocations.get(module, 0) > 0:  # the Lambda service, not the function, says no
            stack.throttled_invocations[module] -= 1
            from moto.core.exceptions import JsonRESTError

            throttled = JsonRESTError("TooManyRequestsException", "Rate exceeded")
            throttled.code = 429
            raise throttled
        handler = load_handler(module).handler
        try:
            result = handler(json.loads(body or "{}"), LambdaContext(function_name=name))
        except Exception as error:  # a function error, reported the way Lambda reports it
            response_headers["x-amz-function-error"] = "Unhandled"
            result = {"errorType": type(error).__name__, "errorMessage": str(error)}
        return json.dumps(result).encode()

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
    # Creating a state machine parses the definition to validate it, once more per static analyser (about
    # 0.3 s each); these only read the tree, so one parse per definition serves every test. Each execution
    # still parses its own.
    for validating in (stepfunctions_models, static_analyser):
        monkeypatch.setattr(validating, "AmazonStateLanguageParser", SimpleNamespace(parse=_parsed_for_analysis))
    monkeypatch.setattr(WaitFunction, "_wait_interval", lambda self, env, wait_seconds: None)

    class NoSleep:
        @staticmethod
        def sleep(seconds):
            stack.retry_intervals.append(seconds)

    monkeypatch.setattr(retrier_decl, "time", NoSleep)
    # moto 5.2.5: `glue:startJobRun.sync` calls interrupt_all() on a callback endpoint that only
    # exists when waitForTaskToken is among the supported patterns.
    monkeypatch.setattr(state_task_service_glue, "_SUPPORTED_INTEGRATION_PATTERNS",
                        {ResourceCondition.Sync, ResourceCondition.WaitForTaskToken})
    monkeypatch.setitem(state_task_service_aws_sdk._SERVICE_ERROR_NAMES, "glue", "Glue")

    original_start_job_run = FakeJob.start_job_run

    def start_job_run(self, **kwargs):
        stage = (kwargs["arguments"] or {})["--stage"]
        if stack.busy_job_starts.get(stage, 0) > 0:
            stack.busy_job_starts[stage] -= 1
            from moto.glue.exceptions import ConcurrentRunsExceededException
            raise ConcurrentRunsExceededException(f"Job with name {self.name} already running")
        run_id = original_start_job_run(self, **kwargs)
        job_run = self.job_runs[-1]
        if stage in stack.failing_jobs:
            job_run._transitions = [("STARTING", "RUNNING"), ("RUNNING", "FAILED")]
        else:
            register_staged_tables(stage, job_run.arguments["--staging"])
        return run_id

    monkeypatch.setattr(FakeJob, "start_job_run", start_job_run)

    original_crawler_as_dict = FakeCrawler.as_dict

    def crawler_as_dict(self):
        data = original_crawler_as_dict(self)
        if "LastCrawl" in data:  # moto says COMPLETED where AWS says SUCCEEDED
            data["LastCrawl"]["Status"] = {"COMPLETED": "SUCCEEDED"}.get(data["LastCrawl"]["Status"],
                                                                          data["LastCrawl"]["Status"])
        return data

    monkeypatch.setattr(FakeCrawler, "as_dict", crawler_as_dict)
    original_start_crawler = FakeCrawler.start_crawler

    def start_crawler(self):
        source = stack.crawlers[self.name]
        if source in stack.busy_crawlers:  # someone else's crawl is under way: StartCrawler refuses
            stack.busy_crawlers.discard(source)
            original_start_crawler(self)
            from moto.glue.exceptions import CrawlerRunningException
            raise CrawlerRunningException(f"Crawler with name {self.name} has already started")
        original_start_crawler(self)
        if stack.crawlers[self.name] in stack.failing_crawlers:
            self.crawls[-1]._transitions = [("RUNNING", "FAILED")]

    monkeypatch.setattr(FakeCrawler, "start_crawler", start_crawler)
    state_manager.set_transition("glue::crawl", {"progression": "immediate"})
    state_manager.set_transition("glue::job_run", {"progression": "immediate"})

    original_start_query = AthenaBackend.start_query_execution

    def start_query_execution(self, query, context, config, workgroup, execution_parameters):
        query_id = original_start_query(self, query, context, config, workgroup, execution_parameters)
        stack.queries.append({"sql": query, "database": (context or {}).get("Database"), "workgroup": workgroup})
        self.query_results[query_id] = athena_results(stack.answer(query))
        return query_id

    monkeypatch.setattr(AthenaBackend, "start_query_execution", start_query_execution)


def nothing_found(sql: str):
    """An empty run's answer: every count 0, nothing set aside."""
    from stedi.accounting import set_aside_queries
    from stedi.catalogue import STAGES

    return [] if any(sql in set_aside_queries(stage).values() for stage in STAGES) else 0


def athena_results(answer):
    """Athena's result set for an answer: one value, or a list of row tuples. Values come back as text,
    NULL as a cell without a value, and row 0 is the header."""
    from moto.athena.models import QueryResults

    rows = answer if isinstance(answer, list) else [(answer,)]
    width = len(rows[0]) if rows else 1
    header = {"Data": [{"VarCharValue": f"_col{i}"} for i in range(width)]}
    cells = [{"Data": [{} if value is None else {"VarCharValue": str(value)} for value in row]} for row in rows]
    return QueryResults(rows=[header, *cells], column_info=[{"Name": f"_col{i}"} for i in range(width)])


def register_staged_tables(stage: str, staging_uri: str) -> None:
    """What the Glue job script does for `stage` when given --staging_database."""
    from stedi.catalogue import STAGE

    glue = boto3.client("glue", region_name=REGION)
    for table in STAGE[stage].tables:
        try:
            glue.delete_table(DatabaseName=STAGING_DB, Name=table)
        except glue.exceptions.EntityNotFoundException:
            pass
        glue.create_table(DatabaseName=STAGING_DB, TableInput={
            "Name": table, "TableType": "EXTERNAL_TABLE",
            "StorageDescriptor": {"Columns": [{"Name": "n", "Type": "bigint"}], "Location": f"{staging_uri}/{table}",
                                  "SerdeInfo": {"SerializationLibrary":
                                                "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                                                # Spark records the location here too
                                                "Parameters": {"path": f"{staging_uri}/{table}"}}}})


def create_resources(stack: FakeStack) -> None:
    from stedi.catalogue import SOURCES

    s3, glue, iam = stack.client("s3"), stack.client("glue"), stack.client("iam")
    s3.create_bucket(Bucket=BUCKET)
    for database in (STAGING_DB, PUBLISHED_DB, CRAWLED_DB):
        glue.create_database(DatabaseInput={"Name": database})
    stack.client("athena").create_work_group(Name=WORKGROUP, Configuration={
        "ResultConfiguration": {"OutputLocation": f"s3://{BUCKET}/athena-results/"}})
    role = iam.create_role(RoleName="stedi-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    substitutions = {"LakeBucket": BUCKET}
    for source in SOURCES:
        name = f"stedi-{source}-landing"
        glue.create_crawler(Name=name, Role=role, DatabaseName=CRAWLED_DB, TablePrefix=f"{source}_",
                            Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/{source}/landing/"}]})
        stack.crawlers[name] = source
        substitutions[f"{camel(source)}Crawler"] = name
    glue.create_job(Name=STAGE_JOB, Role=role, Command={"Name": "glueetl", "ScriptLocation": "s3://x/stedi_stage.py"},
                    DefaultArguments={"--staging_database": STAGING_DB}, ExecutionProperty={"MaxConcurrentRuns": 1})
    substitutions["StageJob"] = STAGE_JOB
    awslambda = stack.client("lambda")
    for logical_id, module in {"ValidateRunFunction": "validate_run", "CheckStageFunction": "check_stage",
                               "PublishRunFunction": "publish_run"}.items():
        name = f"stedi-{module}"
        arn = awslambda.create_function(FunctionName=name, Runtime="python3.11", Role=role,
                                        Handler=f"{module}.handler", Code={"ZipFile": tiny_zip()})["FunctionArn"]
        stack.functions[name] = module
        substitutions[f"{logical_id}Arn"] = arn
    stack.topic_arn = stack.client("sns").create_topic(Name="stedi-alerts")["TopicArn"]
    substitutions["AlertTopicArn"] = stack.topic_arn
    stack.state_machine_arn = stack.client("stepfunctions").create_state_machine(
        name="stedi-pipeline", definition=substituted_definition(substitutions), roleArn=role)["stateMachineArn"]
