"""The benchmark's bare floor, a plain program written apart from the pipeline, computes the tables it publishes."""

import importlib.util
from pathlib import Path

import duckdb
from lakes import T0, customer, make_lake, reading, run, step

from stedi import duck
from stedi.catalogue import FILTERING, PLAIN, STAGE_LIST
from stedi.generate import generate_lake
from stedi.lake import Lake

BARE_FLOOR_SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bare_floor.py"
PUBLISHED = [stage.name for stage in STAGE_LIST if stage.kind in (FILTERING, PLAIN)]


def load_bare_floor():
    spec = importlib.util.spec_from_file_location("bare_floor", BARE_FLOOR_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_bare_floor_publishes_the_same(lake: Lake, out: Path) -> None:
    out.mkdir()
    seconds = load_bare_floor().run_bare_floor(lake.root, out)
    report = run(lake, consent_scope="reading")  # the bare floor's scope
    assert report.published
    assert list(seconds) == PUBLISHED

    con = duckdb.connect()
    staging = lake.staging(report.run_id)
    for table in PUBLISHED:
        bare_rows = f"SELECT * FROM read_parquet({duck.quote(out / f'{table}.parquet')})"
        pipeline_rows = duck.parquet_sql(staging / table)
        columns = [con.execute(f"DESCRIBE {sql}").fetchall() for sql in (bare_rows, pipeline_rows)]
        assert columns[0] == columns[1], table
        differing = duck.scalar(con, f"""SELECT count(*) FROM (
            ({bare_rows} EXCEPT ALL {pipeline_rows}) UNION ALL ({pipeline_rows} EXCEPT ALL {bare_rows}))""")
        assert report.rows[table] > 0 and differing == 0, table


def test_the_bare_floor_writes_the_tables_the_pipeline_publishes_from_a_generated_lake(tmp_path):
    generate_lake(tmp_path / "lake", scale=0.05, seed=3)
    assert_bare_floor_publishes_the_same(Lake(tmp_path / "lake"), tmp_path / "bare")


def test_the_bare_floor_writes_the_tables_the_pipeline_publishes_from_the_starter_data(starter_lake, tmp_path):
    assert_bare_floor_publishes_the_same(starter_lake, tmp_path / "bare")


def test_the_bare_floor_follows_the_rules_the_generated_and_starter_data_do_not_exercise(tmp_path):
    """Neither lake repeats an email or shares a serial number: these cases are made by hand."""
    customers = [
        customer("a@test.com", "s-a", updated=T0), customer("a@test.com", "s-a", updated=T0 + 10, consent=T0 + 5),
        customer("b@test.com", "s-b", updated=T0), customer("b@test.com", "s-b", updated=T0 + 10, consent=None),
        customer("c@test.com", "s-c", updated=T0 + 10), customer("c@test.com", "s-c", updated=T0 + 10, consent=None),
        customer("d@test.com", "s-d", updated=T0 + 10, phone="1"),
        customer("d@test.com", "s-d", updated=T0 + 10, consent=T0 + 3, phone="2"),
        customer("e@test.com", "s-shared"), customer("f@test.com", "s-shared"),
        customer("g@test.com", "s-g"), customer("h@test.com", "s-h", consent=None),
    ]
    readings = [
        reading("a@test.com", T0 + 4), reading("a@test.com", T0 + 5), reading("a@test.com", T0 + 5),
        reading("a@test.com", T0 + 5, x=1.0), reading("a@test.com", T0 + 20),
        reading("d@test.com", T0 + 1), reading("d@test.com", T0 + 20),
        *(reading(f"{who}@test.com", T0 + 20) for who in ("b", "c", "e", "f", "h", "unknown")),
    ]
    steps = [
        step("s-a", T0 + 4), step("s-a", T0 + 5), step("s-a", T0 + 5), step("s-a", T0 + 5, distance=1),
        step("s-a", T0 + 30),
        *(step(serial, T0 + 20) for serial in ("s-a", "s-b", "s-c", "s-d", "s-shared", "s-g", "s-h", "s-unknown")),
    ]
    assert_bare_floor_publishes_the_same(make_lake(tmp_path / "lake", customers, readings, steps), tmp_path / "bare")
