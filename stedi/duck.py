"""DuckDB views over the lake's files, shared by the DuckDB engine, the checks and `stedi query`."""

from __future__ import annotations

import codecs
import gzip
import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

import duckdb

from stedi.runner import MAX_LINE_BYTES, TOO_LONG, refuse_unreadable


def quote(value: str | Path) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def file_list(files: Iterable[Path]) -> str:
    return "[" + ", ".join(quote(f) for f in files) + "]"


def is_gzip(path: Path) -> bool:
    """As Spark's codecs and Athena go by the name: .gz, and no other spelling."""
    return path.name.endswith(".gz")


def _open(path: Path):
    return gzip.open(path, "rb") if is_gzip(path) else path.open("rb")




# Per landing file, by (path, size, modification time): whether it is UTF-8 throughout, and if it
# is not, its lines written out as UTF-8 (see _transcoded). The engine and the checks both read
# the landing files of a run: each file is scanned once.
_UTF8: dict[tuple[str, int, int], bool] = {}
_TRANSCODED: dict[tuple[str, int, int], Path] = {}
_SCRATCH: tempfile.TemporaryDirectory | None = None


def _key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns


def is_utf8(path: Path) -> bool:
    """Whether the file (unpacked, for a .gz file) is UTF-8 throughout; most files are ASCII, found at once."""
    key = _key(path)
    if key not in _UTF8:
        _UTF8[key] = _scan_utf8(path)
    return _UTF8[key]


def _scan_utf8(path: Path) -> bool:
    """Whether the file is UTF-8; raises ValueError on a line longer than MAX_LINE_BYTES, which DuckDB's
    reader would not say (it drops an over-long last line of a file without a word)."""
    decoder = None
    run = 0  # bytes since the last line end
    buffer = bytearray(1 << 22)  # far shorter than a line may be: only a run across chunks can be; reused
    try:
        with _open(path) as stream:
            while size := stream.readinto(buffer):
                chunk = buffer if size == len(buffer) else buffer[:size]
                first = min((i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0), default=len(chunk))
                if run + first > MAX_LINE_BYTES:
                    run += first
                    break
                if first < len(chunk):
                    run = len(chunk) - 1 - max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
                else:
                    run += len(chunk)
                if decoder is None and chunk.isascii():
                    continue
                decoder = decoder or codecs.getincrementaldecoder("utf-8")()
                decoder.decode(chunk)
            if decoder is not None:
                decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        valid = False
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{path}: cannot be unpacked ({error}); a .gz upload must be gzip-compressed") from None
    else:
        valid = True
    if run > MAX_LINE_BYTES:
        raise ValueError(f"{path}{TOO_LONG}")
    return valid


def _transcoded(path: Path) -> Path:
    """A file that is not UTF-8, as DuckDB can read it: each of its lines (split as Spark splits them) on a
    line of its own, after a mark, 1 for a line that is UTF-8, 0 for one that is not, then written as its
    bytes read as Latin-1. (DuckDB's own latin-1 refuses the bytes 0x80-0x9F.) Blank lines are left out."""
    global _SCRATCH
    key = _key(path)
    if key not in _TRANSCODED:
        if _SCRATCH is None:
            _SCRATCH = tempfile.TemporaryDirectory(prefix="stedi-landing-")
        target = Path(_SCRATCH.name) / f"{len(_TRANSCODED)}.txt"
        with _open(path) as stream, target.open("wb") as out:
            for piece in stream:  # split at LF; a CR ends a line too, as Hadoop's and Athena's readers have it
                for raw in piece.rstrip(b"\n").split(b"\r"):
                    if len(raw) > MAX_LINE_BYTES:
                        raise ValueError(f"{path}{TOO_LONG}")
                    if not raw:
                        continue
                    try:
                        text, mark = raw.decode("utf-8"), "1"
                    except UnicodeDecodeError:
                        text, mark = raw.decode("latin-1"), "0"
                    out.write((mark + text + "\n").encode())
        _TRANSCODED[key] = target
    return _TRANSCODED[key]


# No line is longer than MAX_LINE_BYTES (_scan_utf8 and _transcoded have seen to it), but DuckDB
# counts a line of a transcoded file in UTF-8: up to two bytes for each byte uploaded.
_READER_LINE_BYTES = 2 * MAX_LINE_BYTES + 64


def _read_csv(files: list[str], *, gzipped: bool = False) -> str:
    """(line, filename): each line of the files, whole: a delimiter and quotes that never split one, no type
    sniffing. new_line '\\n' makes DuckDB end a line at LF, CR or CRLF, as Hadoop's and Athena's readers do
    (left to detect it, DuckDB can lose a line after a lone CR in a file that ends lines with CRLF); it may
    add an empty line at a CRLF, which is blank and so no record."""
    return (
        f"SELECT coalesce(line, '') AS line, filename "
        f"FROM read_csv([{', '.join(quote(f) for f in files)}], columns = {{'line': 'VARCHAR'}}, "
        # The delimiter is a real line feed, which no line holds ('\\n' would be a backslash and an n).
        "header = false, delim = '\n', new_line = '\\n', quote = '', escape = '', auto_detect = false, "
        f"filename = true, strict_mode = false, compression = '{'gzip' if gzipped else 'none'}', "
        f"max_line_size = {_READER_LINE_BYTES}, buffer_size = {_READER_LINE_BYTES + 64})"
    )


def _glob_escaped(path: Path | str) -> str:
    """DuckDB reads a path as a glob: a file named a[1].json would be read as a1.json."""
    return "".join(f"[{c}]" if c in "[]*?{}" else c for c in str(path))


