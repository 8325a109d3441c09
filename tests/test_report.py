"""`stedi report`: one run as a page, rendered by headless Chromium, showing the figures the history holds."""

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from lakes import T0, customer, make_lake, reading, step, write_landing

from stedi.catalogue import LANDING_SOURCES
from stedi.cli import main
from stedi.engines import DuckDBEngine
from stedi.pipeline import run_history, run_pipeline
from stedi.report import example_files, render

pytestmark = pytest.mark.browser


class Figures(HTMLParser):
    """From the DOM Chromium renders: each funnel's figures, the stages' status, the failed checks' links,
    the keys outside each schema (under the funnels, a count per source; after the checks, a row per key)."""

    def __init__(self):
        super().__init__()
        self.funnels, self.stages, self.failure_links, self.check_rows = {}, {}, [], {}
        self.unknown_keys, self.drift = {}, {}  # source -> count; source -> key -> (lines, *example file)
        self._source = self._figure = self._stage = self._check = self._drift = None
        self._cells = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "data-source" in attrs:
            self._source = attrs["data-source"]
            self.funnels[self._source] = []
        if "data-figure" in attrs:
            self._figure, self._cells = attrs["data-figure"], []
        if "data-stage" in attrs:
            self.stages[attrs["data-stage"]] = attrs["class"]
        if tag == "a" and attrs.get("href", "").startswith("#"):
            self.failure_links.append(attrs["href"][1:])
        if tag == "tr" and "id" in attrs:
            self._check, self._cells = attrs["id"], []
        if "data-unknown-keys" in attrs:
            self.unknown_keys[attrs["data-unknown-keys"]] = int(attrs["data-count"])
        if "data-drift" in attrs:
            self._drift, self._cells = (attrs["data-drift"], attrs.get("data-key")), []

    def handle_data(self, data):
        if (self._figure or self._check or self._drift) and data.strip():
            self._cells.append(data.strip())

    def handle_endtag(self, tag):
        if tag in ("div", "p") and self._figure:
            label, number = self._cells[0], int(self._cells[1].replace(",", ""))
            if self._figure == "kept" and tag == "p":
                self.funnels.setdefault("plain", []).append((label, number))
            else:
                self.funnels[self._source].append((self._figure, label, number))
            self._figure = None
        if tag == "tr" and self._check:
            self.check_rows[self._check] = self._cells
            self._check = None
        if tag == "tr" and self._drift:
            source, key = self._drift
            keys = self.drift.setdefault(source, {})
            if key is None:  # a source without such keys: one row saying so
                assert self._cells == [source, "none"], self._cells
            else:
                assert self._cells[:2] == [source, key], self._cells
                keys[key] = (int(self._cells[2].replace(",", "")), *self._cells[3:])
            self._drift = None


def rendered(page) -> Figures:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "headless Chromium is needed: make browser installs it"
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    figures = Figures()
    figures.feed(dom)
    return figures


