"""The audit run after each stage: SQL queries with an expectation each.

The SQL is written in the dialect that Athena (Trino) and DuckDB share, so the
same text runs locally on DuckDB over the staged Parquet and in AWS on Athena
from the check Lambda. Every query returns one number. A query may use
:consent_scope, replaced by the run's scope as a string literal, and :schema,
replaced by the name of the schema the checked tables are in: DuckDB's `main`
locally, the staging database on Athena.

Tables visible to a check: every table written so far in the run, and
<source>_raw(line): the landing files of a source, one row per line.

Standard library only: the check Lambda ships this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping

from stedi.catalogue import FILTERING, SOURCE, SOURCES, STAGE, STAGE_LIST, STAGES, Stage, not_blank, with_consent_scope

# The largest share of a source's lines that may be rejected before the run
# stops: past it, an upload is broken rather than a little dirty.
MAX_REJECTED_SHARE = 0.25
# Where the local audit's views are: DuckDB's default schema.
LOCAL_SCHEMA = "main"


@dataclass(frozen=True)
class Zero:
    """The query must return 0 (it counts violations)."""


@dataclass(frozen=True)
class EqualsQuery:
    """The query must return what a second, independent query returns."""

    sql: str


@dataclass(frozen=True)
class Between:
    low: float
    high: float


@dataclass(frozen=True)
class SuppliedCount:
    """The table's row count must equal a count the caller supplies; skipped when none is."""


Expectation = Zero | EqualsQuery | Between | SuppliedCount


@dataclass(frozen=True)
class Check:
    stage: str
    table: str
    name: str
    sql: str
    expect: Expectation

    def render(self, sql: str, consent_scope: str, schema: str = LOCAL_SCHEMA) -> str:
        return with_consent_scope(sql, consent_scope).replace(":schema", "'" + schema.replace("'", "''") + "'")


@dataclass(frozen=True)
class CheckResult:
    stage: str
    table: str
    check: str
    status: str  # passed | failed | skipped
    expected: str
    actual: str

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def describe(self) -> str:
        return f"{self.table}.{self.check}: expected {self.expected}, got {self.actual}"


class CheckFailed(Exception):
    """One or more checks of a stage failed; the message names each one."""

    def __init__(self, stage: str, failures: list[CheckResult]):
        self.stage = stage
        self.failures = failures
        details = "; ".join(result.describe() for result in failures)
        super().__init__(f"stage {stage}: {len(failures)} check(s) failed: {details}")


def count(table: str, where: str = "") -> str:
    return f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")


def _landing_checks(source: str) -> list[Check]:
    landing, rejected = f"{source}_landing", f"{source}_rejected"
    # Non-blank lines, as the landing statement reads them (stedi.catalogue.not_blank). No engine reads a
    # line as NULL, but Athena's text table reads one that is exactly \N so: a line like any other.
    lines = count(SOURCE[source].raw_table, f"line IS NULL OR {not_blank('line')}")
    return [
        Check("landing", landing, "all_lines_accounted", lines,
              EqualsQuery(f"SELECT ({count(landing)}) + ({count(rejected)})")),
        # Over the staged counts, not the raw lines again: all_lines_accounted proves they agree.
        Check("landing", rejected, "rejected_share",
              f"SELECT CAST(({count(rejected)}) AS DOUBLE) / greatest(({count(landing)}) + ({count(rejected)}), 1)",
              Between(0, MAX_REJECTED_SHARE)),
        Check("landing", rejected, "reason_given",
              count(rejected, "reason IS NULL OR line IS NULL OR source_file IS NULL"), Zero()),
        Check("landing", rejected, "reason_known",
              count(rejected, f"reason NOT IN ({_sql_list(SOURCE[source].reject_reasons)})"), Zero()),
    ]


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def _rules_known(stage: Stage) -> Check:
    """Every record left out is counted under a rule the catalogue names for the stage."""
    return Check(stage.name, stage.filtered_table, "rule_known",
                 count(stage.filtered_table, f"rule NOT IN ({_sql_list(stage.rules)})"), Zero())