def raw_lines_sql(files: Iterable[Path], folder: str, *, scan: bool = True) -> str:
    """(line, source_file, valid_utf8): each line of the files, all in the landing folder `folder`, with its
    file as <folder>/<file name>, as Spark reads them (stedi.runner.raw_lines): a line that is not UTF-8 is its
    bytes read as Latin-1, with valid_utf8 false.

    Each file is scanned first (is_utf8), unless `scan` is false: then a file not scanned yet is read as
    UTF-8 unchecked, and a query that reads it whole fails on a byte that is not UTF-8 (DuckDB's reader
    refuses it) or a line over MAX_LINE_BYTES; the caller scans then (see DuckDBEngine.run_stage).
    """
    files = list(files)
    refuse_unreadable(str(f) for f in files)
    source_file = f"{quote(folder + '/')} || parse_filename(filename, false, 'forward_slash') AS source_file"
    unscanned = set() if scan else {f for f in files if _key(f) not in _UTF8 and not is_gzip(f) and _last_line_fits(f)}
    parts = []
    if unscanned:
        too_long = quote(TOO_LONG)
        parts.append(f"SELECT CASE WHEN strlen(line) > {MAX_LINE_BYTES} THEN error(filename || {too_long}) "
                     f"ELSE line END AS line, {source_file}, true AS valid_utf8 "
                     f"FROM ({_read_csv([_glob_escaped(f) for f in files if f in unscanned])})")
    scanned = [f for f in files if f not in unscanned]
    for gzipped in (False, True):  # nearly every file: UTF-8, which DuckDB checks as it reads
        utf8 = [_glob_escaped(f) for f in scanned if is_gzip(f) == gzipped and is_utf8(f)]
        if utf8:
            parts.append(f"SELECT line, {source_file}, true AS valid_utf8 "
                         f"FROM ({_read_csv(utf8, gzipped=gzipped)})")
    for f in scanned:  # a file with a line that is not UTF-8, made readable first
        if not is_utf8(f):
            parts.append(f"SELECT substr(line, 2) AS line, {quote(f'{folder}/{f.name}')} AS source_file, "
                         "line[1] = '1' AS valid_utf8 "
                         f"FROM ({_read_csv([_glob_escaped(_transcoded(f))])})")
    return "\nUNION ALL\n".join(parts)


def read_whole(files: Iterable[Path]) -> None:
    """A query read the files whole through raw_lines_sql(scan=False) and succeeded: each is UTF-8
    with no line over the limit, and needs no scan."""
    for f in files:
        _UTF8.setdefault(_key(f), True)


def _last_line_fits(path: Path) -> bool:
    """Whether the file's last line (blank lines after it aside) is within MAX_LINE_BYTES: DuckDB's
    reader drops a longer last line without a word, where it fails on any other over-long line."""
    with path.open("rb") as stream:
        end = stream.seek(0, 2)
        tail, block = b"", 1 << 16
        while True:
            start = max(0, end - len(tail) - block)
            stream.seek(start)
            tail = stream.read(end - len(tail) - start) + tail
            block *= 2
            body = tail.rstrip(b"\r\n")
            last_break = max(body.rfind(b"\n"), body.rfind(b"\r"))
            if last_break >= 0 or start == 0:
                return len(body) - 1 - last_break <= MAX_LINE_BYTES
            if len(body) > MAX_LINE_BYTES:
                return False


def parquet_sql(table_dir: Path) -> str:
    return f"SELECT * FROM read_parquet({quote(table_dir / '*.parquet')})"


def view_raw(con: duckdb.DuckDBPyConnection, view: str, files: Iterable[Path], folder: str, *,
             scan: bool = True) -> None:
    """`view`(line, source_file, valid_utf8): every line of the files of `folder` (`scan`: see raw_lines_sql)."""
    con.execute(f"CREATE OR REPLACE VIEW {view} AS {raw_lines_sql(files, folder, scan=scan)}")


def view_tables(con: duckdb.DuckDBPyConnection, staging: Path, tables: Iterable[str]) -> None:
    for table in tables:
        con.execute(f"CREATE OR REPLACE VIEW {table} AS {parquet_sql(staging / table)}")


def write_rows(path: Path, columns: dict[str, str], rows: list[dict]) -> None:
    """Write rows (dicts keyed by column) as one Parquet file with the given DuckDB column types, in their
    order, on a connection of its own. The rows go in as one JSON parameter: a statement with a parameter
    per value takes a few times longer to prepare than the rows take to write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT unnest(from_json($rows, $columns), recursive := true)) TO {quote(temporary)} "
                    "(FORMAT parquet)", {"rows": json.dumps(rows), "columns": json.dumps([columns])})
    temporary.replace(path)  # readers of the history never see a half-written file


def answer_all(con: duckdb.DuckDBPyConnection, values: list[str], rows: list[str], workers: int = 4
               ) -> tuple[dict[str, object], dict[str, list[tuple]]]:
    """Each distinct query once, on a cursor of its own, `workers` at a time: a stage's checks are many
    small queries, and one alone leaves cores idle. Gives each value query's one value and each rows query's rows."""
    def answer(sql: str) -> list[tuple]:
        cursor = con.cursor()
        try:
            return cursor.execute(sql).fetchall()
        finally:
            cursor.close()

    queries = list(dict.fromkeys([*values, *rows]))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        answers = dict(zip(queries, pool.map(answer, queries), strict=True))
    return ({sql: answers[sql][0][0] if answers[sql] else None for sql in values},
            {sql: answers[sql] for sql in rows})


def scalar(con: duckdb.DuckDBPyConnection, sql: str):
    row = con.execute(sql).fetchone()
    return None if row is None else row[0]
