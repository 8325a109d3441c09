"""Every landing byte accounted for, the same on DuckDB and Spark: encodings, line ends, blank lines,
JSON at its edges, file names, compressed and empty files, long lines.

All the cases live in one lake, landed once per engine; each test reads its case's outcome.
"""

from __future__ import annotations

import gzip
import json

import pytest
from landing_runs import land, lines, write_bytes

from stedi.engines import make_engine
from stedi.runner import MAX_LINE_BYTES

T0 = 1_655_564_000_000
ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.spark)]


def reading(ts: int, **changes) -> dict:
    return {"user": "a@test.com", "timestamp": ts, "x": 0.5, "y": -1.0, "z": 2.0, **changes}


def compact(value: dict) -> str:
    return json.dumps(value, separators=(",", ":"))


def escaped_user(value: dict) -> str:
    """The record with its key `user` written with an escape, as `us\\u0065r`."""
    return compact(value).replace('"user"', '"us\\u0065r"')


GOOD = compact(reading(T0))
CUSTOMER = compact({"customerName": "Jose", "email": "j@test.com", "serialNumber": "s-1", "lastUpdateDate": T0})
STEP = compact({"sensorReadingTime": T0, "serialNumber": "s-1", "distanceFromObject": 200})
PADDING = [compact(reading(T0 + 1000 + i)) for i in range(300)]  # keeps every rejected share under a quarter

# Lines of accelerometer/landing/edges.json, each with what becomes of it: the reason it is
# rejected for, or None for a record that lands (with its timestamp, to find it).
EDGES: list[tuple[str, str | None]] = [
    # One object per line, nothing after it: whatever a parser might skip is rejected.
    (GOOD + ",", "malformed_json"),  # an array dumped a line an element
    (GOOD + " " + GOOD, "malformed_json"),  # two objects on a line
    (GOOD + "}", "malformed_json"),
    (GOOD + "//note", "malformed_json"),
    (GOOD[:-1] + ",}", "malformed_json"),  # a trailing comma, which DuckDB's parser takes
    ("[" + GOOD + "]", "malformed_json"),
    (GOOD.replace('"', "'"), "malformed_json"),  # single quotes, which Spark's parser takes
    (compact(reading(1))[:-1] + ',"user":"b@test.com"}', "malformed_json"),  # a key twice: which one?
    (GOOD.replace("0.5", "NaN"), "malformed_json"),
    (GOOD.replace("0.5", "nan"), "malformed_json"),
    (GOOD.replace("0.5", "Infinity"), "malformed_json"),
    (GOOD.replace('"a@test.com"', '"\\ud800"'), "malformed_json"),  # a lone surrogate
    (GOOD.replace("a@test.com", "a\tb"), "malformed_json"),  # a raw control character in a string
    (compact(reading(2))[:-1] + ',"deep":' + "[" * 499 + "]" * 499 + "}", None),  # 500 objects and arrays
    (compact(reading(3))[:-1] + ',"deep":' + "[" * 500 + "]" * 500 + "}", "malformed_json"),  # 501
    (compact(reading(4))[:-1] + ',"big":' + "9" * 300 + "}", None),  # 300 digits
    (compact(reading(5))[:-1] + ',"big":' + "9" * 301 + "}", "malformed_json"),  # 301
    (compact(reading(6))[:-1] + ',"big":1e400}', None),  # a key of no field: not typed
    (compact(reading(7)).replace('"x":0.5', '"x":1e400'), "wrong_type:x"),  # no DOUBLE
    (compact(reading(8)).replace('"x":0.5', '"x":1.7976931348623157e308'), None),
    (compact(reading(9)).replace('"timestamp":9', '"timestamp":1234567890123456789'), "wrong_type:timestamp"),
    (compact(reading(10)).replace('"timestamp"', '"timeStamp"'), "missing_field:timestamp"),  # keys are exact
    (compact(reading(11)).replace('"user"', '"User"'), "missing_field:user"),
    (compact(reading(12, timestamp="12")), None),  # a number in a string: taken, as its text fits
    (compact(reading(13, x="1.5")), None),
    (compact(reading(14, x=" 1.5")), "wrong_type:x"),
    (compact(reading(15, user=42)), None),  # a whole number for a string: its text
    (compact(reading(16, user=1.5)), "wrong_type:user"),  # a fraction or exponent: no string
    (compact(reading(17, user=1e21)), "wrong_type:user"),
    (compact(reading(18, user="\ud83d\ude00")), None),  # any Unicode; a surrogate pair escaped
    (json.dumps(reading(19, user="José@test.com"), ensure_ascii=True), None),
    (compact(reading(20, user="\u3000")), None),  # not blank: only spaces, tabs, CR and U+FEFF are
    (compact(reading(21, user=" \t")), "missing_field:user"),
    ("\\N", "malformed_json"),  # Hive's NULL, as text: a line like any other
    ("\t " + compact(reading(22)) + " \t", None),  # JSON's whitespace around a record
    ("\ufeff" + compact(reading(23)), None),  # a byte-order mark opening a line (a concatenated file)
    ("\x0b" + compact(reading(24)), "malformed_json"),  # no whitespace in JSON
    (compact(reading(25, user="\n" * 100_000)), None),  # escapes by the thousand (Java's regex would recurse)
    (compact(reading(26)).replace('"a@test.com"', '"a\\qb"'), "malformed_json"),  # no such escape
    # A key written with an escape is the same key; its value is held to the same rule ...
    (escaped_user(reading(27, user=1e21)), "wrong_type:user"),
    (escaped_user(reading(28, user=1.5)), "wrong_type:user"),
    (escaped_user(reading(29, user="b@test.com")), None),
    (escaped_user(reading(30, user=42)), None),
    # ... and with it escaped, a string that reads as such a number cannot be told from one: rejected too.
    (escaped_user(reading(31, user="1.5")), "wrong_type:user"),
    (compact(reading(32, user="1.5")), None),
]
# Lines that are blank, and lines that look blank and are not (rejected as malformed_json).
BLANK = ["", " ", "\t", "  \t  ", "\ufeff", " \ufeff\t"]
NOT_BLANK = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\xa0", "\u3000", "\u2028", "\x85", "\x00"]
# File names that Spark reads as URLs and globs.
NAMES = ["with space.json", "plus+sign.json", "percent%20.json", "accent-é.json", "glob[1].json", "star*.json"]