def _accounted(stage: str) -> Check:
    """Every input record of a filtering stage is either kept or counted under a rule."""
    return Check(stage, stage, "records_accounted", count(STAGE[stage].records_from),
                 EqualsQuery(f"SELECT ({count(stage)}) + "
                             f"(SELECT coalesce(sum(records), 0) FROM {STAGE[stage].filtered_table})"))


def _unique(stage: str, key: str) -> Check:
    return Check(stage, stage, f"unique_{key.lower()}", f"SELECT count(*) - count(DISTINCT {key}) FROM {stage}", Zero())


_NO_EXACT_DUPLICATES = ("SELECT count(*) FROM (SELECT {cols} FROM {table} GROUP BY {cols} "
                        "HAVING count(*) > 1) AS repeated")

_STAGE_CHECKS: list[Check] = [
    *(check for source in SOURCES for check in _landing_checks(source)),
    # customer_trusted
    Check("customer_trusted", "customer_trusted", "no_non_consenting_customer",
          count("customer_trusted", "shareWithResearchAsOfDate IS NULL"), Zero()),
    _unique("customer_trusted", "email"),
    Check("customer_trusted", "customer_trusted", "is_current_record",
          "SELECT count(*) FROM customer_trusted t JOIN customer_landing l "
          "ON l.email = t.email AND l.lastUpdateDate > t.lastUpdateDate", Zero()),
    Check("customer_trusted", "customer_trusted", "recount_from_landing", count("customer_trusted"),
          # Emails whose latest records all carry consent.
          EqualsQuery("SELECT count(DISTINCT l.email) FROM customer_landing l "
                      "WHERE NOT EXISTS (SELECT 1 FROM customer_landing newer WHERE newer.email = l.email "
                      "AND (newer.lastUpdateDate > l.lastUpdateDate OR (newer.lastUpdateDate = l.lastUpdateDate "
                      "AND newer.shareWithResearchAsOfDate IS NULL))) "
                      "AND l.shareWithResearchAsOfDate IS NOT NULL")),
    # accelerometer_trusted
    Check("accelerometer_trusted", "accelerometer_trusted", "parent_exists",
          'SELECT count(*) FROM accelerometer_trusted a '
          'WHERE NOT EXISTS (SELECT 1 FROM customer_trusted c WHERE c.email = a."user")', Zero()),
    Check("accelerometer_trusted", "accelerometer_trusted", "no_reading_outside_consent",
          'SELECT count(*) FROM accelerometer_trusted a JOIN customer_trusted c ON c.email = a."user" '
          "WHERE :consent_scope = 'reading' AND a.\"timestamp\" < c.shareWithResearchAsOfDate", Zero()),
    Check("accelerometer_trusted", "accelerometer_trusted", "no_exact_duplicates",
          _NO_EXACT_DUPLICATES.format(cols='"user", "timestamp", x, y, z', table="accelerometer_trusted"), Zero()),
    Check("accelerometer_trusted", "accelerometer_trusted", "recount_from_landing", count("accelerometer_trusted"),
          EqualsQuery('SELECT count(*) FROM (SELECT DISTINCT a."user", a."timestamp", a.x, a.y, a.z '
                      'FROM accelerometer_landing a JOIN customer_trusted c ON c.email = a."user" '
                      "WHERE :consent_scope = 'customer' OR a.\"timestamp\" >= c.shareWithResearchAsOfDate) AS kept")),
    # customer_curated
    _unique("customer_curated", "email"),
    Check("customer_curated", "customer_curated", "parent_exists",
          "SELECT count(*) FROM customer_curated c "
          "WHERE NOT EXISTS (SELECT 1 FROM customer_trusted t WHERE t.email = c.email)", Zero()),
    Check("customer_curated", "customer_curated", "recount_from_landing", count("customer_curated"),
          EqualsQuery('SELECT count(DISTINCT "user") FROM accelerometer_trusted')),
    # step_trainer_trusted
    Check("step_trainer_trusted", "step_trainer_trusted", "parent_exists",
          "SELECT count(*) FROM step_trainer_trusted s "
          "WHERE NOT EXISTS (SELECT 1 FROM customer_curated c WHERE c.serialNumber = s.serialNumber)", Zero()),
    Check("step_trainer_trusted", "step_trainer_trusted", "single_owner",
          "SELECT count(*) FROM step_trainer_trusted s WHERE s.serialNumber IN "
          "(SELECT serialNumber FROM customer_curated GROUP BY serialNumber HAVING count(*) > 1)", Zero()),
    Check("step_trainer_trusted", "step_trainer_trusted", "no_reading_outside_consent",
          "SELECT count(*) FROM step_trainer_trusted s JOIN customer_curated c ON c.serialNumber = s.serialNumber "
          "WHERE :consent_scope = 'reading' AND s.sensorReadingTime < c.shareWithResearchAsOfDate", Zero()),
    Check("step_trainer_trusted", "step_trainer_trusted", "no_exact_duplicates",
          _NO_EXACT_DUPLICATES.format(cols="sensorReadingTime, serialNumber, distanceFromObject",
                                      table="step_trainer_trusted"), Zero()),
    Check("step_trainer_trusted", "step_trainer_trusted", "recount_from_landing", count("step_trainer_trusted"),
          EqualsQuery("SELECT count(*) FROM (SELECT DISTINCT s.sensorReadingTime, s.serialNumber, s.distanceFromObject "
                      "FROM step_trainer_landing s JOIN customer_curated c ON c.serialNumber = s.serialNumber "
                      "WHERE (:consent_scope = 'customer' OR s.sensorReadingTime >= c.shareWithResearchAsOfDate) "
                      "AND s.serialNumber NOT IN (SELECT serialNumber FROM customer_curated "
                      "GROUP BY serialNumber HAVING count(*) > 1)) AS kept")),
    # machine_learning_curated
    Check("machine_learning_curated", "machine_learning_curated", "no_personal_columns",
          # A literal schema: Athena documents information_schema filtered by `table_schema = 'database'`.
          "SELECT count(*) FROM information_schema.columns WHERE table_schema = :schema "
          "AND table_name = 'machine_learning_curated' "
          "AND lower(column_name) IN ('email', 'user', 'customername', 'phone', 'birthday')", Zero()),
    Check("machine_learning_curated", "machine_learning_curated", "same_customer_pairs",
          # A reading paired with another customer's phone, or another instant, has no matching reading of its owner.
          "SELECT count(*) FROM machine_learning_curated m WHERE NOT EXISTS (SELECT 1 FROM customer_curated c "
          'JOIN accelerometer_trusted a ON a."user" = c.email WHERE c.serialNumber = m.serialNumber '
          'AND a."timestamp" = m.sensorReadingTime AND a."timestamp" = m."timestamp" '
          "AND a.x = m.x AND a.y = m.y AND a.z = m.z)", Zero()),
    Check("machine_learning_curated", "machine_learning_curated", "parent_exists",
          "SELECT count(*) FROM machine_learning_curated m WHERE NOT EXISTS (SELECT 1 FROM step_trainer_trusted s "
          "WHERE s.serialNumber = m.serialNumber AND s.sensorReadingTime = m.sensorReadingTime "
          "AND s.distanceFromObject = m.distanceFromObject)", Zero()),
    Check("machine_learning_curated", "machine_learning_curated", "recount_from_landing",
          count("machine_learning_curated"),
          # Pairs per instant: step trainer readings times the owner's phone readings.
          EqualsQuery("SELECT coalesce(sum(s.readings * a.readings), 0) FROM "
                      "(SELECT serialNumber, sensorReadingTime, count(*) AS readings FROM step_trainer_trusted "
                      "GROUP BY serialNumber, sensorReadingTime) s "
                      "JOIN customer_curated c ON c.serialNumber = s.serialNumber "
                      'JOIN (SELECT "user", "timestamp", count(*) AS readings FROM accelerometer_trusted '
                      'GROUP BY "user", "timestamp") a ON a."user" = c.email AND a."timestamp" = s.sensorReadingTime')),
]

