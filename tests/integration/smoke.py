"""What the smoke test does to a deployed stack, as plain functions over boto3 clients (tested against moto).

Find the stack's bucket and state machine, upload landing files, wait for the run they start, read what it
published, and work out locally (the same pipeline on DuckDB) what it should have published.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from stedi.aws.athena import AthenaQuery
from stedi.catalogue import RECORD_TABLES, SOURCES

STARTER = Path(__file__).resolve().parents[3] / "shared" / "data" / "stedi-starter"
# README.md, "Against the starter data the run publishes", consent scope `reading`: an upload's run uses it.
STARTER_PUBLISHED = {
    "customer_landing": 956, "accelerometer_landing": 81_273, "step_trainer_landing": 28_680,
    "customer_trusted": 482, "accelerometer_trusted": 32_025, "customer_curated": 464,
    "step_trainer_trusted": 11_297, "machine_learning_curated": 32_025,
}
# Lines the landing stage must reject (not JSON, a wrong type, a missing field) without failing the run.
GARBAGE = ["this is not json", '{"user": "nobody@example.com", "timestamp": "soon", "x": 0.1, "y": 0.2, "z": 0.3}',
           '{"user": "nobody@example.com", "x": 0.1, "y": 0.2, "z": 0.3}']


@dataclass(frozen=True)
class DeployedStack:
    name: str
    bucket: str
    state_machine_arn: str
    published_database: str
    workgroup: str
    history_table: str  # <runs database>.history


def deployed_stack(cloudformation: Any, name: str) -> DeployedStack:
    [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    return DeployedStack(name, outputs["LakeBucketName"], outputs["StateMachineArn"],
                         outputs["PublishedDatabaseName"], outputs["CheckWorkGroupName"], outputs["HistoryTableName"])


def landing_keys(s3: Any, bucket: str) -> list[str]:
    keys = []
    for source in SOURCES:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{source}/landing/"):
            keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


def upload_landing(s3: Any, bucket: str, lake: Path) -> list[str]:
    """Every file under <lake>/<source>/landing/ to the same key in the bucket."""
    keys = []
    for source in SOURCES:
        for path in sorted((lake / source / "landing").iterdir()):
            key = f"{source}/landing/{path.name}"
            s3.upload_file(str(path), bucket, key)
            keys.append(key)
    return keys


def wait_for_run(sfn: Any, state_machine_arn: str, started_after: datetime, *, timeout: float = 2700,
                 poll: float = 15, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> dict:
    """The first execution started after `started_after`, once it has ended (describe_execution)."""
    deadline = clock() + timeout
    while True:
        started = [execution for execution in sfn.list_executions(stateMachineArn=state_machine_arn)["executions"]
                   if execution["startDate"] > started_after]
        if started:
            execution = sfn.describe_execution(executionArn=min(started, key=lambda e: e["startDate"])["executionArn"])
            if execution["status"] != "RUNNING":
                return execution
        if clock() > deadline:
            where = f"{started[0]['name']} still running" if started else "no execution started"
            raise TimeoutError(f"{where} {timeout:.0f}s after the upload")
        sleep(poll)


def published_entry(s3: Any, bucket: str) -> dict:
    """What published.json says of the published run."""
    return json.loads(s3.get_object(Bucket=bucket, Key="published.json")["Body"].read())["current"]


def published_rows(athena: AthenaQuery) -> dict[str, int]:
    """Each published table of records, counted as a reader counts it: Athena over the published database."""
    sql = " UNION ALL ".join(f"SELECT '{table}', count(*) FROM {table}" for table in RECORD_TABLES)
    return {table: int(rows) for table, rows in athena.rows(sql)}


def recorded_outcomes(athena: AthenaQuery, history_table: str, run_ids: list[str]) -> dict[str, str]:
    """Each run's outcome as the run history records it (the run's own row), read with Athena."""
    wanted = ", ".join("'" + run_id.replace("'", "''") + "'" for run_id in run_ids)
    sql = f"SELECT run_id, outcome FROM {history_table} WHERE measure = 'run' AND run_id IN ({wanted})"
    return dict(athena.rows(sql))


def local_run(lake: Path, extra: dict[str, str] | None, then: Callable[[Any], Any]) -> Any:
    """Run the local pipeline (DuckDB, consent scope `reading`) on the landing files under `lake` plus
    `extra` (key -> text), and give the report to `then` while its staged tables still exist."""
    import tempfile

    from stedi.lake import Lake
    from stedi.pipeline import run_pipeline

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for source in SOURCES:
            (root / source / "landing").mkdir(parents=True)
            for path in (lake / source / "landing").iterdir():
                (root / source / "landing" / path.name).symlink_to(path.resolve())
        for key, text in (extra or {}).items():
            (root / key).write_text(text)
        report = run_pipeline(Lake(root), consent_scope="reading")
        assert report.published, [result.describe() for result in report.failures]
        return then(report)


def local_publication(lake: Path, extra: dict[str, str] | None = None) -> dict:
    """What a run on AWS must publish for these files: the local run's manifest entry."""
    return local_run(lake, extra, lambda report: report.manifest_entry())


def revocation(lake: Path) -> tuple[str, str]:
    """A curated customer with step trainer readings, and a later record of theirs without consent:
    (their email, the record as a landing line)."""
    import duckdb

    from stedi import duck

    def curated_with_readings(report) -> str:
        con = duckdb.connect()
        duck.view_tables(con, report.staging, ("customer_curated", "step_trainer_trusted"))
        return con.execute("SELECT min(email) FROM customer_curated "
                           "WHERE serialNumber IN (SELECT serialNumber FROM step_trainer_trusted)").fetchone()[0]

    email = local_run(lake, None, curated_with_readings)
    records = [json.loads(line) for path in (lake / "customer" / "landing").iterdir()
               for line in path.read_text().splitlines() if line.strip()]
    current = max((record for record in records if record.get("email") == email), key=lambda r: r["lastUpdateDate"])
    revoked = {key: value for key, value in current.items() if key != "shareWithResearchAsOfDate"}
    return email, json.dumps({**revoked, "lastUpdateDate": current["lastUpdateDate"] + 1})
