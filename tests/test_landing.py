"""The landing stage: every non-blank line becomes a typed record or a rejection with a reason."""

import json
import re

import pytest
from lakes import T0, customer, make_lake, published, reading, run, step, write_landing

from stedi.cli import main
from stedi.landing import plain_pattern

GOOD = customer("a@test.com", "s-1")
# Enough valid lines that the rejected share stays under the bound that stops a run.
PADDING = [reading("a@test.com", T0 + i) for i in range(1, 60)]


def rejected(lake, source):
    return published(lake, f"SELECT reason, line, source_file FROM {source}_rejected ORDER BY line")


def test_bad_lines_are_rejected_with_their_reason_and_file(tmp_path):
    lines = [
        reading("a@test.com", T0),
        '{"user":"a@test.com","timest',  # truncated
        '{"user":"a@test.com","timestamp":1,"x":0.0,"y":0.0,"z":0.0},',  # trailing comma of an array dump
        '"just a string"',
        "[1, 2]",
        '{"user":"a@test.com","timeStamp":1,"x":0.0,"y":0.0,"z":0.0}',  # misspelled key
        '{"user":null,"timestamp":1,"x":0.0,"y":0.0,"z":0.0}',
        '{"user":"a@test.com","timestamp":"yesterday","x":0.0,"y":0.0,"z":0.0}',
        '{"user":"a@test.com","timestamp":1,"x":"abc","y":0.0,"z":0.0}',
        '{"user":{"nested":1},"timestamp":1,"x":0.0,"y":0.0,"z":0.0}',
        '{"user":"a@test.com","timestamp":1.5,"x":0.0,"y":0.0,"z":0.0}',
        "",
        "   ",
    ]
    lake = make_lake(tmp_path, [GOOD], lines + PADDING, [step("s-1", T0)])
    report = run(lake, consent_scope="customer")

    assert report.published
    assert report.rows["accelerometer_landing"] == 1 + len(PADDING)
    assert rejected(lake, "accelerometer") == sorted([
        ("malformed_json", '{"user":"a@test.com","timest', "accelerometer/landing/part-1.json"),
        ("malformed_json", lines[2], "accelerometer/landing/part-1.json"),
        ("malformed_json", '"just a string"', "accelerometer/landing/part-1.json"),
        ("malformed_json", "[1, 2]", "accelerometer/landing/part-1.json"),
        ("missing_field:timestamp", lines[5], "accelerometer/landing/part-1.json"),
        ("missing_field:user", lines[6], "accelerometer/landing/part-1.json"),
        ("wrong_type:timestamp", lines[7], "accelerometer/landing/part-1.json"),
        ("wrong_type:x", lines[8], "accelerometer/landing/part-1.json"),
        ("wrong_type:user", lines[9], "accelerometer/landing/part-1.json"),
        ("wrong_type:timestamp", lines[10], "accelerometer/landing/part-1.json"),
    ], key=lambda row: row[1])
    assert report.rejected["accelerometer"] == {
        "malformed_json": 4, "missing_field:timestamp": 1, "missing_field:user": 1,
        "wrong_type:timestamp": 2, "wrong_type:user": 1, "wrong_type:x": 1,
    }


def test_valid_records_are_typed_and_keep_their_file(tmp_path):
    lake = make_lake(tmp_path, [GOOD], [reading("a@test.com", T0, 1.5, -1.0, 2e3)], [step("s-1", T0, 231)])
    run(lake, consent_scope="customer")
    assert published(lake, "SELECT * FROM accelerometer_landing") == [
        ("a@test.com", T0, 1.5, -1.0, 2000.0, "accelerometer/landing/part-1.json")]
    assert published(lake, "SELECT * FROM step_trainer_landing") == [
        (T0, "s-1", 231, "step_trainer/landing/part-1.json")]
    types = dict(published(lake, "SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'step_trainer_landing'"))
    assert types == {"sensorReadingTime": "BIGINT", "serialNumber": "VARCHAR",
                     "distanceFromObject": "INTEGER", "source_file": "VARCHAR"}


