"""`stedi report`: one run as a page, rendered by headless Chromium, showing the figures the history holds."""

import json
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from lakes import T0, customer, make_lake, reading, step

from stedi.cli import main

pytestmark = pytest.mark.browser


class Figures(HTMLParser):
    """From the DOM Chromium renders: each funnel's figures, the stages' status, the failed checks' links."""

    def __init__(self):
        super().__init__()
        self.funnels, self.stages, self.failure_links, self.check_rows = {}, {}, [], {}
        self._source = self._figure = self._stage = self._check = None
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

    def handle_data(self, data):
        if (self._figure or self._check) and data.strip():
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
