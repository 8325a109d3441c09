"""The `stedi` command line, as a user runs it."""

import json
import subprocess
import sys

import pytest
from lakes import T0, customer, make_lake, reading, step

from stedi.catalogue import DRIFT_TABLES, FILTERED_TABLES, TABLES
from stedi.cli import main
from stedi.pipeline import run_history


def stedi(*args: str) -> subprocess.CompletedProcess:
    """Run the installed console script in its own process."""
    return subprocess.run([sys.executable, "-m", "stedi.cli", *args], capture_output=True, text=True)


def write_small_lake(root):
    customers = [customer("a@test.com", "s-a"), customer("b@test.com", "s-b", consent=None)]
    return make_lake(root, customers, [reading("a@test.com", T0), reading("b@test.com", T0)], [step("s-a", T0)])


@pytest.fixture
def small_lake(tmp_path):
    return write_small_lake(tmp_path)


@pytest.fixture(scope="module")
def published_small_lake(tmp_path_factory):
    """The small lake after one published run, shared by the tests that only read it (status, query)."""
    lake = write_small_lake(tmp_path_factory.mktemp("lake"))
    assert main(["run", "--lake", str(lake.root)]) == 0
    return lake


def test_run_on_a_generated_lake_publishes(tmp_path):
    assert stedi("generate", "--lake", str(tmp_path / "lake"), "--scale", "0.05").returncode == 0
    result = stedi("run", "--lake", str(tmp_path / "lake"))
    assert result.returncode == 0, result.stderr
    assert "[6/6] machine_learning_curated" in result.stdout
    assert "checks: " in result.stdout and " 0 failed" in result.stdout
    assert "published run" in result.stdout


def test_run_on_a_lake_that_does_not_exist_says_so_and_creates_nothing(tmp_path):
    typo = tmp_path / "lkae"
    result = stedi("run", "--lake", str(typo))
    assert result.returncode == 2
    assert result.stderr == (f"stedi: lake {typo} does not exist: make a sample with "
                             f"`stedi generate --lake {typo}`\n")
    assert result.stdout == "" and not typo.exists()


