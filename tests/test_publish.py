"""Write, audit, publish: only a fully checked run is published, all tables at once."""

import hashlib

import duckdb
import pytest
from lakes import T0, customer, make_lake, published, reading, run, step

from stedi import duck
from stedi.catalogue import STAGE, TABLES
from stedi.engines import DuckDBEngine

# The stages in the order they run, each with one of its tables and the rows that table has in the
# `lake` below: A consents, B does not; A has 5 phone readings and 5 step readings, one per instant.
ORDER = ["landing", "customer_trusted", "accelerometer_trusted", "customer_curated", "step_trainer_trusted",
         "machine_learning_curated"]
ONE_TABLE = {"landing": ("accelerometer_landing", 6), "customer_trusted": ("customer_trusted", 1),
             "accelerometer_trusted": ("accelerometer_trusted", 5), "customer_curated": ("customer_curated", 1),
             "step_trainer_trusted": ("step_trainer_trusted", 5),
             "machine_learning_curated": ("machine_learning_curated", 5)}


def write_lake(root):
    customers = [customer("a@test.com", "s-a"), customer("b@test.com", "s-b", consent=None)]
    readings = [reading("a@test.com", T0 + i, i, 0, 0) for i in range(5)] + [reading("b@test.com", T0)]
    steps = [step("s-a", T0 + i) for i in range(5)]
    return make_lake(root, customers, readings, steps)


@pytest.fixture
def lake(tmp_path):
    return write_lake(tmp_path)


@pytest.fixture(scope="module")
def published_once(tmp_path_factory):
    """A lake with one published run, shared by tests that only add runs which must not publish."""
    lake = write_lake(tmp_path_factory.mktemp("lake"))
    assert run(lake).published
    return lake


def snapshot(lake):
    """Every published table's rows, sorted, by table name."""
    con = duckdb.connect()
    duck.view_tables(con, lake.published_staging(), TABLES)
    return {table: sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr) for table in TABLES}


def fingerprint(lake) -> dict[str, str]:
    """The manifest's bytes and those of every staged file, by path: what an untouched lake keeps."""
    files = [lake.manifest_path, *sorted(p for p in (lake.root / "runs").rglob("*") if p.is_file())]
    return {str(p.relative_to(lake.root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.parametrize("stage", ORDER)
def test_a_failed_check_at_any_stage_stops_the_run_there_and_publishes_nothing(published_once, stage):
    lake = published_once
    before = fingerprint(lake)
    table, rows = ONE_TABLE[stage]

    failed = run(lake, expected_counts={table: 999})

    assert not failed.published
    assert [r.describe() for r in failed.failures] == [f"{table}.row_count: expected 999, got {rows}"]
    assert [s.stage for s in failed.stages] == ORDER[: ORDER.index(stage) + 1]  # stopped where it failed
    later = {t for name in ORDER[ORDER.index(stage) + 1:] for t in STAGE[name].tables}
    assert not later & {p.name for p in failed.staging.iterdir()}  # and wrote nothing of the later stages
    after = fingerprint(lake)
    assert {path: digest for path, digest in after.items() if path in before} == before  # nothing changed or went
    assert any(path.startswith(f"runs/{failed.run_id}/") for path in after)  # kept for inspection


@pytest.mark.parametrize("stage", ORDER)
def test_a_run_interrupted_at_any_stage_leaves_the_published_tables_untouched(published_once, monkeypatch, stage):
    lake = published_once
    before = fingerprint(lake)  # the same bytes: the same tables
    original = DuckDBEngine.run_stage

    def crash(self, name, *args):
        if name == stage:
            raise KeyboardInterrupt
        return original(self, name, *args)

    monkeypatch.setattr(DuckDBEngine, "run_stage", crash)
    with pytest.raises(KeyboardInterrupt):
        run(lake)
    assert {path: digest for path, digest in fingerprint(lake).items() if path in before} == before


def test_a_rerun_on_the_same_landing_data_publishes_identical_tables(lake):
    run(lake)
    first = snapshot(lake)
    run(lake)
    assert snapshot(lake) == first
    assert published(lake, "SELECT count(*) FROM accelerometer_trusted") == [(5,)]


def test_the_last_three_published_runs_are_kept_and_older_ones_deleted(lake):
    runs = [run(lake) for _ in range(4)]
    manifest = lake.published()
    kept = [manifest["current"]["run_id"]] + [entry["run_id"] for entry in manifest["history"]]
    assert kept == [r.run_id for r in reversed(runs)][:3]
    assert sorted(p.name for p in (lake.root / "runs").iterdir()) == sorted(kept)


def test_a_failed_run_s_tables_are_kept_as_long_as_a_published_run_older_than_it(lake):
    published = [run(lake) for _ in range(3)]
    failed = run(lake, expected_counts={"customer_landing": 999})
    later = [run(lake) for _ in range(2)]  # the first two publishes go; the third, older than the failed run, stays
    assert {p.name for p in (lake.root / "runs").iterdir()} == {published[2].run_id, failed.run_id,
                                                               *(r.run_id for r in later)}
    last = run(lake)  # the third goes, and the failed run after it
    assert {p.name for p in (lake.root / "runs").iterdir()} == {*(r.run_id for r in later), last.run_id}


def test_a_run_that_failed_before_the_first_publish_is_kept_as_long_as_that_publish(lake):
    failed = run(lake, expected_counts={"customer_landing": 999})
    published = [run(lake) for _ in range(3)]
    assert {p.name for p in (lake.root / "runs").iterdir()} == {failed.run_id, *(r.run_id for r in published)}
    last = run(lake)  # the first publish is no longer kept, nor the failed run before it
    assert {p.name for p in (lake.root / "runs").iterdir()} == {*(r.run_id for r in published[1:]), last.run_id}


def test_the_manifest_records_rows_rules_and_checks(lake):
    report = run(lake)
    current = lake.published()["current"]
    assert current["run_id"] == report.run_id
    assert current["tables"]["customer_trusted"] == 1
    assert current["filtered"]["accelerometer_trusted"] == {"no_consent": 1}
    assert current["checks"]["failed"] == 0
    assert current["checks"]["passed"] == sum(r.status == "passed" for r in report.checks) > 20
