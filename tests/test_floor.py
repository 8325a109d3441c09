"""The benchmark's floor runs the same five stage statements as the pipeline, so it publishes the same tables."""

import importlib.util
from pathlib import Path

import duckdb
from lakes import run

from stedi import duck
from stedi.generate import generate_lake
from stedi.lake import Lake
from stedi.stages import STAGES

FLOOR_SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "floor.py"


def load_floor():
    spec = importlib.util.spec_from_file_location("floor", FLOOR_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_floor_writes_the_tables_the_pipeline_publishes(tmp_path):
    generate_lake(tmp_path / "lake", scale=0.05, seed=3)
    lake = Lake(tmp_path / "lake")
    (tmp_path / "floor").mkdir()
    floor = load_floor()
    seconds = floor.run_floor(lake, tmp_path / "floor")
    report = run(lake, consent_scope=floor.CONSENT_SCOPE)
    assert report.published

    assert set(seconds) == set(STAGES) | {"write parquet"}
    con = duckdb.connect()
    staging = lake.staging(report.run_id)
    for stage in STAGES[1:]:
        floor_rows = f"SELECT * FROM read_parquet({duck.quote(tmp_path / 'floor' / f'{stage}.parquet')})"
        differing = duck.scalar(con, f"""SELECT count(*) FROM (
            ({floor_rows} EXCEPT ALL {duck.parquet_sql(staging / stage)})
            UNION ALL ({duck.parquet_sql(staging / stage)} EXCEPT ALL {floor_rows}))""")
        assert report.rows[stage] > 0 and differing == 0, stage