# Checks every filtering stage gets, from what the catalogue says of it.
_FILTERING_CHECKS = [check for stage in STAGE_LIST if stage.kind == FILTERING
                     for check in (_accounted(stage.name), _rules_known(stage))]

# Every table a stage writes can be pinned to an exact row count by the caller.
_ROW_COUNT_CHECKS = [
    Check(stage.name, table, "row_count", count(table), SuppliedCount())
    for stage in STAGE_LIST
    for table in stage.record_tables
]

CHECKS: dict[str, tuple[Check, ...]] = {
    stage: tuple(c for c in [*_STAGE_CHECKS, *_FILTERING_CHECKS, *_ROW_COUNT_CHECKS] if c.stage == stage)
    for stage in STAGES
}


def run_checks(
    stage: str,
    query: Callable[[str], float | int | None],
    *,
    consent_scope: str,
    expected_counts: Mapping[str, int] | None = None,
    schema: str = LOCAL_SCHEMA,
) -> list[CheckResult]:
    """Run a stage's checks with `query` (SQL text -> the one number it returns) over the tables in `schema`."""
    expected_counts = expected_counts or {}
    results = []
    for check in CHECKS[stage]:
        expect = check.expect
        if isinstance(expect, SuppliedCount) and check.table not in expected_counts:
            results.append(CheckResult(stage, check.table, check.name, "skipped", "no count supplied", "-"))
            continue
        actual = query(check.render(check.sql, consent_scope, schema))
        if isinstance(expect, Zero):
            expected, passed = "0", actual == 0
        elif isinstance(expect, EqualsQuery):
            wanted = query(check.render(expect.sql, consent_scope, schema))
            expected, passed = str(wanted), actual == wanted
        elif isinstance(expect, Between):
            expected = f"between {expect.low} and {expect.high}"
            passed = actual is not None and expect.low <= actual <= expect.high
        else:
            wanted = int(expected_counts[check.table])
            expected, passed = str(wanted), actual == wanted
        results.append(CheckResult(stage, check.table, check.name, "passed" if passed else "failed",
                                   expected, _show(actual)))
    return results