def test_customer_optional_fields_may_be_absent_but_not_mistyped(tmp_path):
    no_optional = {k: v for k, v in GOOD.items() if k in ("email", "serialNumber", "lastUpdateDate")}
    bad_consent = customer("b@test.com", "s-2", shareWithPublicAsOfDate="soon")
    no_email = {k: v for k, v in customer("c@test.com", "s-3").items() if k != "email"}
    others = [customer(f"other{i}@test.com", f"o-{i}") for i in range(10)]
    lake = make_lake(tmp_path, [no_optional, bad_consent, no_email, *others], [reading("a@test.com", T0)],
                     [step("s-1", T0)])
    report = run(lake, consent_scope="customer")
    assert report.rows["customer_landing"] == 1 + len(others)
    assert report.rejected["customer"] == {"missing_field:email": 1, "wrong_type:shareWithPublicAsOfDate": 1}


def test_every_file_of_a_source_is_read(tmp_path):
    lake = make_lake(tmp_path, [GOOD], [reading("a@test.com", T0)], [step("s-1", T0)])
    write_landing(tmp_path, "accelerometer", [reading("a@test.com", T0 + 1)], name="part-2.json")
    write_landing(tmp_path, "accelerometer", [reading("a@test.com", T0 + 2)], name=".hidden.json")
    report = run(lake, consent_scope="customer")
    assert report.rows["accelerometer_landing"] == 2
    assert published(lake, "SELECT DISTINCT source_file FROM accelerometer_landing ORDER BY 1") == [
        ("accelerometer/landing/part-1.json",), ("accelerometer/landing/part-2.json",)]


# Values at the edges of the plain-line shortcut (PLAIN_VALUES in the landing
# script), good and bad, each in an otherwise good reading.
EDGE_READINGS = [
    {"x": 1}, {"x": -0}, {"x": 0.1}, {"x": 0.30000000000000004}, {"x": 123456789012345},
    {"x": 1234567890123456789}, {"x": 1.123456789012345}, {"x": 1e3}, {"x": 2.5e-7}, {"x": "1.5"},
    {"x": " 1.5"}, {"x": "NaN"}, {"x": True}, {"x": None}, {"x": [1]}, {"x": ""},
    {"timestamp": 999_999_999_999_999_999}, {"timestamp": 9_999_999_999_999_999_999}, {"timestamp": -5},
    {"timestamp": 0}, {"timestamp": 1.5}, {"timestamp": "1655564000000"}, {"timestamp": "+1"},
    {"user": "a b|c~d}@e.f"}, {"user": ""}, {"user": "   "}, {"user": "{not json"}, {"user": "[x"},
    {"user": "José@test.com"}, {"user": 'quote"d'}, {"user": 42}, {"user": {"a": 1}},
    {"extra": "key"},
]


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def test_plain_lines_come_out_as_the_full_rules_say(tmp_path, engine):
    """The shortcut for plain lines must type and reject exactly as the rules for any line do.

    Every edge line is written twice: as it is, and after a space, which no
    plain line starts with, so that the full rules decide it.
    """
    lines = [json.dumps({**reading("a@test.com", T0 + i), **edge}, separators=separators)
             for i, edge in enumerate(EDGE_READINGS) for separators in ((",", ":"), (", ", ": "))]
    lines.append(json.dumps({k: v for k, v in reading("a@test.com", T0).items() if k != "y"}))
    lake = make_lake(tmp_path, [GOOD], lines, [step("s-1", T0)])
    write_landing(tmp_path, "accelerometer", [" " + line for line in lines], name="part-2.json")
    write_landing(tmp_path, "accelerometer", PADDING * 5, name="part-3.json")
    report = run(lake, engine=engine, consent_scope="customer")
    assert report.published, [failure.describe() for failure in report.failures]

    def landed(name):
        return sorted(published(lake, "SELECT * EXCLUDE (source_file) FROM accelerometer_landing "
                                      f"WHERE source_file LIKE '%{name}'"), key=repr)

    def rejected_lines(name):  # each line as uploaded, so without the space that was added
        return sorted(published(lake, "SELECT reason, ltrim(line) FROM accelerometer_rejected "
                                      f"WHERE source_file LIKE '%{name}'"))

    # By the rules: 19 of the 33 edges are valid, in both spacings; the line without y is not.
    assert len(landed("part-1.json")) == 38 and len(rejected_lines("part-1.json")) == 29
    assert landed("part-1.json") == landed("part-2.json")
    assert rejected_lines("part-1.json") == rejected_lines("part-2.json")


