"""The run history: every run, published or not, leaves its figures in the lake."""

import json

import pytest
from lakes import T0, customer, make_lake, reading, run, step

from stedi.cli import main
from stedi.engines import DuckDBEngine


@pytest.fixture
def lake(tmp_path):
    customers = [customer("a@test.com", "s-a"), customer("b@test.com", "s-b", consent=None)]
    readings = [reading("a@test.com", T0 + i) for i in range(3)] + ['{"user": "a@test.com", "timest']
    return make_lake(tmp_path, customers, readings, [step("s-a", T0), step("s-x", T0)])


def history(lake, capsys, *options):
    capsys.readouterr()
    assert main(["history", "--lake", str(lake.root), "--json", *options]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_published_run_has_the_figures_of_its_manifest_entry(lake, capsys):
    assert run(lake, consent_scope="customer").published
    [entry] = history(lake, capsys)
    manifest = lake.published()["current"]
    assert entry["outcome"] == "published" and entry["run_id"] == manifest["run_id"]
    assert entry["rows"] == manifest["tables"]
    for key in ("rejected", "filtered", "checks", "stage_seconds", "check_seconds", "engine", "consent_scope"):
        assert entry[key] == manifest[key], key
    assert entry["rejected"]["accelerometer"] == {"malformed_json": 1}
    assert entry["filtered"]["step_trainer_trusted"] == {"no_parent": 1}
    assert entry["filtered"]["customer_curated"] == {}


def test_failed_and_crashed_runs_are_kept_too_newest_first(lake, capsys, monkeypatch):
    published = run(lake)
    failed = run(lake, expected_counts={"accelerometer_trusted": 9})
    original = DuckDBEngine.run_stage

    def crash_at_curated(self, stage, *args):
        if stage == "customer_curated":
            raise RuntimeError("disk on fire")
        return original(self, stage, *args)

    monkeypatch.setattr(DuckDBEngine, "run_stage", crash_at_curated)
    with pytest.raises(RuntimeError):
        run(lake)

    crashed, failed_entry, published_entry = history(lake, capsys)
    assert [published_entry["run_id"], failed_entry["run_id"]] == [published.run_id, failed.run_id]
    assert (crashed["outcome"], failed_entry["outcome"], published_entry["outcome"]) == (
        "crashed", "failed", "published")
    assert failed_entry["failures"] == ["accelerometer_trusted.row_count: expected 9, got 3"]
    assert list(failed_entry["stage_seconds"]) == ["landing", "customer_trusted", "accelerometer_trusted"]
    assert list(crashed["stage_seconds"]) == ["landing", "customer_trusted", "accelerometer_trusted"]
    assert crashed["checks"]["failed"] == 0 and "customer_curated" not in crashed["rows"]
    assert (crashed["ended_at"], failed_entry["ended_at"], published_entry["ended_at"]) == (
        "customer_curated", "accelerometer_trusted", "")
    assert [entry["run_id"] for entry in history(lake, capsys, "--last", "1")] == [crashed["run_id"]]


@pytest.mark.parametrize("stop, outcome", [(RuntimeError("disk on fire"), "crashed"), (KeyboardInterrupt(), "stopped")])
def test_a_run_that_ended_before_its_first_stage_is_kept_too(lake, capsys, monkeypatch, stop, outcome):
    def end(self, stage, *args):
        raise stop

    monkeypatch.setattr(DuckDBEngine, "run_stage", end)
    with pytest.raises(type(stop)):
        run(lake)

    [ended] = history(lake, capsys)
    assert (ended["outcome"], ended["ended_at"]) == (outcome, "landing")
    assert ended["rows"] == {} and ended["stage_seconds"] == {} and ended["checks"]["passed"] == 0


def test_the_history_is_a_table_for_sql_and_a_summary_for_people(lake, capsys):
    run(lake)
    run(lake, expected_counts={"customer_trusted": 5})
    capsys.readouterr()
    assert main(["query", "--lake", str(lake.root), "--json",
                 "SELECT outcome, count(DISTINCT run_id) AS runs FROM history GROUP BY outcome ORDER BY outcome"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"outcome": "failed", "runs": 1},
                                                   {"outcome": "published", "runs": 1}]
    assert main(["history", "--lake", str(lake.root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["run", "outcome", "engine", "scope", "checks", "rejected", "filtered", "seconds"]
    assert lines[1].split()[1:3] == ["failed", "duckdb"]
    assert lines[2] == "  FAILED customer_trusted.row_count: expected 5, got 1"
    # 51 checks, of which the 11 exact row counts are skipped when no count is supplied
    assert lines[3].split()[1:7] == ["published", "duckdb", "reading", "40", "ok", "0"]


def test_no_history_yet_says_how_to_make_one(tmp_path, capsys):
    assert main(["history", "--lake", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"stedi: no run has been made in {tmp_path} yet: "
                                       f"run `stedi run --lake {tmp_path}`\n")


def test_keys_outside_the_schema_are_figures_of_the_history(tmp_path, capsys):
    readings = [{**reading("a@test.com", T0 + i), "tag": "t"} for i in range(3)] + [reading("a@test.com", T0 + 3)]
    lake = make_lake(tmp_path, [customer("a@test.com", "s-a")], readings, [step("s-a", T0)])
    assert run(lake).published
    [entry] = history(lake, capsys)
    assert entry["drift"] == {"accelerometer": {"tag": 3}}
    assert main(["query", "--lake", str(lake.root), "--json",
                 "SELECT subject, detail, value FROM history WHERE measure = 'drift'"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"subject": "accelerometer", "detail": "tag", "value": 3.0}]
