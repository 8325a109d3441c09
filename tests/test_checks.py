"""Every check passes on a good run and fails on the defect it exists to catch."""

import shutil

import duckdb
import pytest
from lakes import T0, customer, make_lake, reading, run, step

from stedi import duck
from stedi.checks import CHECKS
from stedi.pipeline import Audit

A, B, C = "a@test.com", "b@test.com", "c@test.com"

TWICE = "SELECT * FROM t UNION ALL SELECT * FROM t"

# (stage, check, table to corrupt, the corrupted table as a query over its good rows `t`)
DEFECTS = [
    ("landing", "all_lines_accounted", "customer_landing", "SELECT * FROM t LIMIT 2"),
    ("landing", "rejected_share", "accelerometer_rejected",
     "SELECT 'x' AS line, 'malformed_json' AS reason, 'f' AS source_file FROM range(100)"),
    ("landing", "reason_given", "step_trainer_rejected",
     "SELECT 'x' AS line, CAST(NULL AS VARCHAR) AS reason, 'f' AS source_file"),
    # A reason of no field, a reason of another source's field, a reason of no family.
    ("landing", "reason_known", "customer_rejected",
     "SELECT 'x' AS line, 'wrong_type:nickname' AS reason, 'f' AS source_file"),
    ("landing", "reason_known", "accelerometer_rejected",
     "SELECT 'x' AS line, 'missing_field:email' AS reason, 'f' AS source_file"),
    ("landing", "reason_known", "step_trainer_rejected",
     "SELECT 'x' AS line, 'malformed' AS reason, 'f' AS source_file"),
    ("customer_trusted", "rule_known", "customer_trusted_filtered", "SELECT 'stale' AS rule, records FROM t"),
    ("accelerometer_trusted", "rule_known", "accelerometer_trusted_filtered",
     "SELECT * REPLACE ('before_consent ' AS rule) FROM t"),
    ("customer_curated", "rule_known", "customer_curated_filtered",
     "SELECT 'no_readings' AS rule, CAST(1 AS BIGINT) AS records"),
    ("step_trainer_trusted", "rule_known", "step_trainer_trusted_filtered",
     "SELECT * REPLACE ('no_owner' AS rule) FROM t"),
    ("step_trainer_trusted", "rule_known", "step_trainer_trusted_filtered",  # a rule of another stage
     "SELECT 'superseded' AS rule, CAST(1 AS BIGINT) AS records"),
    ("customer_trusted", "no_non_consenting_customer", "customer_trusted",
     "SELECT * REPLACE (NULL AS shareWithResearchAsOfDate) FROM t"),
    ("customer_trusted", "unique_email", "customer_trusted", TWICE),
    ("customer_trusted", "is_current_record", "customer_trusted",
     "SELECT * REPLACE (lastUpdateDate - 1000 AS lastUpdateDate) FROM t"),
    ("customer_trusted", "recount_from_landing", "customer_trusted", "SELECT * FROM t LIMIT 1"),
    ("customer_trusted", "records_accounted", "customer_trusted_filtered",
     "SELECT rule, records + 1 AS records FROM t"),
    ("accelerometer_trusted", "parent_exists", "accelerometer_trusted",
     "SELECT * REPLACE ('nobody@test.com' AS \"user\") FROM t"),
    ("accelerometer_trusted", "no_reading_outside_consent", "accelerometer_trusted",
     "SELECT * REPLACE (\"timestamp\" - 1000000 AS \"timestamp\") FROM t"),
    ("accelerometer_trusted", "no_exact_duplicates", "accelerometer_trusted", TWICE),
    ("accelerometer_trusted", "recount_from_landing", "accelerometer_trusted", "SELECT * FROM t LIMIT 1"),
    ("accelerometer_trusted", "records_accounted", "accelerometer_trusted_filtered",
     "SELECT rule, records - 1 AS records FROM t"),
    ("customer_curated", "unique_email", "customer_curated", TWICE),
    ("customer_curated", "parent_exists", "customer_curated", "SELECT * REPLACE ('z@test.com' AS email) FROM t"),
    ("customer_curated", "recount_from_landing", "customer_curated", "SELECT * FROM t LIMIT 1"),
    ("customer_curated", "records_accounted", "customer_curated_filtered",
     "SELECT 'no_trusted_readings' AS rule, CAST(1 AS BIGINT) AS records"),
    ("step_trainer_trusted", "parent_exists", "step_trainer_trusted",
     "SELECT * REPLACE ('s-unknown' AS serialNumber) FROM t"),
    ("step_trainer_trusted", "single_owner", "customer_curated", "SELECT * REPLACE ('s-a' AS serialNumber) FROM t"),
    ("step_trainer_trusted", "no_reading_outside_consent", "step_trainer_trusted",
     "SELECT * REPLACE (sensorReadingTime - 1000000 AS sensorReadingTime) FROM t"),
    ("step_trainer_trusted", "no_exact_duplicates", "step_trainer_trusted", TWICE),
    ("step_trainer_trusted", "recount_from_landing", "step_trainer_trusted", "SELECT * FROM t LIMIT 1"),
    ("step_trainer_trusted", "records_accounted", "step_trainer_trusted_filtered",
     "SELECT rule, records * 2 AS records FROM t"),
    # Each personal column, as the customer records spell it.
    *(("machine_learning_curated", "no_personal_columns", "machine_learning_curated",
       f"SELECT *, 'a@test.com' AS \"{column}\" FROM t")
      for column in ("email", "user", "customerName", "phone", "birthDay")),
    # Each value that pairs a reading with its owner's phone at its instant: B's serial number is another curated
    # customer's, and nobody has a phone reading a millisecond after A's instant.
    *(("machine_learning_curated", "same_customer_pairs", "machine_learning_curated",
       f"SELECT * REPLACE ({value} AS {column}) FROM t")
      for column, value in (("x", "x + 7"), ("y", "y + 7"), ("z", "z + 7"), ('"timestamp"', '"timestamp" + 1'),
                            ("sensorReadingTime", "sensorReadingTime + 1"), ("serialNumber", "'s-b'"))),
    *(("machine_learning_curated", "parent_exists", "machine_learning_curated",
       f"SELECT * REPLACE ({value} AS {column}) FROM t")
      for column, value in (("distanceFromObject", "distanceFromObject + 1"),
                            ("sensorReadingTime", "sensorReadingTime + 1"), ("serialNumber", "'s-b'"))),
    ("machine_learning_curated", "recount_from_landing", "machine_learning_curated", "SELECT * FROM t LIMIT 1"),
]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    customers = [customer(A, "s-a", consent=T0 + 100), customer(B, "s-b", consent=T0), customer(C, "s-c", consent=None)]
    customers.append(customer(A, "s-a", updated=T0 - 5, consent=None))
    # At A's instant T0 + 100, readings that differ in one column only (x, y or z; the trainer's distance):
    # all distinct records, which the duplicate checks and the recounts must not take for repeats.
    readings = [reading(A, T0 + 99), reading(A, T0 + 100, 1, 0, 0), reading(A, T0 + 100, 0, 1, 0),
                reading(A, T0 + 100, 0, 0, 0), reading(A, T0 + 100, 0, 0, 1), reading(B, T0 + 300),
                reading(C, T0 + 100)]
    steps = [step("s-a", T0 + 99), step("s-a", T0 + 100), step("s-a", T0 + 100, 201), step("s-b", T0 + 300),
             step("s-c", T0 + 100)]
    lake = make_lake(root, customers, readings, steps)
    report = run(lake, consent_scope="reading")
    assert report.published
    return lake, report