def test_the_plain_form_is_what_uploads_usually_look_like():
    plain = re.compile(plain_pattern("accelerometer"))
    assert plain.fullmatch('{"user":"a@test.com","timestamp":1655564000000,"x":-0.4,"y":1.0,"z":0}')
    assert plain.fullmatch('{"user": "a@test.com", "timestamp": 1, "x": 1.0, "y": 0, "z": 0}')  # one space allowed
    customer = re.compile(plain_pattern("customer"))  # optional keys may be absent or null, in the schema's order
    assert customer.fullmatch('{"email":"a@test.com","serialNumber":"s","lastUpdateDate":1}')
    assert customer.fullmatch('{"customerName":"A B","email":"a@test.com","phone":null,"serialNumber":"s",'
                              '"lastUpdateDate":1,"shareWithFriendsAsOfDate":2}')
    # In the schema's order, so no key twice (Spark keeps the last of two, DuckDB the first).
    for not_plain in ('{"user":"a@test.com","timestamp":1,"x":1e3,"y":0,"z":0}', '{"user":"a\\u00e9"}',
                      ' {"user":"a","timestamp":1,"x":1,"y":0,"z":0}', '{"user":"a","timestamp":"1","x":1,"y":0,"z":0}',
                      '{"user":"a","timestamp":1,"x":1,"y":0,"z":0,"other":1}', '{"x":01}', '{"x":1}{"x":2}',
                      '{"x":1.0,"user":"a@test.com","timestamp":1,"y":0,"z":0}',
                      '{"user":"a","user":"b","timestamp":1,"x":1,"y":0,"z":0}'):
        assert not plain.fullmatch(not_plain), not_plain
    assert not customer.fullmatch('{"email":"a@test.com","email":"b@test.com","serialNumber":"s","lastUpdateDate":1}')


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def test_keys_outside_the_schema_are_counted_per_key_and_change_no_line_s_fate(tmp_path, engine, capsys):
    """Schema drift is information: a line with a key outside its schema lands if its fields do, and the
    stage says, per key, how many lines carry it and the first file (by name) that has one."""
    first = [
        {**reading("a@test.com", T0), "tag": "left"},
        {**reading("a@test.com", T0 + 1), "tag": "right", "meta": {"firmware": 2, "tag": 1}},  # nested: meta only
        {**reading("a@test.com", T0 + 2), "": 0},  # an empty key is a key
        {**reading("a@test.com", T0 + 3), "x": "abc", "tag": "bad"},  # rejected for x, still carries tag
        {**{k: v for k, v in reading("a@test.com", T0 + 4).items() if k != "timestamp"}, "timeStamp": T0},
        '{"user": "a@test.com", "timestamp": 1, "x": 0, "y": 0, "z": 0, "tag": 1,}',  # not JSON: carries nothing
        '{"user":"a@test.com","timestamp":1,"x":0,"y":0,"z":0,"\\u00e9t\\u00e9":1}',  # a key as JSON reads it
        *PADDING,
    ]
    lake = make_lake(tmp_path, [GOOD, customer("b@test.com", "s-2", loyalty="gold")], first, [step("s-1", T0)])
    write_landing(tmp_path, "accelerometer", [{**reading("a@test.com", T0 + 9), "tag": "again"}], name="a-0.json")
    report = run(lake, engine=engine, consent_scope="customer")

    assert report.published, [failure.describe() for failure in report.failures]
    part, early = "accelerometer/landing/part-1.json", "accelerometer/landing/a-0.json"
    assert report.drift == {
        "customer": {"loyalty": {"lines": 1, "example_file": "customer/landing/part-1.json"}},
        "accelerometer": {"": {"lines": 1, "example_file": part}, "meta": {"lines": 1, "example_file": part},
                          "tag": {"lines": 4, "example_file": early}, "timeStamp": {"lines": 1, "example_file": part},
                          "\u00e9t\u00e9": {"lines": 1, "example_file": part}},
        "step_trainer": {},
    }
    # Every line accounted for as before: the extra keys change no fate and add no count.
    assert report.rows["accelerometer_landing"] == 5 + len(PADDING)
    assert report.rejected["accelerometer"] == {"malformed_json": 1, "missing_field:timestamp": 1, "wrong_type:x": 1}
    assert published(lake, "SELECT count(*) FROM customer_landing") == [(2,)]
    assert lake.published()["current"]["drift"] == report.drift
    capsys.readouterr()
    assert main(["status", "--lake", str(lake.root), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["accelerometer_landing"]["unknown_keys"] == report.drift["accelerometer"]
    assert status["step_trainer_landing"]["unknown_keys"] == {}
