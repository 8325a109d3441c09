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
from stedi.accounting import HISTORY_COLUMNS, audit, history_entries, history_rows, manifest_entry, stage_summary
from stedi.catalogue import DEFAULT_CONSENT_SCOPE, STAGE, STAGES, TYPED
from stedi.checks import LOCAL_SCHEMA, CheckResult
from stedi.engines import Engine, make_engine
from stedi.lake import Lake, Snapshot, new_run_id


@dataclass
class StageReport:
    stage: str
    seconds: float  # the stage's job
    check_seconds: float  # counting its rows, running its checks, counting what it set aside
    rows: dict[str, int]
    checks: list[CheckResult]
    set_aside: dict[str, dict[str, int]]  # by source (landing) or stage, then by reason or rule
    drift: dict[str, dict[str, dict]] = field(default_factory=dict)  # landing: by source, each key outside its schema

    @property
    def failures(self) -> list[CheckResult]:
        return [result for result in self.checks if result.failed]

    def summary(self) -> dict:
        return stage_summary(self.stage, self.rows, self.checks, self.set_aside, self.check_seconds, self.drift)


@dataclass
class RunReport:
    run_id: str
    engine: str
    consent_scope: str
    staging: Path
    stages: list[StageReport] = field(default_factory=list)
    published: bool = False

    @property
    def rows(self) -> dict[str, int]:
        return {table: n for stage in self.stages for table, n in stage.rows.items()}

    @property
    def rejected(self) -> dict[str, dict[str, int]]:
        """Landing lines rejected, by source and reason."""
        return {name: counts for stage in self.stages if STAGE[stage.stage].kind == TYPED
                for name, counts in stage.set_aside.items()}

    @property
    def filtered(self) -> dict[str, dict[str, int]]:
        """Records left out, by stage and rule."""
        return {name: counts for stage in self.stages if STAGE[stage.stage].kind != TYPED
                for name, counts in stage.set_aside.items()}

    @property
    def drift(self) -> dict[str, dict[str, dict]]:
        """Keys the landing lines carry outside their schema, by source and key: lines carrying it, a file."""
        return {source: keys for stage in self.stages for source, keys in stage.drift.items()}

    @property
    def checks(self) -> list[CheckResult]:
        return [result for stage in self.stages for result in stage.checks]

    @property
    def failures(self) -> list[CheckResult]:
        return [result for result in self.checks if result.failed]

    def manifest_entry(self) -> dict:
        """What published.json records about this run (the AWS publish records the same)."""
        return manifest_entry(self.run_id, self.engine, self.consent_scope,
                              [stage.summary() for stage in self.stages],
                              {stage.stage: stage.seconds for stage in self.stages})


class Audit:
    """Runs each stage's checks on DuckDB over the run's staged Parquet and the raw landing lines."""

    def __init__(self, landing: Snapshot, staging: Path, database: duckdb.DuckDBPyConnection | None = None) -> None:
        """On a connection of its own to `database` (the run's), or to a new one."""
        self.con = database.cursor() if database is not None else duckdb.connect()
        self.landing = landing
        self.staging = staging

    def show(self, stage: str) -> None:
        """Make the tables the stage wrote visible to the checks (and to every later stage's checks) and,
        for landing, the lines of the files it read (once the stage has read them: see duck.read_whole)."""
        for source in STAGE[stage].sources:
            duck.view_raw(self.con, source.raw_table, self.landing[source.landing_folder], source.landing_folder)
        duck.view_tables(self.con, self.staging, STAGE[stage].tables)

    def audit(self, stage: str, consent_scope: str, expected_counts: Mapping[str, int]
              ) -> tuple[dict[str, int], list[CheckResult], dict[str, dict[str, int]], dict[str, dict[str, dict]]]:
        """The stage's row counts, check results, what it set aside and its drift (stedi.accounting.audit)."""
        self.show(stage)
        return audit(stage, lambda values, rows: duck.answer_all(self.con, values, rows),
                     consent_scope=consent_scope, expected_counts=expected_counts, schema=LOCAL_SCHEMA)

    def close(self) -> None:
        self.con.close()