def cli_json(capsys, *args):
    capsys.readouterr()
    assert main([*args]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def lake(tmp_path):
    customers = [customer("a@test.com", "s-a"), customer("b@test.com", "s-b", consent=None),
                 customer("a@test.com", "s-a", updated=T0 - 9)]
    readings = [reading("a@test.com", T0 + i) for i in range(4)] + [reading("b@test.com", T0), "{not json"]
    return make_lake(tmp_path, customers, readings, [step("s-a", T0 + 1), step("s-b", T0)])


def test_the_page_shows_what_status_and_history_say(lake, capsys, tmp_path):
    assert main(["run", "--lake", str(lake.root), "--consent-scope", "customer"]) == 0
    status = cli_json(capsys, "status", "--lake", str(lake.root), "--json")
    [entry] = cli_json(capsys, "history", "--lake", str(lake.root), "--json")
    page = tmp_path / "page.html"
    assert main(["report", "--lake", str(lake.root), "--out", str(page)]) == 0

    figures = rendered(page)
    assert figures.funnels["accelerometer"] == [
        ("lines", "lines with a record", 6), ("rejected", "rejected: malformed_json", 1),
        ("landed", "accelerometer_landing", 5), ("filtered", "accelerometer_trusted: no_consent", 1),
        ("kept", "accelerometer_trusted", 4)]
    assert figures.funnels["customer"] == [
        ("lines", "lines with a record", 3), ("landed", "customer_landing", 3),
        ("filtered", "customer_trusted: no_consent", 1), ("filtered", "customer_trusted: superseded", 1),
        ("kept", "customer_trusted", 1), ("kept", "customer_curated", 1)]
    assert figures.funnels["plain"] == [("machine_learning_curated", 1)]
    # every number shown is the one status and the history give
    shown = {label: number for funnel in figures.funnels.values() for *_, label, number in funnel}
    for table, rows in status.items():
        if table in shown:
            assert shown[table] == rows["rows"] == entry["rows"][table], table
    assert set(figures.stages.values()) == {"passed"} and len(figures.stages) == 6
    assert len(figures.check_rows) == sum(entry["checks"].values())
    assert figures.failure_links == []
    assert figures.unknown_keys == {source.name: 0 for source in LANDING_SOURCES} == {
        source.name: len(status[source.landing_table]["unknown_keys"]) for source in LANDING_SOURCES}
    assert figures.drift == {source.name: {} for source in LANDING_SOURCES} and entry["drift"] == {}


def test_a_failed_run_points_at_the_failing_check(lake, capsys, tmp_path):
    assert main(["run", "--lake", str(lake.root), "--expect", "accelerometer_trusted=7"]) == 1
    page = tmp_path / "failed.html"
    assert main(["report", "--lake", str(lake.root), "--out", str(page)]) == 0

    figures = rendered(page)
    assert figures.failure_links == ["accelerometer_trusted.row_count"]
    assert figures.check_rows["accelerometer_trusted.row_count"] == [
        "accelerometer_trusted", "accelerometer_trusted.row_count", "failed", "7", "4"]
    assert figures.stages == {"landing": "passed", "customer_trusted": "passed", "accelerometer_trusted": "failed",
                              "customer_curated": "not_run", "step_trainer_trusted": "not_run",
                              "machine_learning_curated": "not_run"}


@pytest.fixture
def drift_lake(tmp_path):
    """Lines carrying keys outside their schema: on customers (one of them in markup), on readings in two
    files (one of the lines rejected: it counts all the same), none on the step trainer."""
    customers = [customer("a@test.com", "s-a", **{"tag<1>": "x"}), customer("b@test.com", "s-b", **{"tag<1>": 2}),
                 customer("c@test.com", "s-c", **{"\u00e9t\u00e9": True})]
    readings = [{**reading("a@test.com", T0), "battery": 80}, reading("a@test.com", T0 + 1)]
    lake = make_lake(tmp_path / "lake", customers, readings, [step("s-a", T0)])
    write_landing(lake.root, "accelerometer", [{**reading("a@test.com", T0 + 2), "battery": 79},
                                               {**reading("a@test.com", T0 + 3), "timestamp": "late", "battery": 1}],
                  name="part-2.json")
    return lake


DRIFT = {"customer": {"tag<1>": 2, "\u00e9t\u00e9": 1}, "accelerometer": {"battery": 3}, "step_trainer": {}}


@pytest.mark.parametrize("stop, outcome, status", [(RuntimeError("disk on fire"), "crashed", "failed"),
                                                  (KeyboardInterrupt(), "stopped", "stopped")])
def test_a_run_that_ended_mid_stage_shows_that_stage_as_where_it_ended(lake, tmp_path, monkeypatch, stop, outcome,
                                                                       status):
    original = DuckDBEngine.run_stage

    def end_at_curated(self, stage, *args):
        if stage == "customer_curated":
            raise stop
        return original(self, stage, *args)

    monkeypatch.setattr(DuckDBEngine, "run_stage", end_at_curated)
    with pytest.raises(type(stop)):
        run_pipeline(lake)
    [ended] = run_history(lake)
    assert ended["outcome"] == outcome
    page = tmp_path / "ended.html"
    page.write_text(render(ended, example_files(lake, ended["run_id"])))
    stages = rendered(page).stages
    assert (stages["accelerometer_trusted"], stages["customer_curated"], stages["step_trainer_trusted"]) == (
        "passed", status, "not_run")


def test_the_keys_outside_the_schema_shown_are_what_status_and_history_say(drift_lake, capsys, tmp_path):
    assert main(["run", "--lake", str(drift_lake.root)]) == 0
    status = cli_json(capsys, "status", "--lake", str(drift_lake.root), "--json")
    [entry] = cli_json(capsys, "history", "--lake", str(drift_lake.root), "--json")
    page = tmp_path / "drift.html"
    assert main(["report", "--lake", str(drift_lake.root), "--out", str(page)]) == 0

    figures = rendered(page)
    lines = {source: {key: shown[0] for key, shown in keys.items()} for source, keys in figures.drift.items()}
    assert lines == DRIFT
    assert lines == {source.name: {key: found["lines"] for key, found in
                                   status[source.landing_table]["unknown_keys"].items()}
                     for source in LANDING_SOURCES}
    assert lines == {source.name: entry["drift"].get(source.name, {}) for source in LANDING_SOURCES}
    assert figures.unknown_keys == {source: len(keys) for source, keys in DRIFT.items()}
    # a key outside the schema is information: every line is accounted for as before, the run published
    assert [shown for shown in figures.funnels["accelerometer"] if shown[0] != "filtered"] == [
        ("lines", "lines with a record", 4), ("rejected", "rejected: wrong_type:timestamp", 1),
        ("landed", "accelerometer_landing", 3), ("kept", "accelerometer_trusted", 3)]
    assert figures.failure_links == []


def test_each_key_names_the_file_status_gives_for_it_published_or_not(drift_lake, capsys, tmp_path):
    assert main(["run", "--lake", str(drift_lake.root)]) == 0
    status = cli_json(capsys, "status", "--lake", str(drift_lake.root), "--json")
    assert main(["run", "--lake", str(drift_lake.root), "--expect", "accelerometer_trusted=7"]) == 1
    failed, published = run_history(drift_lake, last=2)
    assert (failed["outcome"], published["outcome"]) == ("failed", "published")
    files = {source.name: {key: found["example_file"] for key, found in
                           status[source.landing_table]["unknown_keys"].items()} for source in LANDING_SOURCES}
    assert {source: {key: Path(file).name for key, file in keys.items()} for source, keys in files.items()} == {
        "customer": {"tag<1>": "part-1.json", "\u00e9t\u00e9": "part-1.json"},
        "accelerometer": {"battery": "part-1.json"}, "step_trainer": {}}

    # published: the file published.json holds; failed, so not in published.json: the one its staged tables hold
    for run in (published, failed):
        page = tmp_path / f"{run['outcome']}.html"
        page.write_text(render(run, example_files(drift_lake, run["run_id"])))
        shown = rendered(page).drift
        assert {source: {key: tuple(cells) for key, cells in keys.items()} for source, keys in shown.items()} == {
            source: {key: (lines, files[source][key]) for key, lines in keys.items()} for source, keys in DRIFT.items()}

    # once the failed run's staging is gone (with the published run before it, three publishes later), its keys
    # and lines stay (the history) and the file is not kept
    for _ in range(3):
        assert main(["run", "--lake", str(drift_lake.root)]) == 0
    assert example_files(drift_lake, failed["run_id"]) == {}
    page = tmp_path / "pruned.html"
    page.write_text(render(failed, example_files(drift_lake, failed["run_id"])))
    assert rendered(page).drift == {source: {key: (lines, "not kept") for key, lines in keys.items()}
                                    for source, keys in DRIFT.items()}
