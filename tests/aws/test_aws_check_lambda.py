"""The check Lambda on a real account: the schema it names, the time it has, the queries it runs at once.

Athena runs in moto with queries that take time (moto's time-based state progression) or never finish;
the Lambda context counts down the invocation's time as Lambda does.
"""

import time

import boto3
import pytest
from aws_fakes import (
    BUCKET,
    CRAWLED_DB,
    REGION,
    SEED_UPLOADS,
    STAGING_DB,
    WORKGROUP,
    LambdaContext,
    answered,
    load_handler,
    nothing_found,
    one_row_parts,
    register_staged_tables,
)
from moto import mock_aws
from moto.athena.models import AthenaBackend
from moto.moto_api import state_manager

from stedi.accounting import drift_query, set_aside_queries
from stedi.aws.athena import AthenaQuery, QueryFailed, QueryTimedOut
from stedi.aws.run_input import validate_run_input
from stedi.aws.settings import Settings
from stedi.catalogue import CONSENT_SCOPES, STAGES
from stedi.checks import CHECKS

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture
def aws(monkeypatch):
    start = AthenaBackend.start_query_execution

    def answering(self, query, *args, **kwargs):  # every check passes: counts 0, nothing set aside
        query_id = start(self, query, *args, **kwargs)
        self.query_results[query_id] = answered(nothing_found, query)
        return query_id

    monkeypatch.setattr(AthenaBackend, "start_query_execution", answering)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        for key, body in SEED_UPLOADS.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())
        for database in (STAGING_DB, CRAWLED_DB):  # the landing check may make the crawled tables
            boto3.client("glue", region_name=REGION).create_database(DatabaseInput={"Name": database})
        boto3.client("athena", region_name=REGION).create_work_group(Name=WORKGROUP)
        try:
            yield
        finally:
            state_manager.unset_transition("athena::execution")


def check_stage(stage: str, context: LambdaContext):
    run = validate_run_input("run-1", {}, Settings.from_env()).as_state()
    register_staged_tables(stage, run["staging"])
    return load_handler("check_stage").handler({"stage": stage, "run": run}, context)


def issued() -> list[dict]:
    athena = boto3.client("athena", region_name=REGION)
    ids = athena.list_query_executions()["QueryExecutionIds"]
    return [athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"] for query_id in ids]


# ---------------------------------------------------------------- point 2: a literal schema


def test_no_personal_columns_names_the_staging_database_as_a_literal(aws):
    """Athena documents the columns of one database as information_schema.columns filtered by a literal
    `table_schema = 'database_name'`:
    https://docs.aws.amazon.com/athena/latest/ug/querying-glue-catalog-listing-all-columns-for-all-tables.html"""
    check_stage("machine_learning_curated", LambdaContext())

    [query] = [query["Query"] for query in issued() if "information_schema" in query["Query"]]
    assert f"table_schema = '{STAGING_DB}'" in query


@pytest.mark.parametrize("scope", CONSENT_SCOPES)
def test_no_check_relies_on_a_session_schema(scope):
    for stage in STAGES:
        for check in CHECKS[stage]:
            for sql in (check.sql, getattr(check.expect, "sql", None)):
                if sql:
                    rendered = check.render(sql, scope, STAGING_DB).lower()
                    assert "current_schema" not in rendered and ":schema" not in rendered, check.name


# ---------------------------------------------------------------- point 3: the Lambda's time, queries at once


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_s_values_are_asked_in_one_query_and_information_schema_apart(aws, stage):
    check_stage(stage, LambdaContext())

    sent = [query["Query"] for query in issued()]
    [together] = [sql for sql in sent if one_row_parts(sql)]
    catalog = [sql for sql in sent if "information_schema" in sql]
    assert not any("information_schema" in part for part in one_row_parts(together))
    assert len(catalog) == (stage == "machine_learning_curated")  # no_personal_columns
    rows_queries = [*set_aside_queries(stage).values(), *filter(None, [drift_query(stage)])]
    assert sorted(sent) == sorted([together, *catalog, *rows_queries])


def test_a_stage_s_queries_run_at_once_and_finish_within_the_lambda_s_time(aws):
    """Landing sends five queries (its values in one, then what each source set aside and the drift). Each
    takes about 1.4 s here (polled at 0.2, 0.6 and 1.4 s): one after another they need more than the 4.5 s
    this invocation gives them; four at a time (QUERY_CONCURRENCY) they fit."""
    state_manager.set_transition("athena::execution", {"progression": "time", "seconds": 0.35})
    context = LambdaContext(timeout_seconds=5)
    started = time.monotonic()

    summary = check_stage("landing", context)

    assert summary["checks_failed"] == 0
    assert time.monotonic() - started < context.timeout_seconds
    assert context.get_remaining_time_in_millis() > 0


def test_a_check_running_out_of_time_stops_its_queries_and_says_so_before_lambda_ends_it(aws):
    state_manager.set_transition("athena::execution", {"progression": "manual", "times": 10**6})  # never finish
    context = LambdaContext(timeout_seconds=2)

    with pytest.raises(QueryTimedOut, match="left") as timed_out:
        check_stage("landing", context)

    assert context.get_remaining_time_in_millis() > 0, "Lambda would have ended the invocation first"
    assert "still QUEUED" in str(timed_out.value) or "not started" in str(timed_out.value)
    states = {query["Status"]["State"] for query in issued()}
    assert states == {"CANCELLED"}  # nothing left running on the account's query quota


def test_the_first_failed_query_stops_the_others(aws, monkeypatch):
    original = AthenaBackend.start_query_execution

    def start(self, query, *args, **kwargs):
        query_id = original(self, query, *args, **kwargs)
        if query == "SELECT 1":
            self.executions[query_id].status = "FAILED"
        return query_id

    monkeypatch.setattr(AthenaBackend, "start_query_execution", start)
    state_manager.set_transition("athena::execution", {"progression": "manual", "times": 10**6})
    query = AthenaQuery(boto3.client("athena", region_name=REGION), STAGING_DB, WORKGROUP, concurrency=3)

    with pytest.raises(QueryFailed, match="SELECT 1"):
        query.run_all([], rows=["SELECT 2", "SELECT 1", "SELECT 3", "SELECT 4", "SELECT 5"])

    states = {query["Query"]: query["Status"]["State"] for query in issued()}
    assert states.pop("SELECT 1") == "FAILED"
    assert set(states.values()) == {"CANCELLED"}
