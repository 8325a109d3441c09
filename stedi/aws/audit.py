"""A stage's audit on Athena: the same row counts and checks as the local run, over the staged tables.

The Glue job registers each table it writes in the staging database, pointed
at this run's prefix; verify_staged_tables makes sure that is so before any
check runs, because a check of an older run's files would pass for the wrong data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from stedi.accounting import row_count_queries, set_aside, stage_summary
from stedi.aws.athena import AthenaQuery
from stedi.aws.run_input import RunInput
from stedi.checks import CheckFailed, CheckResult, run_checks


class StagedTableMissing(Exception):
    """A table the stage should have written is not registered at this run's prefix."""


@dataclass
class StageAudit:
    stage: str
    rows: dict[str, int]
    results: list[CheckResult]
    set_aside: dict[str, dict[str, int]]
    seconds: float

    @property
    def failures(self) -> list[CheckResult]:
        return [result for result in self.results if result.failed]

    def count(self, status: str) -> int:
        return sum(result.status == status for result in self.results)

    def summary(self) -> dict[str, Any]:
        """The stage's record, as the local run builds it: the state machine's output and the manifest's input."""
        return stage_summary(self.stage, self.rows, self.results, self.set_aside, self.seconds)

    def raise_for_failures(self) -> None:
        if self.failures:
            raise CheckFailed(self.stage, self.failures)


def table_location(staging_uri: str, table: str) -> str:
    return f"{staging_uri}/{table}"


def same_location(left: str, right: str) -> bool:
    return left.rstrip("/") == right.rstrip("/")


def verify_staged_tables(glue: Any, database: str, staging_uri: str, tables: tuple[str, ...]) -> None:
    for table in tables:
        try:
            location = glue.get_table(DatabaseName=database, Name=table)["Table"]["StorageDescriptor"]["Location"]
        except glue.exceptions.EntityNotFoundException:
            raise StagedTableMissing(
                f"{database}.{table} is not registered: did the Glue job get --staging_database?") from None
        if not same_location(location, table_location(staging_uri, table)):
            raise StagedTableMissing(f"{database}.{table} points at {location}, not this run's {staging_uri}/{table}")


def audit_stage(stage: str, run: RunInput, query: AthenaQuery, clock: Callable[[], float] = time.monotonic
                ) -> StageAudit:
    """Row counts of what the stage wrote, its checks, what it set aside (as pipeline.Audit does on DuckDB)."""
    started = clock()
    rows = {table: int(query(sql)) for table, sql in row_count_queries(stage).items()}
    results = run_checks(stage, query, consent_scope=run.consent_scope, expected_counts=run.expected_counts)
    aside = set_aside(stage, query.rows)
    return StageAudit(stage, rows, results, aside, clock() - started)