def build(root) -> None:
    write_bytes(root, "customer", "latin1.json",
                lines(CUSTOMER, b'{"customerName":"Jos\xe9","email":"j2@test.com","serialNumber":"s-2",'
                                b'"lastUpdateDate":1}', CUSTOMER.replace("j@", "j3@"), CUSTOMER.replace("j@", "j4@"),
                                CUSTOMER.replace("j@", "j5@")))
    write_bytes(root, "step_trainer", "s.json", lines(STEP))
    write_bytes(root, "accelerometer", "padding.json", lines(*PADDING))
    write_bytes(root, "accelerometer", "edges.json", lines(*(line for line, _ in EDGES)))
    write_bytes(root, "accelerometer", "blank.json", lines(*BLANK, *NOT_BLANK))
    write_bytes(root, "accelerometer", "bom.json", b"\xef\xbb\xbf" + lines(compact(reading(100)), "{broken"))
    write_bytes(root, "accelerometer", "crlf.json", compact(reading(101)).encode() + b"\r\n{cr}\r\n\r\n"
                + compact(reading(102)).encode() + b"\r" + compact(reading(103)).encode() + b"\r\r\n")
    write_bytes(root, "accelerometer", "no-final-newline.json", compact(reading(104)).encode())
    write_bytes(root, "accelerometer", "zero.json", b"")
    write_bytes(root, "accelerometer", "packed.json.gz", gzip.compress(lines(compact(reading(105)), "{gz")))
    write_bytes(root, "accelerometer", "upper.json.GZ", gzip.compress(lines(compact(reading(106)))))
    write_bytes(root, "accelerometer", "latin1.json",  # a file in Latin-1: each line tried on its own
                lines(compact(reading(107)), b'{"user":"Jos\xe9@test.com","timestamp":108,"x":0,"y":0,"z":0}',
                      b"\x80\x9f\xff"))
    write_bytes(root, "accelerometer", "big.json",  # 10 MB lines: one a record, one not
                lines(compact(reading(109))[:-1] + ',"blob":"' + "b" * 10_000_000 + '"}', "x" * 10_000_000))
    for number, name in enumerate(NAMES):
        write_bytes(root, "accelerometer", name, lines(compact(reading(200 + number))))


@pytest.fixture(scope="module", params=ENGINES)
def engine(request):
    """One engine for the module: one Spark session."""
    made = make_engine(request.param)
    yield made
    made.close()


@pytest.fixture(scope="module")
def landed(engine, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"bytes-{engine.name}")
    build(root)
    return land(engine, root)


def timestamps(landed, file: str) -> list[int]:
    return sorted(row[1] for row in landed.landed["accelerometer"] if row[-1] == f"accelerometer/landing/{file}")


def rejected(landed, file: str) -> list[tuple[str, str]]:
    return sorted((reason, line) for reason, line, source_file in landed.rejected["accelerometer"]
                  if source_file == f"accelerometer/landing/{file}")


def test_every_check_but_none_fails(landed):
    assert landed.failures == []


def test_a_line_that_is_not_utf8_is_rejected_with_its_bytes_and_the_rest_of_the_file_lands(landed):
    assert [row[1] for row in landed.landed["customer"]] == ["j3@test.com", "j4@test.com", "j5@test.com", "j@test.com"]
    [(reason, line, source_file)] = landed.rejected["customer"]
    assert (reason, source_file) == ("invalid_encoding", "customer/landing/latin1.json")
    # The line holds the bytes read as Latin-1, one character a byte: encoded back, they are the upload's.
    assert line.encode("latin-1") == (b'{"customerName":"Jos\xe9","email":"j2@test.com","serialNumber":"s-2",'
                                      b'"lastUpdateDate":1}')
    assert timestamps(landed, "latin1.json") == [107]
    assert rejected(landed, "latin1.json") == [
        ("invalid_encoding", '{"user":"Jos\xe9@test.com","timestamp":108,"x":0,"y":0,"z":0}'),
        ("invalid_encoding", "\x80\x9f\xff")]


