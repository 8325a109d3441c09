"""End to end on generated lakes: every line written is published, rejected or filtered by a rule."""

import json

import pytest
from lakes import published, run

from stedi.generate import generate_lake
from stedi.lake import Lake

TRUSTED = {"customer": "customer_trusted", "accelerometer": "accelerometer_trusted",
           "step_trainer": "step_trainer_trusted"}


def non_blank_lines(lake: Lake, source: str) -> int:
    return sum(1 for path in lake.landing_files(source) for line in path.read_text().splitlines() if line.strip())


@pytest.fixture(scope="module")
def dirty(tmp_path_factory):
    root = tmp_path_factory.mktemp("dirty")
    generate_lake(root, scale=0.2, seed=5, dirt=True)
    lake = Lake(root)
    return lake, run(lake, consent_scope="reading")


def test_a_dirty_lake_is_published_with_every_line_accounted_for(dirty):
    lake, report = dirty
    assert report.published, [f.describe() for f in report.failures]
    for source, table in TRUSTED.items():
        rejected = sum(report.rejected[source].values())
        filtered = sum(report.filtered[table].values())
        assert report.rows[table] + rejected + filtered == non_blank_lines(lake, source), source


def test_each_kind_of_dirt_is_rejected_or_filtered_by_name(dirty):
    _, report = dirty
    reasons = {reason.split(":")[0] for rejected in report.rejected.values() for reason in rejected}
    assert reasons == {"malformed_json", "missing_field", "wrong_type"}
    assert report.filtered["accelerometer_trusted"].keys() >= {"duplicate", "no_parent", "before_consent", "no_consent"}
    assert report.filtered["step_trainer_trusted"].keys() >= {"duplicate", "no_parent", "before_consent"}


def is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def test_rejected_lines_are_kept_as_uploaded(dirty):
    lake, _ = dirty
    rows = published(lake, "SELECT line, reason FROM accelerometer_rejected")
    assert rows
    for line, reason in rows:
        assert is_json_object(line) == (reason != "malformed_json"), (line, reason)


def test_the_ml_table_pairs_only_same_customer_readings(dirty):
    lake, report = dirty
    [(cross,)] = published(lake, """
        SELECT count(*) FROM machine_learning_curated m
        JOIN customer_curated c ON c.serialNumber = m.serialNumber
        WHERE NOT EXISTS (SELECT 1 FROM accelerometer_trusted a WHERE a."user" = c.email
                          AND a."timestamp" = m."timestamp" AND a.x = m.x AND a.y = m.y AND a.z = m.z)""")
    assert cross == 0
    assert report.rows["machine_learning_curated"] > 0
