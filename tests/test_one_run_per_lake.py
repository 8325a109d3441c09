"""One run at a time per lake, and each run reads the landing files as they were when it started."""

import json
import os
import socket
import subprocess
import sys

import pytest
from lakes import T0, customer, make_lake, published, reading, run, step, write_landing

from stedi.cli import main
from stedi.engines import DuckDBEngine
from stedi.generate import generate_lake
from stedi.lake import Lake, LakeBusy


@pytest.fixture
def lake(tmp_path):
    return make_lake(tmp_path, [customer("a@test.com", "s-a")], [reading("a@test.com", T0)], [step("s-a", T0)])


def hold(lake: Lake, pid: int, run_id: str = "20261128T000000000000Z") -> None:
    lake.lock_path.write_text(json.dumps({"run_id": run_id, "pid": pid, "host": socket.gethostname(),
                                          "since": "2026-11-28T00:00:00Z"}))


def finished_process_id() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_second_run_is_refused_while_a_live_run_holds_the_lake(lake, capsys):
    hold(lake, os.getpid())
    assert main(["run", "--lake", str(lake.root)]) == 2
    assert capsys.readouterr().err == (
        f"stedi: lake {lake.root} is in use by run 20261128T000000000000Z (process {os.getpid()} on "
        f"{socket.gethostname()}, since 2026-11-28T00:00:00Z); if no run is going on, delete {lake.lock_path}\n")
    assert lake.published() is None
    assert not (lake.root / "runs").exists()  # nothing of the refused run was written


def test_a_lock_left_by_a_killed_run_is_taken_over(lake):
    hold(lake, finished_process_id())
    report = run(lake)
    assert report.published
    assert not lake.lock_path.exists()  # released
    assert not list(lake.root.glob(".stedi-run.lock*"))


def test_a_lock_held_on_another_machine_is_never_taken_over(lake):
    lake.lock_path.write_text(json.dumps({"run_id": "r", "pid": 1, "host": "another-host", "since": "?"}))
    with pytest.raises(LakeBusy, match="process 1 on another-host"):
        run(lake)


def test_the_lock_is_released_when_a_check_fails_or_the_run_crashes(lake, monkeypatch):
    assert not run(lake, expected_counts={"customer_trusted": 7}).published
    assert not lake.lock_path.exists()
    monkeypatch.setattr(DuckDBEngine, "run_stage", lambda *args: (_ for _ in ()).throw(MemoryError()))
    with pytest.raises(MemoryError):
        run(lake)
    assert not lake.lock_path.exists()


def test_two_runs_started_together_never_both_work_on_the_lake(tmp_path):
    generate_lake(tmp_path / "lake", scale=0.05, seed=3)
    command = [sys.executable, "-m", "stedi.cli", "run", "--lake", str(tmp_path / "lake")]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(process.wait(), process.stderr.read()) for process in runs]
    codes = sorted(code for code, _ in results)
    # Either one ran while the other was refused, or one had finished before the other began.
    assert codes in ([0, 0], [0, 2]), results
    if codes == [0, 2]:
        assert "is in use by run" in [err for code, err in results if code == 2][0]
    manifest = Lake(tmp_path / "lake").published()
    staged = {p.name for p in (tmp_path / "lake" / "runs").iterdir()}
    assert manifest["current"]["run_id"] in staged


def test_a_file_landing_during_a_run_waits_for_the_next_run(lake, monkeypatch):
    original = DuckDBEngine.run_stage

    def upload_after_landing(self, stage, *args):
        original(self, stage, *args)
        if stage == "landing":
            write_landing(lake.root, "accelerometer", [reading("a@test.com", T0 + 1)], name="late.json")

    monkeypatch.setattr(DuckDBEngine, "run_stage", upload_after_landing)
    first = run(lake)
    assert first.published, [f.describe() for f in first.failures]  # the late file does not unbalance the checks
    assert first.rows["accelerometer_landing"] == 1

    monkeypatch.setattr(DuckDBEngine, "run_stage", original)
    second = run(lake)
    assert second.rows["accelerometer_landing"] == 2
    assert published(lake, "SELECT count(*) FROM accelerometer_landing WHERE source_file LIKE '%late.json'") == [(1,)]