def test_json_at_its_edges_means_the_same_on_both_engines(landed):
    expected_rejections = sorted((reason, line) for line, reason in EDGES if reason)
    assert rejected(landed, "edges.json") == expected_rejections
    assert timestamps(landed, "edges.json") == [2, 4, 6, 8, 12, 13, 15, 18, 19, 20, 22, 23, 25, 29, 30, 32]
    typed = {row[1]: row for row in landed.landed["accelerometer"] if row[1] < 100}
    assert typed[8][2] == 1.7976931348623157e308
    assert typed[12][0] == "a@test.com" and typed[13][2] == 1.5
    assert typed[15][0] == "42" and typed[18][0] == "\U0001f600" and typed[19][0] == "José@test.com"
    assert typed[20][0] == "\u3000" and typed[25][0] == "\n" * 100_000
    assert typed[29][0] == "b@test.com" and typed[30][0] == "42" and typed[32][0] == "1.5"


def test_blank_lines_are_spaces_tabs_and_byte_order_marks_only(landed):
    assert rejected(landed, "blank.json") == sorted(("malformed_json", line) for line in NOT_BLANK)
    assert timestamps(landed, "blank.json") == []


def test_line_ends_byte_order_marks_and_files_without_a_final_newline(landed):
    assert timestamps(landed, "bom.json") == [100]
    assert rejected(landed, "bom.json") == [("malformed_json", "{broken")]
    # LF, CR and CRLF each end a line, as Hadoop's reader (Spark, Glue) and Athena's split them.
    assert timestamps(landed, "crlf.json") == [101, 102, 103]
    assert rejected(landed, "crlf.json") == [("malformed_json", "{cr}")]
    assert timestamps(landed, "no-final-newline.json") == [104]


def test_gzip_is_read_by_its_name_and_empty_files_hold_nothing(landed):
    assert timestamps(landed, "packed.json.gz") == [105]
    assert rejected(landed, "packed.json.gz") == [("malformed_json", "{gz")]
    # Only .gz is unpacked, as Spark's codecs and Athena go by the name: .GZ is read as the bytes it is.
    assert timestamps(landed, "upper.json.GZ") == []
    assert {reason for reason, _ in rejected(landed, "upper.json.GZ")} == {"invalid_encoding"}
    assert timestamps(landed, "zero.json") == [] and rejected(landed, "zero.json") == []


def test_ten_megabyte_lines_are_read_whole(landed):
    assert timestamps(landed, "big.json") == [109]
    assert rejected(landed, "big.json") == [("malformed_json", "x" * 10_000_000)]


def test_source_file_is_the_file_name_as_it_is(landed):
    for number, name in enumerate(NAMES):
        assert timestamps(landed, name) == [200 + number], name


# DuckDB's reader fails on a line longer than its buffer, but drops such a line without a word when it is
# the file's last; a line between the limit and that size it reads. Each case must stop the run.
@pytest.mark.parametrize("length, last", [(MAX_LINE_BYTES + 1, True), (MAX_LINE_BYTES + 1, False),
                                          (2 * MAX_LINE_BYTES + 100, True), (2 * MAX_LINE_BYTES + 100, False)],
                         ids=["just-over-last", "just-over-inside", "past-the-reader-last", "past-the-reader-inside"])
def test_a_line_longer_than_the_limit_stops_the_run(tmp_path, engine, length, last):
    write_bytes(tmp_path, "customer", "c.json", lines(CUSTOMER))
    write_bytes(tmp_path, "step_trainer", "s.json", lines(STEP))
    huge = "x" * length
    write_bytes(tmp_path, "accelerometer", "huge.json", lines(GOOD, huge) if last else lines(GOOD, huge, GOOD))
    with pytest.raises(ValueError, match=f"huge.json: a line is longer than {MAX_LINE_BYTES} bytes"):  # exit code 2
        land(engine, tmp_path)


@pytest.mark.parametrize("name", ["a.json.bz2", "a.json.zst", "a.json.deflate", "a.json.lz4", "a.json.snappy",
                                  "a:b.json"])
def test_files_the_engines_would_read_differently_are_refused_by_name(tmp_path, engine, name):
    write_bytes(tmp_path, "customer", "c.json", lines(CUSTOMER))
    write_bytes(tmp_path, "step_trainer", "s.json", lines(STEP))
    write_bytes(tmp_path, "accelerometer", name, lines(GOOD))
    with pytest.raises(ValueError, match=f"{name}: "):
        land(engine, tmp_path)
