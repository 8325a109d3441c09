"""The `stedi` command line, as a user runs it."""

import json
import subprocess
import sys

import pytest
from lakes import T0, customer, make_lake, reading, step

from stedi.cli import main
from stedi.stages import TABLES


def stedi(*args: str) -> subprocess.CompletedProcess:
    """Run the installed console script in its own process."""
    return subprocess.run([sys.executable, "-m", "stedi.cli", *args], capture_output=True, text=True)


@pytest.fixture
def small_lake(tmp_path):
    customers = [customer("a@test.com", "s-a"), customer("b@test.com", "s-b", consent=None)]
    return make_lake(tmp_path, customers, [reading("a@test.com", T0), reading("b@test.com", T0)], [step("s-a", T0)])


def test_run_on_an_empty_lake_generates_the_sample_first_then_publishes(tmp_path):
    result = stedi("run", "--lake", str(tmp_path / "lake"))
    assert result.returncode == 0, result.stderr
    assert "generating the sample lake first" in result.stdout
    assert "[6/6] machine_learning_curated" in result.stdout
    assert "checks: " in result.stdout and " 0 failed" in result.stdout
    assert "published run" in result.stdout


def test_status_json_lists_every_table_with_rows(small_lake, capsys):
    assert main(["run", "--lake", str(small_lake.root)]) == 0
    capsys.readouterr()
    assert main(["status", "--lake", str(small_lake.root), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert set(status) == set(TABLES)
    assert status["customer_landing"]["rows"] == 2
    assert status["customer_trusted"]["rows"] == 1
    assert status["accelerometer_rejected"]["rows"] == 0


def test_query_json_prints_row_objects(small_lake, capsys):
    main(["run", "--lake", str(small_lake.root)])
    capsys.readouterr()
    assert main(["query", "--lake", str(small_lake.root), "--json",
                 "SELECT email, serialNumber FROM customer_curated ORDER BY email"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"email": "a@test.com", "serialNumber": "s-a"}]


def test_a_failed_check_exits_non_zero_and_names_table_check_expected_actual(small_lake, capsys):
    code = main(["run", "--lake", str(small_lake.root), "--expect", "customer_trusted=7"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAILED customer_trusted.row_count: expected 7, got 1" in out
    assert "NOT published" in out


def test_clear_errors_for_bad_arguments_and_empty_state(tmp_path, small_lake, capsys):
    assert main(["status", "--lake", str(tmp_path / "nowhere")]) == 2
    assert "nothing is published" in capsys.readouterr().err
    assert main(["run", "--lake", str(small_lake.root), "--expect", "no_such_table=1"]) == 2
    assert "--expect 'no_such_table=1'" in capsys.readouterr().err
    assert main(["query", "--lake", str(small_lake.root), "SELECT 1"]) == 2
    main(["run", "--lake", str(small_lake.root)])
    capsys.readouterr()
    assert main(["query", "--lake", str(small_lake.root), "SELECT * FROM no_such_table"]) == 2
    assert "query failed" in capsys.readouterr().err


def test_a_lake_missing_a_source_is_refused(tmp_path, capsys):
    make_lake(tmp_path, [customer("a@test.com", "s-a")], [reading("a@test.com", T0)], [step("s-a", T0)])
    for path in (tmp_path / "step_trainer" / "landing").iterdir():
        path.unlink()
    assert main(["run", "--lake", str(tmp_path)]) == 2
    assert "no landing files in" in capsys.readouterr().err


def test_generate_is_deterministic_and_refuses_to_overwrite(tmp_path, capsys):
    assert main(["generate", "--lake", str(tmp_path / "one"), "--scale", "0.05", "--seed", "3", "--dirt"]) == 0
    assert main(["generate", "--lake", str(tmp_path / "two"), "--scale", "0.05", "--seed", "3", "--dirt"]) == 0
    for one in sorted((tmp_path / "one").rglob("*.json")):
        assert one.read_bytes() == (tmp_path / "two" / one.relative_to(tmp_path / "one")).read_bytes()
    assert main(["generate", "--lake", str(tmp_path / "one")]) == 2
    assert "already holds files" in capsys.readouterr().err