def run_pipeline(
    lake: Lake,
    *,
    engine: str = "duckdb",
    consent_scope: str = DEFAULT_CONSENT_SCOPE,
    expected_counts: Mapping[str, int] | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> RunReport:
    landing = lake.snapshot()
    run_id = new_run_id()
    # One database for the engine and the audit: opening one takes about 30 ms. The history has a connection
    # of its own, so that a run whose database failed is recorded all the same.
    with lake.locked(run_id), duckdb.connect() as database:
        runner = make_engine(engine, database)  # an engine that cannot start leaves nothing behind
        report = RunReport(run_id, engine, consent_scope, lake.new_staging(run_id))
        progress(f"run {run_id}: engine {engine}, consent scope {consent_scope}, lake {lake.root}")
        outcome = "crashed"
        try:
            _run_stages(runner, Audit(landing, report.staging, database), report, expected_counts or {}, progress)
            if report.failures:
                outcome = "failed"
            else:
                lake.publish(report.manifest_entry())
                report.published, outcome = True, "published"
        except KeyboardInterrupt:
            outcome = "stopped"
            raise
        finally:  # every run leaves its figures in the history, whatever became of it
            duck.write_rows(lake.history_dir / f"{run_id}.parquet", HISTORY_COLUMNS, history_rows(
                run_id, engine, consent_scope, outcome, [stage.summary() for stage in report.stages],
                {stage.stage: stage.seconds for stage in report.stages}, _ended_at(report, outcome)))
    return report


def _ended_at(report: RunReport, outcome: str) -> str:
    """Where a run that was not published ended: the stage whose check failed, the stage it was running
    when it crashed or was stopped, or publish."""
    if outcome == "published":
        return ""
    if outcome == "failed":
        return report.stages[-1].stage
    return STAGES[len(report.stages)] if len(report.stages) < len(STAGES) else "publish"


def _run_stages(runner: Engine, audit: Audit, report: RunReport, expected_counts: Mapping[str, int],
                progress: Callable[[str], None]) -> None:
    """Run and check each stage in turn; stop at the first stage with a failed check."""
    try:
        for number, stage in enumerate(STAGES, start=1):
            started = time.perf_counter()
            runner.run_stage(stage, audit.landing, report.staging, report.consent_scope)
            ran = time.perf_counter()
            rows, checks, aside, drift = audit.audit(stage, report.consent_scope, expected_counts)
            stage_report = StageReport(stage, ran - started, time.perf_counter() - ran, rows, checks, aside, drift)
            report.stages.append(stage_report)
            progress(_progress_line(number, stage_report))
            if stage_report.failures:
                return
    finally:
        audit.close()
        runner.close()


def _progress_line(number: int, stage: StageReport) -> str:
    rows = ", ".join(f"{table} {n:,}" for table, n in stage.rows.items())
    passed = sum(r.status == "passed" for r in stage.checks)
    verdict = f"{len(stage.failures)} FAILED" if stage.failures else f"{passed} checks passed"
    return (f"[{number}/{len(STAGES)}] {stage.stage:<25} {stage.seconds:6.2f}s + checks {stage.check_seconds:5.2f}s  "
            f"{verdict}  ({rows})")


def run_history(lake: Lake, last: int = 20) -> list[dict]:
    """The last runs of the lake's history, newest first, each as one object (the figures of its manifest
    entry, published or not, and its failed checks)."""
    files = sorted(lake.history_dir.glob("*.parquet"))[-last:] if last > 0 else []
    if not files:
        return []
    con = duckdb.connect()
    rows = con.execute(f"SELECT * EXCLUDE (file_row_number) FROM read_parquet({duck.file_list(files)}, "
                       "file_row_number = true) ORDER BY run_id DESC, file_row_number").fetchall()
    columns = [d[0] for d in con.description]
    con.close()
    return history_entries(dict(zip(columns, values, strict=True)) for values in rows)
