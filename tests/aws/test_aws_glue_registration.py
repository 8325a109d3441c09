"""The Glue job script (glue_scripts/stedi_stage.py) as the deployment starts it, and its catalog registration.

The script is stedi/runner.py with the stages' SQL appended (`make generate`).
Here it is started with the arguments the state machine and the template give
it, and its registration (--staging_database) runs on local Spark: on Glue the
same statements go to the Glue Data Catalog, here to Spark's own catalog,
which shows that they are valid Spark SQL, that the registered tables read
exactly what the stage wrote, and that registering a later run repoints them.
What the script does with boto3 (landing's snapshot of the landing files, and
the raw tables over it) runs against moto.
"""

import importlib.util
import json
import sys

import boto3
import pytest
from aws_template import REPO, load_definition, load_template
from moto import mock_aws

from stedi.catalogue import LANDING_SOURCES, STAGE, STAGE_LIST, TYPED

GLUE_SCRIPT = REPO / "glue_scripts" / "stedi_stage.py"
BUCKET, RUN = "stedi-lake", {"staging": "s3://stedi-lake/runs/run-1", "consent_scope": "customer"}


@pytest.fixture(scope="module")
def script():
    """The generated script, imported as a module (its `main` only runs as __main__)."""
    spec = importlib.util.spec_from_file_location("stedi_stage_glue_script", GLUE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def glue_argv(stage: str) -> list[str]:
    """sys.argv of the job run the state machine starts for `stage`, as Glue passes it to the script."""
    arguments = {"--JOB_ID": "j_1", "--JOB_RUN_ID": "jr_1", "--JOB_NAME": "stedi-stage"}  # Glue's own
    job = load_template()["Resources"]["StageJob"]["Properties"]
    for key, value in job["DefaultArguments"].items():
        arguments[key] = "stedi_staging" if value == {"Ref": "StagingDatabase"} else value
    state = load_definition()["States"][f"Run {stage} job"]
    for key, value in state["Parameters"]["Arguments"].items():
        if key.endswith(".$"):  # a path into the execution's state, where the run is under $.run
            key, value = key.removesuffix(".$"), RUN[value.removeprefix("$.run.")]
        arguments[key] = value.replace("${LakeBucket}", BUCKET)
    return ["stedi_stage.py", *(item for pair in arguments.items() for item in pair)]


class RecordingSpark:
    def __init__(self):
        self.statements = []

    def sql(self, statement):
        self.statements.append(statement)


@pytest.fixture
def lake(monkeypatch):
    """The bucket with two uploads per landing folder (and what Spark would not read), the staging database."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        for source in LANDING_SOURCES:
            for name in ("b.json", "a.json", "_SUCCESS", ".hidden"):
                s3.put_object(Bucket=BUCKET, Key=f"{source.landing_folder}/{name}", Body=b"{}\n")
        boto3.client("glue").create_database(DatabaseInput={"Name": "stedi_staging"})
        yield s3


@pytest.mark.parametrize("stage", [stage.name for stage in STAGE_LIST])
def test_the_job_runs_and_registers_the_stage_the_state_machine_names(script, stage, monkeypatch, lake):
    import pyspark.sql

    spark, runs = RecordingSpark(), []

    class Session:  # main's `SparkSession.builder.getOrCreate()`
        builder = type("Builder", (), {"getOrCreate": staticmethod(lambda: spark)})

    monkeypatch.setattr(pyspark.sql, "SparkSession", Session)
    monkeypatch.setattr(script, "run_stage", lambda _, job, **where: runs.append((job, where)))
    monkeypatch.setattr(sys, "argv", glue_argv(stage))

    script.main(script.JOBS, script.CONSENT_SCOPES)

    [(job, where)] = runs
    assert job.name == stage
    assert where["staging"] == RUN["staging"]
    if STAGE[stage].kind == TYPED:
        assert where["lake"] == f"s3://{BUCKET}"
        # The landing files are listed once, read as listed, and the checks' raw tables read the same files.
        snapshot = {source.landing_folder: [f"s3://{BUCKET}/{source.landing_folder}/{name}"
                                            for name in ("a.json", "b.json")] for source in LANDING_SOURCES}
        assert where["landing_files"] == snapshot
        record = json.loads(lake.get_object(Bucket=BUCKET, Key="runs/run-1/landing_files.json")["Body"].read())
        assert {folder: [file["path"] for file in files] for folder, files in record.items()} == snapshot
        glue = boto3.client("glue")
        for source in LANDING_SOURCES:
            table = glue.get_table(DatabaseName="stedi_staging", Name=source.raw_table)["Table"]
            assert table["StorageDescriptor"]["Location"] == f"{RUN['staging']}/{source.raw_table}"
            manifest = lake.get_object(Bucket=BUCKET, Key=f"runs/run-1/{source.raw_table}/symlink.txt")["Body"]
            assert manifest.read().decode().split() == snapshot[source.landing_folder]
    else:
        assert where["consent_scope"] == RUN["consent_scope"]
        assert not where["landing_files"]
    # The tables the check Lambda looks for in the staging database, each at this run's prefix.
    assert spark.statements == [
        statement for table in STAGE[stage].tables for statement in (
            f"DROP TABLE IF EXISTS `stedi_staging`.`{table}`",
            f"CREATE TABLE `stedi_staging`.`{table}` USING PARQUET LOCATION '{RUN['staging']}/{table}'")]


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    session = active or (SparkSession.builder.master("local[2]").appName("stedi-glue-registration")
                         .config("spark.ui.enabled", "false")
                         .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("warehouse")))
                         .config("spark.sql.shuffle.partitions", "2").config("spark.sql.session.timeZone", "UTC")
                         .getOrCreate())
    yield session
    if active is None:  # a session another test made is that test's to stop
        session.stop()


@pytest.mark.spark
def test_registered_tables_read_what_the_stage_wrote_and_follow_the_latest_run(script, spark, tmp_path):
    tables = script.JOBS["customer_trusted"].tables
    spark.sql("CREATE DATABASE IF NOT EXISTS stedi_staging")
    written = {}
    for run_number, run_id in enumerate(("run-1", "run-2"), start=1):
        staging = tmp_path / "runs" / run_id
        # What the stage writes, in miniature: a few rows per table, a different number per run.
        rows = {table: run_number * (index + 1) for index, table in enumerate(tables)}
        written[run_id] = rows
        for table, count in rows.items():
            spark.range(count).selectExpr("id", "'x' AS line").write.parquet(str(staging / table))
        script.register_tables(spark, "stedi_staging", str(staging), tables)
        for table, count in rows.items():
            assert spark.sql(f"SELECT count(*) FROM stedi_staging.{table}").first()[0] == count, table
            details = spark.sql(f"DESCRIBE TABLE EXTENDED stedi_staging.{table}")
            location = details.where("col_name = 'Location'").first().data_type
            assert location.rstrip("/").endswith(f"runs/{run_id}/{table}")
    # Repointing dropped run-1's registration, never its files: the tables are external.
    for table in tables:
        assert spark.read.parquet(str(tmp_path / "runs" / "run-1" / table)).count() == written["run-1"][table]
