"""A failed landing check names, per source, the top reasons, each with a line to look at and where it is."""

import gzip
import json

from landing_runs import lines, write_bytes

from stedi.cli import main
from stedi.rejections import Example, describe, line_number, shown


def test_describe_ranks_reasons_and_shows_an_example_of_each():
    rejected = {"customer": {}, "accelerometer": {"wrong_type:x": 2, "malformed_json": 7, "invalid_encoding": 2,
                                                   "missing_field:user": 1}}
    examples = {("accelerometer", "malformed_json"): Example('{"user":"a', "accelerometer/landing/a.json", 12),
                ("accelerometer", "invalid_encoding"): Example("Jos\xe9\x00", "accelerometer/landing/b.json", None)}
    assert describe(rejected, examples, top=3, width=40) == [
        "  accelerometer: 12 lines rejected, and 1 more reasons",
        "    malformed_json 7",
        '      e.g. accelerometer/landing/a.json line 12: {"user":"a',
        "    invalid_encoding 2",
        "      e.g. accelerometer/landing/b.json: José\\x00",
        "    wrong_type:x 2",
    ]


def test_a_line_is_shown_cut_and_with_its_control_characters_escaped():
    assert shown("a\tb\x1bc" + "x" * 100, width=12) == "a\\tb\\x1bcxx…"
    assert shown("ok") == "ok"


def test_line_numbers_count_lines_as_the_engines_split_them(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(b"one\r\ntwo\rthree\n\xef\xbb\xbffour\nJos\xe9\n")
    assert [line_number(path, text, False) for text in ("one", "two", "three", "four", "gone")] == [1, 2, 3, 4, None]
    assert line_number(path, "Jos\xe9", True) == 5
    packed = tmp_path / "b.json.gz"
    packed.write_bytes(gzip.compress(b"x\ny\n"))
    assert line_number(packed, "y", False) == 2


def test_a_run_stopped_by_a_landing_check_says_which_lines_and_where(tmp_path, capsys):
    customer = json.dumps({"email": "a@test.com", "serialNumber": "s-1", "lastUpdateDate": 1})
    write_bytes(tmp_path, "customer", "c.json", lines(customer))
    write_bytes(tmp_path, "step_trainer", "s.json",
                lines('{"sensorReadingTime":1,"serialNumber":"s-1","distanceFromObject":1}'))
    good = [json.dumps({"user": "a@test.com", "timestamp": t, "x": 0, "y": 0, "z": 0}) for t in range(4)]
    write_bytes(tmp_path, "accelerometer", "part 1.json", lines(*good, "{oops", "{oops", b"Jos\xe9"))
    assert main(["run", "--lake", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.split("rejected lines: the most frequent reasons, each with a line to look at\n")[1].split(
        "the staged tables")[0].splitlines() == [
        "  accelerometer: 3 lines rejected",
        "    malformed_json 2",
        "      e.g. accelerometer/landing/part 1.json line 5: {oops",
        "    invalid_encoding 1",
        "      e.g. accelerometer/landing/part 1.json line 7: José",
    ]
