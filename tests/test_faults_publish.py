"""Publishing under faults: a write that dies half-way, a full disk, a kill before or after the rename.

Whatever breaks, readers keep a manifest they can parse and every table of
every run it names; nothing is deleted until a new manifest is in place.
"""

import errno
import json
import shutil
from pathlib import Path

import duckdb
import pytest
from lakes import T0, customer, make_lake, reading, run, step

from stedi import duck
from stedi.lake import Lake


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A lake with three published runs, a failed run's staging between the first two, and a checked run
    ready to publish (its entry): publishing it drops the oldest published run and, with it, the failed run."""
    lake = make_lake(tmp_path_factory.mktemp("lake"), [customer("a@test.com", "s-a")],
                     [reading("a@test.com", T0 + i, i) for i in range(3)], [step("s-a", T0 + i) for i in range(3)])
    assert run(lake).published
    assert not run(lake, expected_counts={"customer_landing": 9}).published
    assert run(lake).published
    assert run(lake).published
    entries = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Lake, "publish", lambda self, entry: entries.append(entry))
        run(lake)
    return lake, entries[0]


@pytest.fixture
def lake(prepared, tmp_path):
    """A copy of the prepared lake, and the entry to publish in it."""
    source, entry = prepared
    shutil.copytree(source.root, tmp_path / "lake")
    return Lake(tmp_path / "lake"), entry


def staged(lake: Lake) -> set[str]:
    return {path.name for path in (lake.root / "runs").iterdir()}


def assert_readable(lake: Lake) -> None:
    """The manifest parses, and every table of every run it names reads back the rows it recorded."""
    manifest = json.loads(lake.manifest_path.read_text())
    for entry in [manifest["current"], *manifest["history"]]:
        con = duckdb.connect()
        duck.view_tables(con, lake.staging(entry["run_id"]), entry["tables"])
        for table, rows in entry["tables"].items():
            assert duck.scalar(con, f"SELECT count(*) FROM {table}") == rows, (entry["run_id"], table)


def dies_half_way(original):
    """A writer that writes half of what it is given, then finds the disk full."""
    def write(*args, **kwargs):
        data, rest = args[1], args[2:]
        original(args[0], data[: len(data) // 2], *rest, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")
    return write


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def half_written(monkeypatch):
    # Each way the manifest could be written: text, bytes, or dumped to an open file (json.dump(obj, file)).
    monkeypatch.setattr(Path, "write_text", dies_half_way(Path.write_text))
    monkeypatch.setattr(Path, "write_bytes", dies_half_way(Path.write_bytes))
    monkeypatch.setattr(json, "dump", lambda obj, file, **kw: dies_half_way(type(file).write)(file, json.dumps(obj)))


def nothing_written(monkeypatch):
    monkeypatch.setattr(Path, "write_text", disk_full)
    monkeypatch.setattr(Path, "write_bytes", disk_full)
    monkeypatch.setattr(json, "dump", disk_full)


def killed_before_the_rename(monkeypatch):
    def killed(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr("os.replace", killed)
    monkeypatch.setattr("os.rename", killed)


@pytest.mark.parametrize("fault, raised", [(half_written, OSError), (nothing_written, OSError),
                                           (killed_before_the_rename, KeyboardInterrupt)],
                         ids=["write-dies-half-way", "disk-full", "killed-before-the-rename"])
def test_a_publish_that_dies_before_the_rename_leaves_the_previous_one_whole(lake, monkeypatch, fault, raised):
    lake, entry = lake
    manifest, runs = lake.manifest_path.read_bytes(), staged(lake)
    fault(monkeypatch)
    with pytest.raises(raised):
        lake.publish(entry)
    monkeypatch.undo()
    assert lake.manifest_path.read_bytes() == manifest
    assert_readable(lake)
    assert staged(lake) == runs  # nothing deleted: not the failed run's staging, not the new run's


def test_a_publish_killed_between_the_rename_and_the_pruning_is_whole_and_the_next_one_prunes(lake, monkeypatch):
    lake, entry = lake
    before = lake.published()
    previous = before["current"]["run_id"]

    def killed(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        lake.publish(entry)
    monkeypatch.undo()

    manifest = lake.published()
    assert manifest["current"] == entry and [e["run_id"] for e in manifest["history"]] == [
        previous, before["history"][0]["run_id"]]
    assert_readable(lake)

    following = run(lake)
    assert following.published
    assert staged(lake) == {following.run_id, entry["run_id"], previous}  # the failed run's staging is gone
    assert_readable(lake)


def test_a_run_whose_publish_fails_says_so_and_releases_the_lake(lake, monkeypatch):
    lake, _ = lake
    manifest = lake.manifest_path.read_bytes()
    monkeypatch.setattr("os.replace", disk_full)  # only publishing renames: the run itself goes through
    with pytest.raises(OSError, match="No space left"):
        run(lake)
    monkeypatch.undo()
    assert lake.manifest_path.read_bytes() == manifest
    assert not lake.lock_path.exists()
    assert run(lake).published
