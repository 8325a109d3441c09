"""An offline AWS for the deployment's tests: moto, the real state machine, the real handlers.

`FakeStack` creates in moto what template.yaml deploys (bucket, Glue
databases, crawlers and jobs, topic, Lambda functions, the state machine
from statemachine/pipeline.asl.json with its substitutions applied) and
patches moto where it falls short of AWS (see the notes on offline testing):

- Lambda invocations run the real handler in-process, with a context whose
  remaining time counts down from the function's timeout; an exception becomes
  a function error whose type Step Functions matches, its Cause the error
  document Lambda's Python runtime writes (message, type, request id, stack
  trace), as on AWS.
- A run of the Glue job runs the deployed script's `main` (glue_scripts/stedi_stage.py)
  with the job's and the run's arguments, as Glue does, with Spark's part
  faked: a stage "writes" its tables by recording how many rows each has
  (landing: the non-blank lines of the files it was given to read, or else of
  every file in the landing folder at that moment), and registering a table
  creates it in the staging database at the run's prefix. Listing the landing
  files, recording the snapshot and registering the raw tables are the
  script's own, against moto.
- Athena answers each query through `answer(sql)`: moto does not run SQL.
  The query of one row in which the check Lambda asks a stage's values
  (stedi.aws.athena.one_row_query) is answered part by part, a column each.
  By default every count is 0 and nothing is set aside; a test may answer
  from DuckDB over a local run's staged tables instead, or with `LakeAthena`
  from what the jobs wrote and the files the raw tables read. The SQL itself
  is tested on DuckDB and with the Trino parser elsewhere. An INSERT INTO
  runs as Athena runs it on a Parquet table: DuckDB executes the statement
  and the rows land as a Parquet file under the table's location in S3
  (`athena_insert`); a query string over Athena's limit is refused.
- SNS refuses what AWS refuses (a message over 256 KiB of UTF-8, a subject
  of 100 characters or more, or with a line break or control character),
  and `alarm_deliveries` says which topics the template's CloudWatch alarms
  would notify, as CloudWatch runs alarm actions.
- The landing folders start with one file each (SEED_UPLOADS), as a deployed
  stack has once data was uploaded.
- The landing crawler crawls its target tables as AWS documents (see
  `crawl_catalog_targets`); a crawl finishes at once and reports SUCCEEDED.
  Wait states and retry intervals do not really sleep (the intervals asked
  for are recorded).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import pickle
import re
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import boto3

REPO = Path(__file__).resolve().parents[2]
HANDLERS = REPO / "functions" / "handlers"
ASL = REPO / "statemachine" / "pipeline.asl.json"
GLUE_SCRIPT = REPO / "glue_scripts" / "stedi_stage.py"
REGION = "us-east-1"
BUCKET = "stedi-lake-test"
STAGING_DB, PUBLISHED_DB, CRAWLED_DB = "stedi_staging", "stedi_published", "stedi_landing_crawled"
RUNS_DB = "stedi_runs"  # the run history's database
STAGE_JOB = "stedi-stage"  # the one Glue job; each run names its stage in --stage
WORKGROUP = "stedi-checks"
LOCK_TABLE = "stedi-run-lock"
SEED_UPLOADS = {"customer/landing/seed.json": '{"email": "a@test.com"}\n',
                "accelerometer/landing/seed.json": '{"user": "a@test.com"}\n',
                "step_trainer/landing/seed.json": '{"serialNumber": "s-1"}\n'}


ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_SERVICE_NAME": "stedi-pipeline",
    "POWERTOOLS_METRICS_NAMESPACE": "STEDI", "POWERTOOLS_LOG_LEVEL": "WARNING",
    "LAKE_BUCKET": BUCKET, "STAGING_DATABASE": STAGING_DB, "PUBLISHED_DATABASE": PUBLISHED_DB,
    "CRAWLED_DATABASE": CRAWLED_DB, "HISTORY_DATABASE": RUNS_DB,
    "ATHENA_WORKGROUP": WORKGROUP, "QUERY_TIMEOUT_SECONDS": "30", "QUERY_CONCURRENCY": "4",
    "RUN_LOCK_TABLE": LOCK_TABLE,
}


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def load_handler(name: str):
    """A handler module from functions/handlers/, imported once (its boto3 clients are module-level, as on Lambda)."""
    module_name = f"stedi_handlers_{name}"
    if module_name not in sys.modules:
        sys.modules[module_name] = _handler_module(module_name, name)
    return sys.modules[module_name]


def _handler_module(module_name: str, name: str):
    """functions/handlers/<name>.py run as a new module called `module_name`."""
    spec = importlib.util.spec_from_file_location(module_name, HANDLERS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_handler_in_new_environment(name: str):
    """A handler module loaded afresh, as in an execution environment of its own.

    Lambda gives each concurrent request an execution environment of its own
    (https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html), so no two invocations in flight
    share module state. Threads of one process do, and powertools' Metrics keeps its metric set in class
    attributes shared by every instance: two threads' invocations would flush each other's metrics. The
    module made here has a metric set of its own."""
    import aws_lambda_powertools

    class EnvironmentMetrics(aws_lambda_powertools.Metrics):
        def __init__(self, *args, **kwargs):
            self._metrics, self._dimensions, self._metadata, self._default_dimensions = {}, {}, {}, {}
            super().__init__(*args, **kwargs)

    shared, aws_lambda_powertools.Metrics = aws_lambda_powertools.Metrics, EnvironmentMetrics
    try:
        return _handler_module(f"stedi_handlers_{name}_{uuid.uuid4().hex}", name)
    finally:
        aws_lambda_powertools.Metrics = shared


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    timeout_seconds: float = 900  # the time Lambda gives the invocation, counted from its start

    def __post_init__(self):
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@functools.cache
def aws_client(service: str):
    """One client per service for the fakes and the tests' own calls: making a boto3 client takes tens of
    milliseconds, and a run of the state machine asks for one at nearly every call. The clients serve
    every test, as the handlers' module-level clients do: a client holds no AWS state (moto answers for
    whichever mock is active), its session is the fakes' own, so nothing a test does to boto3 (patching
    boto3.client to inject failures, say) reaches it, and nothing registers anything on it."""
    return _fakes_session().client(service, region_name=REGION)


@functools.cache
def _fakes_session():
    # Made once moto is imported, so the session's clients call moto whenever a mock is active.
    import moto  # noqa: F401

    return boto3.session.Session()


@functools.lru_cache(maxsize=1)
def glue_script():
    """The deployed Glue job script as a module (its `main` runs only as __main__)."""
    spec = importlib.util.spec_from_file_location("stedi_stage_glue_job", GLUE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


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
    after_jobs: dict[str, Callable[[], None]] = field(default_factory=dict)  # stage -> run once its job has run
    written: dict[str, int] = field(default_factory=dict)  # rows each job run wrote, by table location
    drift_written: dict[str, list[tuple]] = field(default_factory=dict)  # (key, lines, file) by drift table location
    crawl_fails: bool = False  # the landing crawl ends FAILED
    crawler_busy: bool = False  # the landing crawler is already crawling when the run asks it to
    crawls: int = 0  # StartCrawler calls the crawler accepted
    throttled_invocations: dict[str, int] = field(default_factory=dict)  # handler -> invocations Lambda refuses
    queries: list[dict] = field(default_factory=list)  # every Athena query: sql, database, workgroup
    retry_intervals: list[float] = field(default_factory=list)  # seconds each Step Functions retry asked to wait
    functions: dict[str, str] = field(default_factory=dict)  # Lambda function name -> handler module
    crawler: str = ""  # the landing crawler's name
    success_email: bool = False  # the template's SuccessEmail given: the success topic exists
    failing_functions: dict[str, Exception] = field(default_factory=dict)  # handler -> exception it raises
    failing_inserts: bool = False  # Athena fails every INSERT INTO
    state_machine_arn: str = ""
    topic_arn: str = ""
    success_topic_arn: str = ""
    ended: dict[str, threading.Event] = field(default_factory=dict)  # execution ARN -> set once it has ended

    def client(self, service: str):
        return aws_client(service)

    def alerts(self) -> list[tuple[str, str]]:
        """(subject, message) of every alert published to the topic."""
        return sent(self.topic_arn)

    def success_mails(self) -> list[tuple[str, str]]:
        """(subject, message) of every message published to the success topic."""
        return sent(self.success_topic_arn)

    def upload(self, key: str, body: str) -> None:
        self.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body.encode())

    def lock_owner(self) -> str | None:
        """The run holding the run lock, if any."""
        from stedi.aws.run_lock import held_by

        holder = held_by(self.client("dynamodb"), LOCK_TABLE)
        return holder.owner if holder else None

    def run(self, execution_input: dict | None = None, name: str = "run-1", timeout: float = 60) -> dict:
        """Start an execution and wait for it to end (moto's end of it, in-process: no polling); returns
        describe_execution plus its history.

        An execution's error and cause are at most 256 and 32,768 characters (moto does not check):
        https://docs.aws.amazon.com/step-functions/latest/apireference/API_ExecutionFailedEventDetails.html
        """
        sfn = self.client("stepfunctions")
        arn = sfn.start_execution(stateMachineArn=self.state_machine_arn, name=name,
                                  input=json.dumps(execution_input or {}))["executionArn"]
        assert self.ended.setdefault(arn, threading.Event()).wait(timeout), "the execution did not finish"
        execution = sfn.describe_execution(executionArn=arn)
        assert execution["status"] != "RUNNING", execution
        execution["history"] = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        assert len(execution.get("error", "")) <= 256 and len(execution.get("cause", "")) <= 32_768
        return execution


def sent(topic_arn: str) -> list[tuple[str, str]]:
    """(subject, message) of every message published to a topic."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    topic = sns_backends[DEFAULT_ACCOUNT_ID][REGION].topics[topic_arn]
    return [(subject, message) for _, message, subject, _, _ in topic.sent_notifications]


def substituted_definition(substitutions: dict[str, str]) -> str:
    text = ASL.read_text()
    for key, value in substitutions.items():
        text = text.replace("${%s}" % key, value)
    assert "${" not in text, "a substitution of the definition is not provided"
    return text


@functools.lru_cache(maxsize=4)
def _parsed(definition: str):
    """moto's parse of a definition: (the program, its ANTLR tree). Only ever read or copied."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    return AmazonStateLanguageParser.parse(definition)


@functools.lru_cache(maxsize=4)
def _pickled_program(definition: str) -> bytes:
    return pickle.dumps(_parsed(definition)[0])


def _parsed_for_execution(definition: str):
    """A program of its own for each execution, as if parsed afresh: a copy of the one parse (unpickled, a
    fraction of the time a deep copy takes), so no execution sees what another's evaluation left in it."""
    return pickle.loads(_pickled_program(definition)), _parsed(definition)[1]


@functools.cache
def _json_path(path: str):
    from jsonpath_ng.ext import parse

    return parse(path)


@functools.cache
def _result_path(path: str):
    from jsonpath_ng import parse

    return parse(path)


def speed_up_moto(monkeypatch) -> None:
    """moto recomputes, at every request, what never changes while the tests run: the handler methods of
    each response class (by inspecting the class) and each backend's URL patterns. Both are kept once
    worked out; what moto answers is the same."""
    from moto.core import base_backend, responses
    from moto.settings import enable_iso_regions

    monkeypatch.setattr(responses, "method_names_from_class", _method_names_from_class)
    urls = base_backend.BaseBackend.urls.fget

    def cached_urls(self):
        key = (type(self), enable_iso_regions())  # a backend's URL patterns come from its class's urls module
        if key not in _backend_urls:
            _backend_urls[key] = urls(self)
        return _backend_urls[key]

    monkeypatch.setattr(base_backend.BaseBackend, "urls", property(cached_urls))


_backend_urls: dict = {}


@functools.cache
def _method_names_from_class(clazz) -> list[str]:
    from moto.core.utils import method_names_from_class

    return method_names_from_class(clazz)


@functools.cache
def _execution_client(make_boto_client, boto3_client, region: str, service: str):
    return make_boto_client(region=region, service=service)


def patch_moto(monkeypatch, stack: FakeStack) -> None:
    from moto.athena.models import AthenaBackend
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.glue.models import FakeCrawler, FakeJob, FakeJobRun
    from moto.moto_api import state_manager
    from moto.stepfunctions.parser import models as stepfunctions_models
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk,
        state_task_service_glue,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
    from moto.stepfunctions.parser.asl.static_analyser import static_analyser
    from moto.stepfunctions.parser.asl.utils import json_path
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for as make_boto_client
    from moto.stepfunctions.parser.backend import execution_worker
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

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
        context = LambdaContext(function_name=name, aws_request_id=str(uuid.uuid4()))
        try:
            if module in stack.failing_functions:
                raise stack.failing_functions[module]
            result = handler(json.loads(body or "{}"), context)
        except Exception as error:
            # A function error, as Lambda's Python runtime reports it: the error document, whose JSON Step
            # Functions gives as the Cause. https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html
            response_headers["x-amz-function-error"] = "Unhandled"
            result = {"errorMessage": str(error), "errorType": type(error).__name__,
                      "requestId": context.aws_request_id, "stackTrace": traceback.format_tb(error.__traceback__)}
        return json.dumps(result).encode()

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
    # Creating a state machine parses the definition to validate it, once more per static analyser, and each
    # execution parses it again to evaluate it (about 0.3 s each). The validators only read the tree, so one
    # parse per definition serves every test; an execution gets its own copy of the parsed program.
    for validating in (stepfunctions_models, static_analyser):
        monkeypatch.setattr(validating, "AmazonStateLanguageParser", SimpleNamespace(parse=_parsed))
    monkeypatch.setattr(execution_worker, "AmazonStateLanguageParser", SimpleNamespace(parse=_parsed_for_execution))

    # Each Task state of an execution makes a new boto3 client for its service (tens of milliseconds each);
    # moto makes them all alike (dummy keys, no retries, whatever the state's credentials), so executions
    # share one per service and Region.
    def boto_client_for(region, service, state_credentials=None):
        # moto makes them with boto3.client: one a test patched (to inject failures, say) makes clients of its own.
        return _execution_client(make_boto_client, boto3.client, region, service)

    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.parser.") and getattr(module, "boto_client_for", None) is \
                make_boto_client:
            monkeypatch.setattr(module, "boto_client_for", boto_client_for)
    # GetExecutionHistory as AWS pages it (moto gives every event at once, and no other order): oldest event
    # first (newest with reverseOrder), at most maxResults a page (default 100, at most 1000), then a nextToken.
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def get_execution_history(self):
        events = list(self.stepfunction_backend.get_execution_history(self._get_param("executionArn"))["events"])
        if self._get_param("reverseOrder"):
            events.reverse()
        size = self._get_param("maxResults") or 100
        assert size <= 1000, "GetExecutionHistory refuses a maxResults over 1000"
        start = int(self._get_param("nextToken") or 0)
        page = {"events": events[start:start + size]}
        if start + size < len(events):
            page["nextToken"] = str(start + size)
        return ActionResult(page)

    monkeypatch.setattr(StepFunctionResponse, "get_execution_history", get_execution_history)
    # FakeStack.run waits for this: an execution's status is final once moto reflects its end.
    original_terminated = BaseExecutionWorkerCommunication.terminated

    def terminated(self):
        try:
            original_terminated(self)
        finally:
            stack.ended.setdefault(self.execution.exec_arn, threading.Event()).set()

    monkeypatch.setattr(BaseExecutionWorkerCommunication, "terminated", terminated)
    # Every JSONPath a state evaluates (InputPath, Parameters, ResultSelector, ...) is parsed anew, and each
    # parse builds jsonpath_ng's parser from its grammar first. A parsed path is a pure expression (finding
    # and updating change only the data), so one parse per path serves every evaluation.
    monkeypatch.setattr(json_path, "parse", _json_path)
    monkeypatch.setattr(result_path, "parse", _result_path)
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

    patch_glue_script(monkeypatch, stack)
    original_start_job_run = FakeJob.start_job_run

    def start_job_run(self, **kwargs):
        stage = (kwargs["arguments"] or {})["--stage"]
        if stack.busy_job_starts.get(stage, 0) > 0:
            stack.busy_job_starts[stage] -= 1
            from moto.glue.exceptions import ConcurrentRunsExceededException
            raise ConcurrentRunsExceededException(f"Job with name {self.name} already running")
        run_id = original_start_job_run(self, **kwargs)
        job_run = self.job_runs[-1]
        # Glue passes the job's default arguments, then the run's, and some of its own.
        arguments = {"--JOB_ID": "j_1", "--JOB_RUN_ID": run_id, **self.default_arguments, **job_run.arguments}
        try:
            if stage in stack.failing_jobs:
                raise RuntimeError(f"stage {stage} fails, as the test asked")
            glue_script().main(glue_script().JOBS, glue_script().CONSENT_SCOPES,
                               [item for pair in arguments.items() for item in pair])
        except Exception as error:  # the script raised: Glue ends the job run FAILED, saying why
            job_run._transitions = [("STARTING", "RUNNING"), ("RUNNING", "FAILED")]
            job_run.error_message = f"{type(error).__name__}: {error}"
            return run_id
        if stage in stack.after_jobs:
            stack.after_jobs[stage]()
        return run_id

    monkeypatch.setattr(FakeJob, "start_job_run", start_job_run)
    original_job_run_as_dict = FakeJobRun.as_dict

    def job_run_as_dict(self):  # a failed job run says why (JobRun.ErrorMessage), which moto leaves out
        data = original_job_run_as_dict(self)
        if getattr(self, "error_message", None) and data.get("JobRunState") == "FAILED":
            data["ErrorMessage"] = self.error_message
        return data

    monkeypatch.setattr(FakeJobRun, "as_dict", job_run_as_dict)

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
        if stack.crawler_busy:  # someone else's crawl is under way: StartCrawler refuses
            stack.crawler_busy = False
            original_start_crawler(self)
            crawl_catalog_targets(self)
            from moto.glue.exceptions import CrawlerRunningException
            raise CrawlerRunningException(f"Crawler with name {self.name} has already started")
        original_start_crawler(self)
        stack.crawls += 1
        if stack.crawl_fails:
            self.crawls[-1]._transitions = [("RUNNING", "FAILED")]
        else:
            crawl_catalog_targets(self)

    monkeypatch.setattr(FakeCrawler, "start_crawler", start_crawler)
    state_manager.set_transition("glue::crawl", {"progression": "immediate"})
    state_manager.set_transition("glue::job_run", {"progression": "immediate"})

    original_start_query = AthenaBackend.start_query_execution

    def start_query_execution(self, query, context, config, workgroup, execution_parameters):
        if len(query.encode()) > MAX_QUERY_BYTES:
            from moto.athena.exceptions import AthenaClientError

            raise AthenaClientError("InvalidRequestException", "'queryString' failed to satisfy constraint: "
                                    f"Member must have length less than or equal to {MAX_QUERY_BYTES}")
        query_id = original_start_query(self, query, context, config, workgroup, execution_parameters)
        database = (context or {}).get("Database")
        stack.queries.append({"sql": query, "database": database, "workgroup": workgroup})
        if query.startswith("INSERT INTO"):
            if stack.failing_inserts:
                self.executions[query_id]._transitions = [("QUEUED", "FAILED")]
            else:
                athena_insert(query, database, query_id)
            self.query_results[query_id] = athena_results([])
        else:
            self.query_results[query_id] = answered(stack.answer, query)
        return query_id

    monkeypatch.setattr(AthenaBackend, "start_query_execution", start_query_execution)
    patch_sns(monkeypatch)


def patch_glue_script(monkeypatch, stack: FakeStack) -> None:
    """Spark's part of the Glue script: writing a stage's tables, and registering them."""
    import pyspark.sql

    script = glue_script()

    class Session:  # main's `SparkSession.builder.getOrCreate()`
        builder = SimpleNamespace(getOrCreate=lambda: SimpleNamespace())

    def run_stage(spark, job, *, lake, staging, consent_scope, landing_files=None):
        for statement in job.statements:
            if statement.raw_view:  # as Spark reads: the files given, or else the folder as it is now
                files = (landing_files or {}).get(statement.landing) or [
                    f"{lake}/{key}" for key in list_keys(f"{lake}/{statement.landing}/")]
                stack.written[f"{staging}/{statement.writes}"] = sum(non_blank_lines(read(f)) for f in files)
                stack.written[f"{staging}/{statement.sets_aside}"] = 0
                stack.drift_written[f"{staging}/{statement.drift}"] = unknown_keys(
                    {path: read(path) for path in files}, statement.columns)

    monkeypatch.setattr(pyspark.sql, "SparkSession", Session)
    monkeypatch.setattr(script, "run_stage", run_stage)
    monkeypatch.setattr(script, "register_tables", lambda spark, database, staging, tables:
                        register_tables(database, staging, tables))


# Athena takes a query string of at most 262,144 bytes:
# https://repost.aws/knowledge-center/athena-query-string-length
MAX_QUERY_BYTES = 262_144
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
DUCKDB_TYPES = {"string": "VARCHAR", "double": "DOUBLE", "bigint": "BIGINT"}


def athena_insert(sql: str, database: str, query_id: str) -> None:
    """Athena's INSERT INTO on a Hive table in the Glue Data Catalog: the rows are appended as new files
    under the table's location, in the table's format, here Parquet, with GZIP, Athena's default
    compression for Parquet (https://docs.aws.amazon.com/athena/latest/ug/insert-into.html,
    https://docs.aws.amazon.com/athena/latest/ug/compression-formats.html). DuckDB runs the statement
    as it was sent, into a table of the catalog table's columns."""
    import duckdb

    name = re.match(r"INSERT INTO (\w+)", sql)[1]
    table = aws_client("glue").get_table(DatabaseName=database, Name=name)["Table"]
    descriptor = table["StorageDescriptor"]
    assert descriptor["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE, "this fake writes Parquet only"
    con = duckdb.connect()
    columns = ", ".join(f'"{column["Name"]}" {DUCKDB_TYPES[column["Type"]]}' for column in descriptor["Columns"])
    con.execute(f"CREATE TABLE {name} ({columns})")
    con.execute(sql)
    with tempfile.TemporaryDirectory() as scratch:
        path = f"{scratch}/rows.parquet"
        con.execute(f"COPY {name} TO '{path}' (FORMAT PARQUET, COMPRESSION GZIP)")
        bucket, prefix = descriptor["Location"].removeprefix("s3://").split("/", 1)
        key = f"{prefix.rstrip('/')}/{query_id}_{uuid.uuid4().hex}"
        aws_client("s3").put_object(Bucket=bucket, Key=key, Body=Path(path).read_bytes())
    con.close()


def read_parquet_table(location: str) -> list[dict]:
    """Every row of the Parquet files under an S3 location, as Athena reads a table stored there."""
    import duckdb

    keys = list_keys(location.rstrip("/") + "/")
    if not keys:
        return []
    bucket = location.removeprefix("s3://").split("/", 1)[0]
    s3 = aws_client("s3")
    with tempfile.TemporaryDirectory() as scratch:
        paths = []
        for number, key in enumerate(keys):
            paths.append(f"{scratch}/{number}.parquet")
            Path(paths[-1]).write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        con = duckdb.connect()
        result = con.execute(f"SELECT * FROM read_parquet({paths!r})")
        columns = [d[0] for d in result.description]
        rows = [dict(zip(columns, values, strict=True)) for values in result.fetchall()]
        con.close()
    return rows


def patch_sns(monkeypatch) -> None:
    """SNS refuses a message over 256 KiB of UTF-8 (262,144 bytes, not characters; moto counts characters)
    and a subject of 100 characters or more, or with a line break or control character:
    https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/sns/aws.sdk.kotlin.services.sns.model/-publish-request/message.html
    https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/sns/aws.sdk.kotlin.services.sns.model/-publish-request/subject.html"""
    from moto.sns.exceptions import InvalidParameterValue
    from moto.sns.models import SNSBackend

    original = SNSBackend.publish

    def publish(self, message, arn, phone_number=None, subject=None, *args, **kwargs):
        if len(message.encode()) > 262_144:
            raise InvalidParameterValue("Invalid parameter: Message too long")
        if subject is not None and (len(subject) >= 100 or not subject.isprintable()):
            raise InvalidParameterValue("Invalid parameter: Subject")
        return original(self, message, arn, phone_number, subject, *args, **kwargs)

    monkeypatch.setattr(SNSBackend, "publish", publish)


def alarm_deliveries(namespace: str, metric: str, value: float) -> list[str]:
    """The topics (logical ids) that the template's alarms on `metric` notify when it reaches `value` in
    a period. An alarm whose statistic crosses its threshold goes to ALARM and, on that transition, runs
    its AlarmActions, unless ActionsEnabled is false (the default is true):
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-actions.html
    https://boto3.amazonaws.com/v1/documentation/api/latest/reference/services/cloudwatch/alarm/actions_enabled.html
    """
    from aws_template import load_template, resources_of_type

    crossed = {"GreaterThanOrEqualToThreshold": lambda v, t: v >= t, "GreaterThanThreshold": lambda v, t: v > t,
               "LessThanThreshold": lambda v, t: v < t, "LessThanOrEqualToThreshold": lambda v, t: v <= t}
    topics = []
    for alarm in resources_of_type(load_template(), "AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        if (properties["Namespace"], properties["MetricName"]) != (namespace, metric):
            continue
        if crossed[properties["ComparisonOperator"]](value, properties["Threshold"]) and \
                properties.get("ActionsEnabled", True):
            topics += [action["Ref"] for action in properties.get("AlarmActions", [])]
    return topics


def list_keys(uri: str) -> list[str]:
    bucket, prefix = uri.removeprefix("s3://").split("/", 1)
    pages = aws_client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                                            Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def read(uri: str) -> str:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return aws_client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def json_lines(text: str) -> list[dict]:
    """The lines of a landing file that are JSON objects (the landing job's other lines carry no keys)."""
    found = []
    for line in re.split(r"\r\n|\r|\n", text):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def unknown_keys(files: dict[str, str], schema: tuple[str, ...]) -> list[tuple]:
    """What the landing job's drift statement writes for these files: (key, lines, example_file) per key
    outside the schema, the example being the first file by name (as `landing/<name>`)."""
    found: dict[str, list] = {}
    for path in sorted(files):
        for record in json_lines(files[path]):
            for key in record.keys() - set(schema):
                entry = found.setdefault(key, [0, path.split("/", 3)[-1]])
                entry[0] += 1
    return [(key, lines, example) for key, (lines, example) in sorted(found.items())]


def glue_type(value) -> str:
    """The type a crawler gives a JSON value (booleans first: in Python they are ints)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int" if -2**31 <= value < 2**31 else "bigint"
    if isinstance(value, float):
        return "double"
    if isinstance(value, dict):
        return "struct<" + ",".join(f"{key.lower()}:{glue_type(item)}" for key, item in value.items()) + ">"
    if isinstance(value, list):
        return f"array<{glue_type(value[0]) if value else 'string'}>"
    return "string"


def crawled_schema(texts: list[str]) -> dict[str, str]:
    """Columns a crawl of these JSON-lines files infers: every key of every object, in the order first met,
    lower-cased as the catalog keeps names
    (https://docs.aws.amazon.com/athena/latest/ug/tables-databases-columns-names.html); a key met with
    values of different types gets the type that holds them all (int < bigint < double, else string).
    A simplification of the crawler's JSON classifier, enough for the crawl decisions under test."""
    widening = ["int", "bigint", "double"]
    columns: dict[str, str] = {}
    for text in texts:
        for record in json_lines(text):
            for key, value in record.items():
                if value is None:
                    continue
                kind, name = glue_type(value), key.lower()
                known = columns.get(name, kind)
                if known != kind:
                    kind = (max(known, kind, key=widening.index) if {known, kind} <= set(widening) else "string")
                columns[name] = kind
    return columns


def crawl_catalog_targets(crawler) -> None:
    """One crawl of a crawler whose targets are catalog tables, as AWS documents it: it reads the data each
    table's location holds, creates no table and deletes none (DeleteBehavior LOG), and with UpdateBehavior
    UPDATE_IN_DATABASE adds new columns, removes missing ones and changes the definitions of existing ones;
    with LOG it changes nothing
    (https://docs.aws.amazon.com/glue/latest/dg/define-crawler.html#crawler-source-type,
    https://docs.aws.amazon.com/glue/latest/dg/crawler-configuration.html)."""
    glue = aws_client("glue")
    for target in crawler.targets.get("CatalogTargets", []):
        for name in target["Tables"]:
            try:
                table = glue.get_table(DatabaseName=target["DatabaseName"], Name=name)["Table"]
            except glue.exceptions.EntityNotFoundException:
                continue  # "No new catalog tables are created when the crawler runs."
            if crawler.schema_change_policy.get("UpdateBehavior") != "UPDATE_IN_DATABASE":
                continue
            descriptor = table["StorageDescriptor"]
            location = descriptor["Location"]
            texts = [read(f"{location.rstrip('/')}/{key.rsplit('/', 1)[-1]}") for key in list_keys(location)]
            descriptor["Columns"] = [{"Name": column, "Type": kind} for column, kind in crawled_schema(texts).items()]
            glue.update_table(DatabaseName=target["DatabaseName"], TableInput={
                key: value for key, value in table.items()
                if key in ("Name", "Description", "TableType", "Parameters", "StorageDescriptor")})


def non_blank_lines(text: str) -> int:
    """Lines as Hadoop's text reader splits them, less the blank ones (the landing checks' count)."""
    from stedi.catalogue import BLANK_CHARACTERS

    return sum(bool(line.strip("".join(BLANK_CHARACTERS))) for line in re.split(r"\r\n|\r|\n", text))


class LakeAthena:
    """Athena's answers over what the fake jobs wrote and the files the raw tables read.

    A row count is what the job wrote at the table's location; a raw table's count of lines is the
    non-blank lines of the files its symlink manifests list, as Athena reads a table stored as
    SymlinkTextInputFormat (the S3 inventory's CSV table is one, queried by Athena:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/storage-inventory-athena-query.html; its
    symlink.txt is "the Apache Hive-compatible manifest file":
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/storage-inventory-location.html).
    The fake jobs after landing write nothing, so each filtering stage has set every record aside.
    Every other query is answered as `nothing_found`.
    """

    def __init__(self, stack: FakeStack):
        from stedi.catalogue import SOURCE, STAGE, TABLES
        from stedi.checks import CHECKS

        self.stack = stack
        from stedi.accounting import drift_query

        self.answers: dict[str, Callable[[], object]] = {
            f"SELECT count(*) FROM {table}": functools.partial(self.rows, table) for table in TABLES}
        self.answers[drift_query("landing")] = self.drift
        for check in (check for checks in CHECKS.values() for check in checks):
            if check.name == "all_lines_accounted":
                source = SOURCE[check.table.removesuffix("_landing")]
                self.answers[check.render(check.sql, "reading")] = functools.partial(self.lines, source.raw_table)
                self.answers[check.render(check.expect.sql, "reading")] = functools.partial(
                    lambda source: self.rows(source.landing_table) + self.rows(source.rejected_table), source)
            if check.name == "records_accounted":
                self.answers[check.render(check.expect.sql, "reading")] = functools.partial(
                    self.rows, STAGE[check.stage].records_from)

    def __call__(self, sql: str):
        return self.answers[sql]() if sql in self.answers else nothing_found(sql)

    def table(self, name: str) -> dict:
        return aws_client("glue").get_table(DatabaseName=STAGING_DB, Name=name)["Table"]

    def rows(self, table: str) -> int:
        return self.stack.written.get(self.table(table)["StorageDescriptor"]["Location"], 0)

    def drift(self) -> list[tuple]:
        """(source, key, lines, example_file) of what the fake landing job wrote in each drift table."""
        from stedi.catalogue import LANDING_SOURCES

        return [(source.name, *found) for source in LANDING_SOURCES
                for found in self.stack.drift_written.get(self.table(source.drift_table)["StorageDescriptor"]
                                                          ["Location"], [])]

    def lines(self, raw_table: str) -> int:
        descriptor = self.table(raw_table)["StorageDescriptor"]
        assert descriptor["InputFormat"] == "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat", descriptor
        manifests = [read(f"s3://{BUCKET}/{key}") for key in list_keys(descriptor["Location"].rstrip("/") + "/")]
        return sum(non_blank_lines(read(path)) for manifest in manifests for path in manifest.split())


def nothing_found(sql: str):
    """An empty run's answer: every count 0, nothing set aside, no key outside a schema."""
    return [] if sql in _row_queries() else 0


def answer_from_duckdb(con, sql: str):
    """Athena's answer as DuckDB gives it over `con`: a value query's value, a rows query's rows. A cursor
    per query: the check Lambda runs them at once."""
    rows = con.cursor().execute(sql).fetchall()
    return rows if sql in _row_queries() else rows[0][0]


@functools.cache
def _row_queries() -> frozenset[str]:
    """The queries whose answer is rows rather than a value: each stage's drift and set-aside queries."""
    from stedi.accounting import drift_query, set_aside_queries
    from stedi.catalogue import STAGES

    rows = {drift_query(stage) for stage in STAGES}
    rows |= {sql for stage in STAGES for sql in set_aside_queries(stage).values()}
    return frozenset(rows)


# A query of one row made of several (stedi.aws.athena.one_row_query): each part, one line, is a query of its own.
ONE_ROW_QUERY = re.compile(r"\ASELECT\n  \((?P<parts>.*)\)\Z", re.DOTALL)


def one_row_parts(query: str) -> list[str] | None:
    """The queries a one-row query is made of, or None for any other query."""
    match = ONE_ROW_QUERY.match(query)
    if match is None:
        return None
    parts = match["parts"].split("),\n  (")
    assert not any("\n" in part for part in parts), "a part of a one-row query spans lines: split it another way"
    return parts


def answered(answer: Callable[[str], object], query: str):
    """Athena's result set for `query`, from `answer` (SQL -> a value or rows): a one-row query of several
    has a column per part, each part's value."""
    parts = one_row_parts(query)
    return athena_results(answer(query) if parts is None else [tuple(answer(part) for part in parts)])


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
    """What the Glue job script leaves for the checks of `stage` when given --staging_database: its tables
    registered at the run's prefix and, for landing, the snapshot of the landing files and its raw tables."""
    from stedi.catalogue import STAGE
    from stedi.sql import stage_job

    script = glue_script()
    register_tables(STAGING_DB, staging_uri, STAGE[stage].tables)
    views = script.landing_views(stage_job(stage, "spark"))
    if views:
        s3 = aws_client("s3")
        script.write_landing_snapshot(s3, staging_uri, script.list_landing(s3, f"s3://{BUCKET}", views.values()),
                                      views)
        script.register_raw_tables(aws_client("glue"), STAGING_DB, staging_uri, views)


def register_tables(database: str, staging_uri: str, tables: tuple[str, ...]) -> None:
    """What the script's register_tables does on Glue: each table at the run's prefix, as Spark registers it."""
    glue = aws_client("glue")
    for table in tables:
        try:
            glue.delete_table(DatabaseName=database, Name=table)
        except glue.exceptions.EntityNotFoundException:
            pass
        glue.create_table(DatabaseName=database, TableInput={
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
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    for key, body in SEED_UPLOADS.items():
        stack.upload(key, body)
    create_lock_table()
    for database in (STAGING_DB, PUBLISHED_DB, CRAWLED_DB, RUNS_DB):
        glue.create_database(DatabaseInput={"Name": database})
    glue.create_table(DatabaseName=RUNS_DB, TableInput=history_table_input())
    stack.client("athena").create_work_group(Name=WORKGROUP, Configuration={
        "ResultConfiguration": {"OutputLocation": f"s3://{BUCKET}/athena-results/"}})
    role = iam.create_role(RoleName="stedi-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    substitutions = {"Partition": "aws", "LakeBucket": BUCKET, "RunLockTable": LOCK_TABLE}
    # As template.yaml's LandingCrawler: the crawled tables of stedi.catalogue as its targets.
    stack.crawler = "stedi-landing"
    glue.create_crawler(Name=stack.crawler, Role=role,
                        Targets={"CatalogTargets": [{"DatabaseName": CRAWLED_DB,
                                                     "Tables": [f"{source}_landing" for source in SOURCES]}]},
                        SchemaChangePolicy={"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"},
                        RecrawlPolicy={"RecrawlBehavior": "CRAWL_EVERYTHING"})
    substitutions["LandingCrawler"] = stack.crawler
    glue.create_job(Name=STAGE_JOB, Role=role, Command={"Name": "glueetl", "ScriptLocation": "s3://x/stedi_stage.py"},
                    DefaultArguments={"--staging_database": STAGING_DB}, ExecutionProperty={"MaxConcurrentRuns": 1})
    substitutions["StageJob"] = STAGE_JOB
    awslambda = stack.client("lambda")
    for logical_id, module in {"ValidateRunFunction": "validate_run", "TakeRunLockFunction": "take_run_lock",
                               "CheckStageFunction": "check_stage", "VerifyCrawlFunction": "verify_crawl",
                               "PublishRunFunction": "publish_run", "RecordRunFunction": "record_run",
                               "DescribeFailureFunction": "describe_failure"}.items():
        name = f"stedi-{module}"
        arn = awslambda.create_function(FunctionName=name, Runtime="python3.11", Role=role,
                                        Handler=f"{module}.handler", Code={"ZipFile": tiny_zip()})["FunctionArn"]
        stack.functions[name] = module
        substitutions[f"{logical_id}Arn"] = arn
    stack.topic_arn = stack.client("sns").create_topic(Name="stedi-alerts")["TopicArn"]
    substitutions["AlertTopicArn"] = stack.topic_arn
    if stack.success_email:  # the template's condition HasSuccessEmail
        stack.success_topic_arn = stack.client("sns").create_topic(Name="stedi-runs-published")["TopicArn"]
    substitutions["SuccessTopicArn"] = stack.success_topic_arn
    stack.state_machine_arn = stack.client("stepfunctions").create_state_machine(
        name="stedi-pipeline", definition=substituted_definition(substitutions), roleArn=role)["stateMachineArn"]


def history_table_input() -> dict:
    """The history table as template.yaml defines it (HistoryTable), at the lake bucket: a fresh copy each time."""
    return json.loads(_history_table_input((REPO / "template.yaml").read_text()))


@functools.cache
def _history_table_input(template_text: str) -> str:
    from aws_template import load_template

    table_input = load_template()["Resources"]["HistoryTable"]["Properties"]["TableInput"]
    descriptor = table_input["StorageDescriptor"]
    descriptor["Location"] = descriptor["Location"]["Sub"].replace("${LakeBucket}", BUCKET)
    return json.dumps(table_input)


def history_location() -> str:
    return history_table_input()["StorageDescriptor"]["Location"]


def s3_event(key: str, time: datetime, bucket: str = BUCKET, detail_type: str = "Object Created") -> dict:
    """An S3 event as EventBridge delivers it."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": "aws.s3",
        "account": "123456789012", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {"version": "0", "bucket": {"name": bucket},
                   "object": {"key": key, "size": 1024, "etag": "0123456789abcdef", "sequencer": "0062E99A88DC407460"},
                   "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "reason": "PutObject"},
    }


def sqs_batch(events: list[dict]) -> dict:
    return {"Records": [{"messageId": f"m-{event['id']}", "body": json.dumps(event), "eventSource": "aws:sqs"}
                        for event in events]}


def status_change_event(execution: dict, status: str) -> dict:
    """What Step Functions sends EventBridge when an execution of a standard workflow changes status:
    https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html (moto sends none)."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states", "account": "123456789012", "time": "2026-01-02T03:04:05Z", "region": REGION,
        "resources": [execution["executionArn"]],
        "detail": {"executionArn": execution["executionArn"], "stateMachineArn": execution["stateMachineArn"],
                   "name": execution["name"], "status": status, "startDate": 1551225014968,
                   "stopDate": 1551225017576, "input": "{}", "output": None},
    }


def create_lock_table() -> None:
    aws_client("dynamodb").create_table(
        TableName=LOCK_TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "lock", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "lock", "KeyType": "HASH"}])


class Trigger:
    """The trigger Lambda against a state machine in moto whose executions stay RUNNING until stopped;
    stopping one tells the release Lambda, as the template's EventBridge rule does."""

    def __init__(self, monkeypatch):
        self.sfn = aws_client("stepfunctions")
        role = "arn:aws:iam::123456789012:role/stedi-test"
        definition = json.dumps({"StartAt": "Run", "States": {"Run": {"Type": "Pass", "End": True}}})
        created = self.sfn.create_state_machine(name="stedi-pipeline", definition=definition, roleArn=role)
        self.arn = created["stateMachineArn"]
        monkeypatch.setenv("STATE_MACHINE_ARN", self.arn)
        create_lock_table()
        self.handler = load_handler("start_run").handler

    def deliver(self, events: list[dict], handler: Callable | None = None) -> list[str]:
        """One SQS batch (to `handler`, another environment's, if given); returns the message ids handed
        back to the queue."""
        response = (handler or self.handler)(sqs_batch(events), LambdaContext(function_name="start-run"))
        return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]

    def executions(self) -> list[dict]:
        return self.sfn.list_executions(stateMachineArn=self.arn)["executions"]

    def finish_runs(self) -> None:
        for execution in self.executions():
            if execution["status"] == "RUNNING":
                self.sfn.stop_execution(executionArn=execution["executionArn"])
                described = self.sfn.describe_execution(executionArn=execution["executionArn"])
                load_handler("release_run_lock").handler(status_change_event(described, "ABORTED"),
                                                         LambdaContext(function_name="release-run-lock"))
