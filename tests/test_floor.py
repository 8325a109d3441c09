"""The benchmark's bare programs, written apart from the pipeline, compute the tables it publishes.

The bare floor (bench/bare_floor.py, DuckDB) and the bare Spark script (bench/bare_spark.py).
"""

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Callable

import duckdb
import pytest
from lakes import T0, customer, make_lake, reading, run, step

from stedi import duck
from stedi.catalogue import FILTERING, PLAIN, SOURCES, STAGE_LIST
from stedi.generate import generate_lake
from stedi.lake import Lake

BARE_FLOOR_SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bare_floor.py"
BARE_SPARK_SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bare_spark.py"
PUBLISHED = [stage.name for stage in STAGE_LIST if stage.kind in (FILTERING, PLAIN)]


def load_bare_floor():
    spec = importlib.util.spec_from_file_location("bare_floor", BARE_FLOOR_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bare_floor(lake: Path, out: Path) -> list[str]:
    """Run the bare floor in this process: the tables it timed, in order."""
    return list(load_bare_floor().run_bare_floor(lake, out))


def bare_spark(lake: Path, out: Path, *options: str) -> list[str]:
    """Run the bare Spark script as the benchmark does, a process of its own: the tables it timed, in order."""
    done = subprocess.run([sys.executable, str(BARE_SPARK_SCRIPT), "--lake", str(lake), "--out", str(out), *options],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    timed = [line.split()[0] for line in lines[lines.index("seconds") + 1:]]
    assert timed[-1] == "total"
    return timed[:-1]


def bare_rows_sql(out: Path, table: str) -> str:
    """A table as the bare floor writes it (<table>.parquet) or as Spark does (a folder <table> of part files)."""
    single = out / f"{table}.parquet"
    return f"SELECT * FROM read_parquet({duck.quote(single)})" if single.is_file() else duck.parquet_sql(out / table)


def assert_bare_program_publishes_the_same(lake: Lake, out: Path,
                                           bare_program: Callable[[Path, Path], list[str]] = bare_floor) -> None:
    """`bare_program` writes into `out` the five tables the pipeline publishes, column by column and row by row."""
    out.mkdir()
    timed = bare_program(lake.root, out)
    report = run(lake, consent_scope="reading")  # the bare programs' scope
    assert report.published
    assert timed == PUBLISHED

    con = duckdb.connect()
    staging = lake.staging(report.run_id)
    for table in PUBLISHED:
        bare_rows = bare_rows_sql(out, table)
        pipeline_rows = duck.parquet_sql(staging / table)
        columns = [con.execute(f"DESCRIBE {sql}").fetchall() for sql in (bare_rows, pipeline_rows)]
        assert columns[0] == columns[1], table
        differing = duck.scalar(con, f"""SELECT count(*) FROM (
            ({bare_rows} EXCEPT ALL {pipeline_rows}) UNION ALL ({pipeline_rows} EXCEPT ALL {bare_rows}))""")
        assert report.rows[table] > 0 and differing == 0, table


def test_the_bare_floor_writes_the_tables_the_pipeline_publishes_from_a_generated_lake(tmp_path):
    generate_lake(tmp_path / "lake", scale=0.05, seed=3)
    assert_bare_program_publishes_the_same(Lake(tmp_path / "lake"), tmp_path / "bare")


def test_the_bare_floor_writes_the_tables_the_pipeline_publishes_from_the_starter_data(starter_lake, tmp_path):
    assert_bare_program_publishes_the_same(starter_lake, tmp_path / "bare")


def hand_made_lake(root: Path) -> Lake:
    """The cases neither the generated lakes nor the starter data have: repeated emails, a shared serial number."""
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
    return make_lake(root, customers, readings, steps)


def test_the_bare_floor_follows_the_rules_the_generated_and_starter_data_do_not_exercise(tmp_path):
    assert_bare_program_publishes_the_same(hand_made_lake(tmp_path / "lake"), tmp_path / "bare")


def bare_spark_staging_landing(lake: Path, out: Path) -> list[str]:
    """The bare Spark script with --stage-landing: each source's landing table first, then the five tables."""
    timed = bare_spark(lake, out, "--stage-landing")
    staged = [table for table in timed if table.endswith("_landing")]
    assert sorted(staged) == sorted(f"{source}_landing" for source in SOURCES) and timed[:3] == staged
    return timed[3:]


@pytest.mark.spark
@pytest.mark.parametrize("program", [bare_spark, bare_spark_staging_landing])
def test_the_bare_spark_script_writes_the_tables_the_pipeline_publishes(tmp_path, program):
    """On the hand-made lake, whose cases each of its Spark SQL statements must get right; one Spark start."""
    assert_bare_program_publishes_the_same(hand_made_lake(tmp_path / "lake"), tmp_path / "bare", program)