def run_stage_checks(lake, staging, stage, expected_counts=None):
    audit = Audit(lake.snapshot(), staging)
    try:
        for earlier in CHECKS:  # make every table written up to this stage visible
            if earlier == stage:
                break
            audit.show(earlier)
        return audit.audit(stage, "reading", expected_counts or {})[1]
    finally:
        audit.close()


def test_every_check_passes_on_a_good_run(good_run):
    lake, report = good_run
    results = [r for r in report.checks if r.status != "skipped"]
    assert results and all(r.status == "passed" for r in results)
    assert report.rows["accelerometer_trusted"] == 4 + 1 and report.rows["step_trainer_trusted"] == 2 + 1
    # A's two trainer readings at T0 + 100, each with A's four phone readings; B's one reading with B's one.
    assert report.rows["machine_learning_curated"] == 2 * 4 + 1
    named = {(r.stage, r.check) for r in results}
    assert {(stage, check) for stage, check, _, _ in DEFECTS} <= named


def test_every_check_has_a_defect_that_fails_it():
    defended = {(stage, check) for stage, check, _, _ in DEFECTS}
    every = {(c.stage, c.name) for checks in CHECKS.values() for c in checks if c.name != "row_count"}
    assert every == defended


def corrupt(staging, table, corruption):
    """Replace a staged table by `corruption`, a query over its good rows `t`."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t AS {duck.parquet_sql(staging / table)}")
    shutil.rmtree(staging / table)
    (staging / table).mkdir()
    con.execute(f"COPY ({corruption}) TO {duck.quote(staging / table / 'part-0.parquet')} (FORMAT parquet)")


@pytest.mark.parametrize("stage, check, table, corruption", DEFECTS,
                         ids=[f"{d[0]}.{d[1]}-{n}" for n, d in enumerate(DEFECTS)])
def test_check_fails_on_its_defect(good_run, tmp_path, stage, check, table, corruption):
    lake, report = good_run
    staging = tmp_path / "staging"
    shutil.copytree(report.staging, staging)
    corrupt(staging, table, corruption)

    failed = {r.check for r in run_stage_checks(lake, staging, stage) if r.failed}
    assert check in failed


# A quarter of a source's lines may be rejected (README), not one line more.
@pytest.mark.parametrize("landed, rejected, fails", [(30, 10, False), (30, 11, True)])
def test_the_rejected_share_may_reach_a_quarter_and_no_more(good_run, tmp_path, landed, rejected, fails):
    lake, report = good_run
    staging = tmp_path / "staging"
    shutil.copytree(report.staging, staging)
    corrupt(staging, "accelerometer_landing", f"SELECT t.* FROM (SELECT * FROM t LIMIT 1) t, range({landed})")
    corrupt(staging, "accelerometer_rejected",
            f"SELECT 'x' AS line, 'malformed_json' AS reason, 'f' AS source_file FROM range({rejected})")

    results = {(r.table, r.check): r.failed for r in run_stage_checks(lake, staging, "landing")}
    assert results["accelerometer_rejected", "rejected_share"] is fails


def test_a_supplied_row_count_is_enforced(good_run):
    lake, report = good_run
    results = run_stage_checks(lake, report.staging, "customer_trusted",
                               expected_counts={"customer_trusted": report.rows["customer_trusted"] + 1})
    (row_count,) = [r for r in results if r.check == "row_count"]
    assert row_count.failed
    assert row_count.describe() == (f"customer_trusted.row_count: expected {report.rows['customer_trusted'] + 1}, "
                                    f"got {report.rows['customer_trusted']}")
