"""A stage's audit on Athena: the same row counts and checks as the local run, over the staged tables.

The Glue job registers each table it writes in the staging database, pointed
at this run's prefix; verify_staged_tables makes sure that is so before any
check runs, because a check of an older run's files would pass for the wrong data.
The landing job also registers the <source>_raw tables at this run's snapshot
of the landing files; verify_landing_unchanged makes sure every file of it is
still the version the job read, because Athena reads a file's current version.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from stedi.accounting import audit, stage_summary
from stedi.aws.athena import AthenaQuery
from stedi.aws.run_input import RunInput
from stedi.catalogue import STAGE, TYPED
from stedi.checks import CheckResult
from stedi.runner import read_landing_snapshot, split_s3


class StagedTableMissing(Exception):
    """A table the stage should have written is not registered at this run's prefix."""


class LandingChanged(Exception):
    """A landing file the landing job read was replaced or deleted before the checks could count it."""


@dataclass
class StageAudit:
    stage: str
    rows: dict[str, int]
    results: list[CheckResult]
    set_aside: dict[str, dict[str, int]]
    seconds: float
    drift: dict[str, dict[str, dict]] = field(default_factory=dict)  # landing: each key outside a schema

    @property
    def failures(self) -> list[CheckResult]:
        return [result for result in self.results if result.failed]

    def count(self, status: str) -> int:
        return sum(result.status == status for result in self.results)

    def summary(self) -> dict[str, Any]:
        """The stage's record, as the local run builds it: the state machine's output and the manifest's input."""
        return stage_summary(self.stage, self.rows, self.results, self.set_aside, self.seconds, self.drift)


def table_location(staging_uri: str, table: str) -> str:
    return f"{staging_uri}/{table}"


def same_location(left: str, right: str) -> bool:
    return left.rstrip("/") == right.rstrip("/")


def checked_tables(stage: str) -> tuple[str, ...]:
    """The tables a stage's checks read that the stage's job registers: what it writes and, for landing,
    the raw lines of its snapshot."""
    definition = STAGE[stage]
    return definition.tables + (definition.reads if definition.kind == TYPED else ())


def catalog_tables(glue: Any, database: str) -> dict[str, dict]:
    """Every table of a Glue database, by name, as GetTables gives it (every page of it)."""
    return {table["Name"]: table for page in glue.get_paginator("get_tables").paginate(DatabaseName=database)
            for table in page["TableList"]}


def verify_staged_tables(glue: Any, database: str, staging_uri: str, tables: tuple[str, ...]) -> dict[str, dict]:
    """Every table is registered in `database` at this run's prefix; gives each one's definition.

    One GetTables listing (paged), not a GetTable per table. GetTables needs the database and its tables
    in the policy, as GetTable does: https://docs.aws.amazon.com/glue/latest/dg/glue-specifying-resource-arns.html
    """
    registered = catalog_tables(glue, database)
    for table in tables:
        if table not in registered:
            raise StagedTableMissing(
                f"{database}.{table} is not registered: did the Glue job get --staging_database?")
        location = registered[table].get("StorageDescriptor", {}).get("Location", "")
        if not same_location(location, table_location(staging_uri, table)):
            raise StagedTableMissing(f"{database}.{table} points at {location}, not this run's {staging_uri}/{table}")
    return {table: registered[table] for table in tables}


def verify_landing_unchanged(s3: Any, staging_uri: str) -> None:
    """Every file of the run's landing snapshot is still there with the ETag the landing job listed.

    A file uploaded meanwhile is no concern: the raw tables read only the snapshot's files.
    """
    current: dict[str, str] = {}
    changed = []
    for files in read_landing_snapshot(s3, staging_uri).values():
        bucket, key = split_s3(files[0]["path"])
        folder = key.rsplit("/", 1)[0] + "/"
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
            current.update({f"s3://{bucket}/{item['Key']}": item["ETag"] for item in page.get("Contents", [])})
        for file in files:
            now = current.get(file["path"])
            if now != file["etag"]:
                changed.append(f"{file['path']} was {'deleted' if now is None else 'replaced'}")
    if changed:
        raise LandingChanged(f"{len(changed)} landing file(s) changed after the landing job read them, so their "
                             f"lines can no longer be counted: {'; '.join(changed)}. The next run reads them as "
                             "they are now.")


def audit_stage(stage: str, run: RunInput, query: AthenaQuery, clock: Callable[[], float] = time.monotonic
                ) -> StageAudit:
    """Row counts of what the stage wrote, its checks, what it set aside (as the local run does on DuckDB),
    every query at once (query.run_all)."""
    started = clock()

    def ask(values: list[str], rows: list[str]) -> tuple[dict, dict]:
        answers = query.run_all(values, rows)
        return answers.values, answers.rows

    rows, results, aside, drift = audit(stage, ask, consent_scope=run.consent_scope,
                                        expected_counts=run.expected_counts, schema=query.database)
    return StageAudit(stage, rows, results, aside, clock() - started, drift)
