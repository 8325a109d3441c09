"""Write, audit, publish: run every stage into a run's staging, check it, then publish.

Each stage writes to <lake>/runs/<run id>/; its checks run on DuckDB over what
it wrote before the next stage starts. Only a run whose every check passed is
published, all tables at once. A failure stops the run where it happened and
leaves the published tables as they were.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import duckdb

from stedi import duck
from stedi.checks import CheckResult, run_checks
from stedi.engines import make_engine
from stedi.lake import Lake
from stedi.stages import SOURCES, STAGE_TABLES, STAGES, filtered_table


@dataclass
class StageReport:
    stage: str
    seconds: float  # the stage's job
    check_seconds: float  # counting its rows and running its checks
    rows: dict[str, int]
    checks: list[CheckResult]

    @property
    def failures(self) -> list[CheckResult]:
        return [result for result in self.checks if result.failed]


@dataclass
class RunReport:
    run_id: str
    engine: str
    consent_scope: str
    staging: Path
    stages: list[StageReport] = field(default_factory=list)
    rejected: dict[str, dict[str, int]] = field(default_factory=dict)
    filtered: dict[str, dict[str, int]] = field(default_factory=dict)
    published: bool = False

    @property
    def rows(self) -> dict[str, int]:
        return {table: n for stage in self.stages for table, n in stage.rows.items()}

    @property
    def checks(self) -> list[CheckResult]:
        return [result for stage in self.stages for result in stage.checks]

    @property
    def failures(self) -> list[CheckResult]:
        return [result for result in self.checks if result.failed]

    def manifest_entry(self) -> dict:
        """What published.json records about this run."""
        counts = {status: sum(r.status == status for r in self.checks) for status in ("passed", "failed", "skipped")}
        return {
            "run_id": self.run_id,
            "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "engine": self.engine,
            "consent_scope": self.consent_scope,
            "tables": self.rows,
            "rejected": self.rejected,
            "filtered": self.filtered,
            "checks": counts,
            "stage_seconds": {stage.stage: round(stage.seconds, 3) for stage in self.stages},
            "check_seconds": {stage.stage: round(stage.check_seconds, 3) for stage in self.stages},
        }


class Audit:
    """Runs each stage's checks on DuckDB over the run's staged Parquet and the raw landing lines."""

    def __init__(self, lake: Lake, staging: Path) -> None:
        self.con = duckdb.connect()
        self.staging = staging
        for source in SOURCES:
            duck.view_raw(self.con, source, lake.landing_files(source))

    def rows(self, stage: str) -> dict[str, int]:
        duck.view_tables(self.con, self.staging, STAGE_TABLES[stage])
        return {table: duck.scalar(self.con, f"SELECT count(*) FROM {table}") for table in STAGE_TABLES[stage]}

    def check(self, stage: str, consent_scope: str, expected_counts: Mapping[str, int]) -> list[CheckResult]:
        return run_checks(stage, lambda sql: duck.scalar(self.con, sql),
                          consent_scope=consent_scope, expected_counts=expected_counts)

    def breakdown(self, sql: str) -> dict[str, int]:
        """A two-column query (name, number) as a dict."""
        return {str(name): int(number) for name, number in self.con.execute(sql).fetchall()}

    def close(self) -> None:
        self.con.close()


def run_pipeline(
    lake: Lake,
    *,
    engine: str = "duckdb",
    consent_scope: str = "reading",
    expected_counts: Mapping[str, int] | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> RunReport:
    lake.require_landing_data()
    run_id, staging = lake.new_run()
    report = RunReport(run_id, engine, consent_scope, staging)
    progress(f"run {run_id}: engine {engine}, consent scope {consent_scope}, lake {lake.root}")
    runner = make_engine(engine)
    audit = Audit(lake, staging)
    try:
        for number, stage in enumerate(STAGES, start=1):
            started = time.perf_counter()
            runner.run_stage(stage, lake, staging, consent_scope)
            ran = time.perf_counter()
            rows = audit.rows(stage)
            checks = audit.check(stage, consent_scope, expected_counts or {})
            stage_report = StageReport(stage, ran - started, time.perf_counter() - ran, rows, checks)
            report.stages.append(stage_report)
            progress(_progress_line(number, stage_report))
            if stage_report.failures:
                return report
        report.rejected = {
            source: audit.breakdown(f"SELECT reason, count(*) FROM {source}_rejected GROUP BY reason ORDER BY reason")
            for source in SOURCES
        }
        report.filtered = {
            stage: audit.breakdown(f"SELECT rule, records FROM {filtered_table(stage)} ORDER BY rule")
            for stage in STAGES if filtered_table(stage)
        }
    finally:
        audit.close()
        runner.close()
    lake.publish(report.manifest_entry())
    report.published = True
    return report


def _progress_line(number: int, stage: StageReport) -> str:
    rows = ", ".join(f"{table} {n:,}" for table, n in stage.rows.items() if table != filtered_table(stage.stage))
    passed = sum(r.status == "passed" for r in stage.checks)
    verdict = f"{len(stage.failures)} FAILED" if stage.failures else f"{passed} checks passed"
    return (f"[{number}/{len(STAGES)}] {stage.stage:<25} {stage.seconds:6.2f}s + checks {stage.check_seconds:5.2f}s  "
            f"{verdict}  ({rows})")
