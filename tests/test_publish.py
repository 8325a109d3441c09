"""Write, audit, publish: only a fully checked run is published, all tables at once."""

import pytest
from lakes import T0, customer, make_lake, published, reading, run, step

from stedi.engines import DuckDBEngine
from stedi.lake import KEEP_PUBLISHED


@pytest.fixture
def lake(tmp_path):
    customers = [customer("a@test.com", "s-a"), customer("b@test.com", "s-b", consent=None)]
    readings = [reading("a@test.com", T0 + i, i, 0, 0) for i in range(5)] + [reading("b@test.com", T0)]
    steps = [step("s-a", T0 + i) for i in range(5)]
    return make_lake(tmp_path, customers, readings, steps)


def snapshot(lake):
    """Every published table's rows, sorted, by table name."""
    tables = lake.published()["current"]["tables"]
    return {table: sorted(published(lake, f"SELECT * FROM {table}"), key=repr) for table in tables}


def test_a_failed_check_publishes_nothing_and_keeps_the_previous_tables(lake):
    first = run(lake)
    before = snapshot(lake)

    failed = run(lake, expected_counts={"accelerometer_trusted": 999})

    assert not failed.published
    assert [r.describe() for r in failed.failures] == ["accelerometer_trusted.row_count: expected 999, got 5"]
    assert [s.stage for s in failed.stages][-1] == "accelerometer_trusted"  # stopped where it failed
    assert lake.published()["current"]["run_id"] == first.run_id
    assert snapshot(lake) == before
    assert failed.staging.is_dir()  # kept for inspection


def test_an_interrupted_run_leaves_the_published_tables_untouched(lake, monkeypatch):
    first = run(lake)
    before = snapshot(lake)
    original = DuckDBEngine.run_stage

    def crash_at_curated(self, stage, *args):
        if stage == "customer_curated":
            raise KeyboardInterrupt
        return original(self, stage, *args)

    monkeypatch.setattr(DuckDBEngine, "run_stage", crash_at_curated)
    with pytest.raises(KeyboardInterrupt):
        run(lake)
    assert lake.published()["current"]["run_id"] == first.run_id
    assert snapshot(lake) == before


def test_a_rerun_on_the_same_landing_data_publishes_identical_tables(lake):
    run(lake)
    first = snapshot(lake)
    run(lake)
    assert snapshot(lake) == first
    assert published(lake, "SELECT count(*) FROM accelerometer_trusted") == [(5,)]


def test_the_last_few_published_runs_are_kept_and_older_ones_deleted(lake):
    runs = [run(lake) for _ in range(KEEP_PUBLISHED + 2)]
    manifest = lake.published()
    kept = [manifest["current"]["run_id"]] + [entry["run_id"] for entry in manifest["history"]]
    assert kept == [r.run_id for r in reversed(runs)][:KEEP_PUBLISHED]
    assert sorted(p.name for p in (lake.root / "runs").iterdir()) == sorted(kept)


def test_the_manifest_records_rows_rules_and_checks(lake):
    report = run(lake)
    current = lake.published()["current"]
    assert current["run_id"] == report.run_id
    assert current["tables"]["customer_trusted"] == 1
    assert current["filtered"]["accelerometer_trusted"] == {"no_consent": 1}
    assert current["checks"]["failed"] == 0
    assert current["checks"]["passed"] == sum(r.status == "passed" for r in report.checks) > 20