def test_run_on_a_file_or_an_empty_folder_says_so(tmp_path, capsys):
    (tmp_path / "a-file").write_text("x")
    assert main(["run", "--lake", str(tmp_path / "a-file")]) == 2
    assert capsys.readouterr().err == f"stedi: lake {tmp_path / 'a-file'} is not a folder\n"
    (tmp_path / "empty").mkdir()
    assert main(["run", "--lake", str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err == (f"stedi: lake {tmp_path / 'empty'} has no landing files (<source>/landing/*): "
                                       f"make a sample with `stedi generate --lake {tmp_path / 'empty'}`\n")


def test_a_folder_or_a_broken_link_in_a_landing_folder_is_named_not_skipped(small_lake, capsys):
    folder = small_lake.landing_dir("customer") / "older"
    folder.mkdir()
    assert main(["run", "--lake", str(small_lake.root)]) == 2
    assert capsys.readouterr().err == (f"stedi: {folder} is a folder inside a landing folder: "
                                       "uploads are files; move it out\n")
    folder.rmdir()
    link = small_lake.landing_dir("accelerometer") / "gone.json"
    link.symlink_to(small_lake.root / "nowhere.json")
    assert main(["run", "--lake", str(small_lake.root)]) == 2
    assert capsys.readouterr().err == f"stedi: {link} cannot be read (a broken link?): remove it or fix the link\n"


@pytest.mark.parametrize("pair, message", [
    ("customer_trusted=-1", "--expect 'customer_trusted=-1': ROWS must be a whole number, 0 or more, not '-1'"),
    ("customer_trusted", "--expect 'customer_trusted': write TABLE=ROWS, e.g. customer_trusted=482"),
    ("customer_trusted_filtered=2", "--expect 'customer_trusted_filtered=2': no table 'customer_trusted_filtered'"),
])
def test_a_bad_expect_names_what_is_wrong_with_it(small_lake, capsys, pair, message):
    assert main(["run", "--lake", str(small_lake.root), "--expect", pair]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"stedi: {message}") and err.count("\n") == 1


def test_usage_errors_are_one_line(capsys):
    assert main(["run", "--engine", "pandas"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stedi: argument --engine: invalid choice: 'pandas'") and err.count("\n") == 1
    assert main([]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_version():
    result = stedi("--version")
    assert result.returncode == 0 and result.stdout.startswith("stedi ") and result.stdout.strip() != "stedi"


def test_an_unexpected_error_is_one_line_and_its_traceback_is_there_on_request(small_lake, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr("stedi.cli.run_pipeline", broken)
    assert main(["run", "--lake", str(small_lake.root)]) == 3
    assert capsys.readouterr().err == ("stedi: unexpected error: RuntimeError: disk on fire\n")
    assert main(["run", "--lake", str(small_lake.root), "--debug"]) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.endswith("stedi: unexpected error: RuntimeError: disk on fire\n")


def test_output_cut_short_by_its_reader_is_not_an_error(published_small_lake):
    reader = subprocess.Popen([sys.executable, "-m", "stedi.cli", "query", "--lake", str(published_small_lake.root),
                               "--json", "SELECT * FROM range(200000)"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader.stdout.read(10)
    reader.stdout.close()  # as `| head -c 10` does
    assert reader.wait() == 0
    assert reader.stderr.read() == b""


def test_a_run_read_only_in_part_still_runs_to_its_end(small_lake):
    runner = subprocess.Popen([sys.executable, "-m", "stedi.cli", "run", "--lake", str(small_lake.root)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert runner.stdout.readline().startswith(b"run ")
    runner.stdout.close()  # as `| head -1` does, while the run goes on
    assert runner.wait() == 0
    assert runner.stderr.read() == b""
    [run] = run_history(small_lake)
    assert run["outcome"] == "published"
    assert json.loads((small_lake.root / "published.json").read_text())["current"]["run_id"] == run["run_id"]


def test_status_json_lists_every_table_of_records_with_rows(published_small_lake, capsys):
    assert main(["status", "--lake", str(published_small_lake.root), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    # The per-rule counts are shown by `run`; the keys outside a schema beside the landing table they concern.
    assert set(status) == set(TABLES) - set(FILTERED_TABLES) - set(DRIFT_TABLES)
    assert status["customer_landing"]["rows"] == 2 and status["customer_landing"]["unknown_keys"] == {}
    assert status["customer_trusted"]["rows"] == 1
    assert status["accelerometer_rejected"]["rows"] == 0


def test_query_json_prints_row_objects(published_small_lake, capsys):
    assert main(["query", "--lake", str(published_small_lake.root), "--json",
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
    assert main(["query", "--lake", str(small_lake.root), "SELECT 1"]) == 2
    assert "nothing is published" in capsys.readouterr().err
    main(["run", "--lake", str(small_lake.root)])
    capsys.readouterr()
    assert main(["query", "--lake", str(small_lake.root), "SELECT * FROM no_such_table"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stedi: query failed: Catalog Error: Table with name no_such_table does not exist")
    assert err.count("\n") == 1
    assert main(["query", "--lake", str(small_lake.root), "  "]) == 2
    assert capsys.readouterr().err.startswith("stedi: query: no SQL given")


def test_query_prints_an_aligned_table(published_small_lake, capsys):
    assert main(["query", "--lake", str(published_small_lake.root), "SELECT email, serialNumber FROM customer_landing "
                 "ORDER BY email"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if "a@test.com" in line or "b@test.com" in line] == [
        "│ a@test.com │ s-a          │", "│ b@test.com │ s-b          │"]


def test_query_a_failed_run_by_its_id(small_lake, capsys):
    assert main(["run", "--lake", str(small_lake.root), "--expect", "customer_trusted=5"]) == 1
    out = capsys.readouterr().out
    run_id = out.split("inspection in ")[1].split()[0].rsplit("/", 1)[1]
    assert main(["query", "--lake", str(small_lake.root), "--run", run_id, "--json",
                 "SELECT count(*) AS n FROM customer_trusted"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 1}]
    assert main(["query", "--lake", str(small_lake.root), "--run", "nope", "SELECT 1"]) == 2
    assert capsys.readouterr().err == f"stedi: no run 'nope' in {small_lake.root}; runs kept: {run_id}\n"


def test_status_shows_audit_tables_apart(published_small_lake, capsys):
    assert main(["status", "--lake", str(published_small_lake.root)]) == 0
    tables, audit = capsys.readouterr().out.split("audit tables")
    assert "customer_curated" in tables and "_rejected" not in tables and "_filtered" not in tables
    assert "  customer_trusted_filtered                   1  records filtered, counted by rule" in audit
    assert "  customer_rejected                           0  lines rejected" in audit


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


def test_the_spark_engine_without_pyspark_says_what_to_install_and_leaves_nothing(small_lake, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)  # as if pyspark were not installed
    monkeypatch.setenv("JAVA_HOME", "/opt/java")  # the Java check passes, so the pyspark check is reached
    assert main(["run", "--lake", str(small_lake.root), "--engine", "spark"]) == 2
    assert capsys.readouterr().err == ("stedi: the Spark engine needs pyspark: pip install 'stedi-lakehouse[spark]' "
                                       "(or run with --engine duckdb)\n")
    assert not (small_lake.root / "runs").exists() and not small_lake.lock_path.exists()