# How many rows the query that shows a failed check's rows asks for: enough to see the pattern.
ROWS_SHOWN = 100
_COUNTED = re.compile(r"^SELECT count\(\*\) FROM (?P<rest>.+)$", re.DOTALL)
_REPEATED = re.compile(r"^SELECT count\(\*\) - count\(DISTINCT (?P<key>[^)]+)\) FROM (?P<table>\w+)$")


def offending_rows_sql(check: Check, consent_scope: str, schema: str = LOCAL_SCHEMA,
                       limit: int | None = ROWS_SHOWN) -> str:
    """One query, for a person, that shows the rows behind a check's figure rather than the figure.

    - `SELECT count(*) FROM <rest>`: `SELECT * FROM <rest>`. For a check that counts violations (it
      must return 0) those are the offending rows; for one that compares a count (a recount, an
      exact row count) they are the rows counted.
    - `SELECT count(*) - count(DISTINCT <key>) FROM <table>` (uniqueness): every key held by more
      than one row, or NULL, with its number of rows.
    - any other figure (a share of rejected lines): the rows of the check's table.

    Rendered as the check is (consent scope and schema), with at most `limit` rows (None: all).
    """
    repeated, counted = _REPEATED.match(check.sql), _COUNTED.match(check.sql)
    if repeated:
        key, table = repeated["key"], repeated["table"]
        sql = f"SELECT {key}, count(*) AS copies FROM {table} GROUP BY {key} HAVING count(*) > 1 OR {key} IS NULL"
    elif counted:
        sql = f"SELECT * FROM {counted['rest']}"
    else:
        sql = f"SELECT * FROM {check.table}"
    return check.render(sql + (f" LIMIT {limit}" if limit is not None else ""), consent_scope, schema)


def _show(value: float | int | None) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
