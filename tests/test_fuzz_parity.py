"""Fuzzed parity: every landing line, valid, nearly valid or garbage, meets the same fate on DuckDB and Spark.

Hypothesis makes a dozen batches of lines (valid, nearly valid, any Unicode, any
bytes, LF, CR or CRLF, some files gzipped, file names Spark would mangle); all
are written as landing files first and landed in one run per engine, since a
Spark run costs seconds. For every line both engines must give the same typed
record or the same reason, a line that is not UTF-8 must keep its bytes, and the
lines must add up: typed + rejected = the non-blank lines, counted here by a
reader of our own. (No shrinking: a failure shows the lines the engines differ on.)
"""

from __future__ import annotations

import gzip
import json

import pytest

pytest.importorskip("hypothesis", reason="the fuzzed parity test needs hypothesis (the dev extra)")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from landing_runs import land, write_bytes  # noqa: E402

from stedi.catalogue import BLANK_CHARACTERS, INVALID_ENCODING, SOURCE, SOURCES  # noqa: E402
from stedi.engines import make_engine  # noqa: E402

pytestmark = pytest.mark.spark

BATCHES = 12  # made first, then landed together: one landing run per engine
LINES_PER_SOURCE = 40  # at most, per batch

# Values each type takes, and values it nearly takes.
_FITTING = {
    "STRING": st.one_of(st.emails(), st.text(min_size=1, max_size=12).filter(lambda t: t.strip(" \t\ufeff")),
                        st.sampled_from(["a@test.com", "s-1", "José", "1.5", "007", "{x", "[y"])),
    "BIGINT": st.integers(-(10**18) + 1, 10**18 - 1),
    "INT": st.integers(-(10**9) + 1, 10**9 - 1),
    "DOUBLE": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(10**20), 10**20),
                        st.sampled_from([0, -0.0, 1e21, 1e23, 5e-324, 2.5e-7, 1e7, 1.7976931348623157e308])),
}
_ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12), st.sampled_from(["", " ", "\t", "1655564000000", " 1", "1e3", "NaN", "\u3000", "\xa0"]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@st.composite
def record(draw, source: str, valid: bool) -> dict:
    """A record of the source: every required field with a value that fits (when `valid`), in any order,
    an optional field absent or null; else any field may be missing or hold anything."""
    fields = list(SOURCE[source].fields)
    result = {}
    for field in draw(st.permutations(fields)):
        if valid:
            if field.required or draw(st.booleans()):
                result[field.name] = draw(_FITTING[field.type]) if field.required or draw(st.booleans()) else None
        elif draw(st.integers(0, 5)):
            result[field.name] = draw(st.one_of(_FITTING[field.type], _ANY_VALUE))
    if draw(st.integers(0, 5)) == 0:
        result[draw(st.sampled_from(["extra", "TimeStamp", "timeStamp", "Email", ""]))] = draw(_ANY_VALUE)
    return result


def _dumps(value: dict, ensure_ascii: bool, compact: bool) -> str:
    text = json.dumps(value, ensure_ascii=ensure_ascii, separators=(",", ":") if compact else (", ", ": "),
                      allow_nan=False)
    return text


# Small changes that make a valid line nearly valid (or still valid, written otherwise).
_INSERTS = [",", "}", "{", "]", "[", '"', "'", "\\", " ", "\t", "\x0b", "\x0c", "\x1c", "\xa0", "\u3000", "\ufeff",
            "NaN", "nan", "Infinity", "-", "+", "0", ".", "e", "1e400", "null", "true", "//", "/*", ":", "\\u",
            "\\ud800", "\x00", "\x7f", "\u2028", "é", "😀"]


@st.composite
def near_valid(draw, text: str) -> str:
    change = draw(st.integers(0, 6))
    position = draw(st.integers(0, len(text)))
    if change == 0:
        return text[:position] + draw(st.sampled_from(_INSERTS)) + text[position:]
    if change == 1:
        return text[:position] + text[position + 1:]
    if change == 2:
        return text[:position]
    if change == 3:
        return text + draw(st.sampled_from([",", "}", " {}", "//x", " ", "\t", "\ufeff", " " + text, text, "]"]))
    if change == 4:
        return draw(st.sampled_from(["\ufeff", " ", "\t", "[", "\xa0", "\x0b"])) + text
    if change == 5:  # a key twice
        return text[:-1] + ("," if len(text) > 2 else "") + text[1:]
    return text.replace('"', "'") if draw(st.booleans()) else text.upper()


@st.composite
def line(draw, source: str) -> bytes:
    kind = draw(st.integers(0, 9))
    written = (draw(st.booleans()), draw(st.booleans()))  # ensure_ascii, compact: as serializers write it
    if kind <= 3:  # valid
        return _dumps(draw(record(source, valid=True)), *written).encode()
    if kind == 4:  # any fields, any values
        return _dumps(draw(record(source, valid=False)), *written).encode()
    if kind <= 6:
        return draw(near_valid(_dumps(draw(record(source, valid=True)), *written))).encode()
    if kind == 7:  # a line in Latin-1, or with a byte that is not UTF-8 anywhere
        text = _dumps(draw(record(source, valid=True)), False, True)
        if draw(st.booleans()):
            return text.encode("latin-1", errors="replace")
        position = draw(st.integers(0, len(text)))
        raw = draw(st.sampled_from([b"\xe9", b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc3"]))
        return text[:position].encode() + raw + text[position:].encode()
    if kind == 8:
        return draw(st.text(max_size=30)).encode()
    return draw(st.binary(max_size=30))


@st.composite
def batch(draw) -> dict[str, list[list[bytes]]]:
    """Per source, three files (one of them gzipped), each a list of lines."""
    files = {}
    for source in SOURCES:
        lines = draw(st.lists(line(source), min_size=LINES_PER_SOURCE // 2, max_size=LINES_PER_SOURCE))
        cuts = sorted(draw(st.lists(st.integers(0, len(lines)), min_size=2, max_size=2)))
        files[source] = [lines[:cuts[0]], lines[cuts[0]:cuts[1]], lines[cuts[1]:]]
    return files


# File names Spark would mangle (it reads a path as a URL and as a glob) and a gzipped file.
_NAMES = ["part {} +é%20.json", "part[{}].json", "part-{}.json.gz"]
_ENDINGS = [b"\n", b"\r\n", b"\r"]


def write_batch(root, number: int, files: dict[str, list[list[bytes]]], endings: list[int]) -> dict[str, int]:
    """Write a batch as landing files; the non-blank lines per source, as a reader of our own counts them."""
    expected = {}
    for source, chunks in files.items():
        count = 0
        for name, chunk, ending in zip(_NAMES, chunks, endings, strict=True):
            data = b"".join(raw + _ENDINGS[ending] for raw in chunk)
            name = name.format(number)
            write_bytes(root, source, name, gzip.compress(data) if name.endswith(".gz") else data)
            count += sum(_not_blank(piece) for piece in data.splitlines())  # LF, CR and CRLF end a line
        expected[source] = count
    return expected


def _not_blank(raw: bytes) -> bool:
    try:
        return raw.decode("utf-8").strip("".join(BLANK_CHARACTERS)) != ""
    except UnicodeDecodeError:
        return True


def test_every_line_meets_the_same_fate_on_both_engines(tmp_path):
    batches = []

    # Every batch is made first, then all are landed in one run per engine: a Spark run costs seconds.
    @settings(max_examples=BATCHES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(files=batch(), endings=st.lists(st.integers(0, 2), min_size=3, max_size=3))
    def collect(files, endings):
        batches.append((files, endings))

    collect()
    expected = dict.fromkeys(SOURCES, 0)
    for number, (files, endings) in enumerate(batches):
        for source, count in write_batch(tmp_path, number, files, endings).items():
            expected[source] += count
    results = {}
    for name in ("duckdb", "spark"):
        engine = make_engine(name)
        try:
            results[name] = land(engine, tmp_path)
        finally:
            engine.close()
    duckdb_run, spark_run = results["duckdb"], results["spark"]
    originals = {source: {raw for files, _ in batches for chunk in files[source] for raw in chunk}
                 for source in SOURCES}
    for source in SOURCES:
        assert _difference(_canonical(duckdb_run.landed[source]), _canonical(spark_run.landed[source])) == ([], [])
        assert _difference(duckdb_run.rejected[source], spark_run.rejected[source]) == ([], [])
        assert len(duckdb_run.landed[source]) + len(duckdb_run.rejected[source]) == expected[source], source
        for reason, kept, _ in duckdb_run.rejected[source]:
            if reason == INVALID_ENCODING:  # its bytes, recoverable
                assert any(kept.encode("latin-1") in raw for raw in originals[source]), kept
    for run in results.values():  # rejected_share may fail on lines this dirty; every other check passes
        assert [failure for failure in run.failures if ".rejected_share" not in failure] == []
    assert sum(expected.values()) > BATCHES * LINES_PER_SOURCE  # the batches were not all blank


def _difference(duckdb_rows: list[tuple], spark_rows: list[tuple]) -> tuple[list, list]:
    """What only DuckDB gave, and what only Spark gave (each row as often as it appears)."""
    only_duckdb, only_spark = list(duckdb_rows), []
    for row in spark_rows:
        if row in only_duckdb:
            only_duckdb.remove(row)
        else:
            only_spark.append(row)
    return only_duckdb, only_spark


def _canonical(rows: list[tuple]) -> list[tuple]:
    """Rows comparable as values: -0.0 and 0.0 kept apart."""
    return sorted((tuple(repr(v) if isinstance(v, float) and v == 0 else v for v in row) for row in rows), key=repr)
