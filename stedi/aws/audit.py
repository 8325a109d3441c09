"""A stage's audit on Athena: the same row counts and checks as the local run, over the staged tables.

The Glue job registers each table it writes in the staging database, pointed
at this run's prefix; verify_staged_tables makes sure that is so before any
check runs, because a check of an older run's files would pass for the wrong data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from stedi.aws.run_input import RunInput
from stedi.catalogue import STAGE
from stedi.checks import CheckFailed, CheckResult, run_checks

Query = Callable[[str], float | int | None]


class StagedTableMissing(Exception):
    """A table the stage should have written is not registered at this run's prefix."""


@dataclass
class StageAudit:
    stage: str
    rows: dict[str, int]
    results: list[CheckResult]

    @property
    def failures(self) -> list[CheckResult]:
        return [result for result in self.results if result.failed]

    def count(self, status: str) -> int:
        return sum(result.status == status for result in self.results)

    def summary(self) -> dict[str, Any]:
        """Small and flat, for the state machine's output."""
        return {"stage": self.stage, "rows": self.rows, "checks_passed": self.count("passed"),
                "checks_skipped": self.count("skipped"), "checks_failed": self.count("failed")}

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


def audit_stage(stage: str, run: RunInput, query: Query) -> StageAudit:
    """Row counts of what the stage wrote, then its checks (as pipeline.Audit does on DuckDB)."""
    rows = {table: int(query(f"SELECT count(*) FROM {table}"))
            for table in STAGE[stage].record_tables}
    results = run_checks(stage, query, consent_scope=run.consent_scope, expected_counts=run.expected_counts)
    return StageAudit(stage, rows, results)
