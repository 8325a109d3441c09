"""DuckDB and Spark publish identical tables from the same stage SQL, compared row by row."""

from pathlib import Path

import duckdb
import pytest
from lakes import STARTER, run

from stedi import duck
from stedi.catalogue import SOURCES, TABLES
from stedi.generate import generate_lake
from stedi.lake import Lake
from stedi.pipeline import RunReport

pytestmark = pytest.mark.spark


def lake_over(root: Path, landing_root: Path) -> Lake:
    """A fresh lake whose landing folders are links to another lake's."""
    for source in SOURCES:
        (root / source).mkdir(parents=True)
        (root / source / "landing").symlink_to(landing_root / source / "landing", target_is_directory=True)
    return Lake(root)


def differences(a: Lake, b: Lake) -> dict[str, int]:
    """Per table, the rows found in one lake's published table and not the other's (multiset)."""
    con = duckdb.connect()
    found = {}
    for name, lake in (("a", a), ("b", b)):
        staging = lake.staging(lake.published()["current"]["run_id"])
        for table in TABLES:
            con.execute(f"CREATE VIEW {name}_{table} AS {duck.parquet_sql(staging / table)}")
    for table in TABLES:
        found[table] = duck.scalar(con, f"""SELECT count(*) FROM (
            (SELECT * FROM a_{table} EXCEPT ALL SELECT * FROM b_{table})
            UNION ALL (SELECT * FROM b_{table} EXCEPT ALL SELECT * FROM a_{table}))""")
    return found


def assert_engines_agree(tmp_path: Path, landing_root: Path, scope: str) -> RunReport:
    reports = {}
    for engine in ("duckdb", "spark"):
        lake = lake_over(tmp_path / engine, landing_root)
        reports[engine] = run(lake, engine=engine, consent_scope=scope)
        assert reports[engine].published, [f.describe() for f in reports[engine].failures]
    assert reports["duckdb"].rows == reports["spark"].rows
    assert reports["duckdb"].rejected == reports["spark"].rejected
    assert reports["duckdb"].filtered == reports["spark"].filtered
    assert reports["duckdb"].drift == reports["spark"].drift
    diff = differences(Lake(tmp_path / "duckdb"), Lake(tmp_path / "spark"))
    assert diff == {table: 0 for table in TABLES}
    return reports["spark"]


@pytest.mark.parametrize("scope", ["reading", "customer"])
def test_starter_data(tmp_path, scope):
    if not STARTER.is_dir():
        pytest.skip(f"starter data not found at {STARTER} (it comes with ../shared beside the project)")
    assert_engines_agree(tmp_path, STARTER, scope)


# Every rule of every stage, as the README names them: generated lakes with edges meet each one.
RULES = {"customer_trusted": {"superseded", "no_consent"},
         "accelerometer_trusted": {"no_parent", "no_consent", "before_consent", "duplicate"},
         "customer_curated": {"no_trusted_readings"},
         "step_trainer_trusted": {"no_parent", "no_consent", "no_trusted_readings", "ambiguous_owner",
                                  "before_consent", "duplicate"}}


@pytest.mark.parametrize("dirt", [False, True], ids=["clean", "dirty"])
def test_generated_lake_with_edges(tmp_path, dirt):
    generate_lake(tmp_path / "generated", scale=0.3, seed=11, dirt=dirt, edges=True)
    report = assert_engines_agree(tmp_path, tmp_path / "generated", "reading")
    # Without dirt no reading is of an unknown customer; with it, every rule applies.
    unknown = set() if dirt else {"no_parent"}
    assert {stage: set(rules) for stage, rules in report.filtered.items()} == {
        stage: rules - unknown for stage, rules in RULES.items()}
