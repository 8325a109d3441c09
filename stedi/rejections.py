"""When a landing check fails: per source, the most frequent reasons, each with one line to look at.

`describe` is pure: it turns the counts and the examples into the lines the
command line prints. `find_examples` gathers the examples from a run's staged
rejected tables, and finds each one's line number by reading its file: only
after a failure, so the scan costs nothing on a good run.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import duckdb

from stedi import duck
from stedi.catalogue import INVALID_ENCODING, SOURCE

TOP_REASONS = 3
SHOWN_CHARACTERS = 80


@dataclass(frozen=True)
class Example:
    line: str  # as the rejected table keeps it
    source_file: str  # <source>/landing/<name>
    line_number: int | None  # in the file, from 1; None if the file no longer holds the line


def describe(rejected: Mapping[str, Mapping[str, int]], examples: Mapping[tuple[str, str], Example],
             top: int = TOP_REASONS, width: int = SHOWN_CHARACTERS) -> list[str]:
    """Per source with rejected lines, its `top` reasons by count (ties by name), each with its example."""
    out = []
    for source, reasons in rejected.items():
        ranked = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
        if not ranked:
            continue
        total = sum(reasons.values())
        more = f", and {len(ranked) - top} more reasons" if len(ranked) > top else ""
        out.append(f"  {source}: {total:,} lines rejected{more}")
        for reason, count in ranked[:top]:
            example = examples.get((source, reason))
            out.append(f"    {reason} {count:,}")
            if example is not None:
                where = example.source_file + (f" line {example.line_number}" if example.line_number else "")
                out.append(f"      e.g. {where}: {shown(example.line, width)}")
    return out


def shown(line: str, width: int = SHOWN_CHARACTERS) -> str:
    """A line as a terminal can show it: control characters escaped, cut to `width` characters."""
    visible = "".join(c if c.isprintable() or c == " " else ascii(c)[1:-1] for c in line)
    return visible if len(visible) <= width else visible[: width - 1] + "…"


def find_examples(staging: Path, lake_root: Path, rejected: Mapping[str, Mapping[str, int]]) -> dict[tuple[str, str],
                                                                                                       Example]:
    """For each source and reason rejected in the run staged at `staging`, the first line (by file, then text)."""
    con = duckdb.connect()
    found = {}
    for source, reasons in rejected.items():
        if not reasons:
            continue
        table = staging / SOURCE[source].rejected_table
        rows = con.execute(f"SELECT reason, min([source_file, line]) FROM ({duck.parquet_sql(table)}) "
                           "GROUP BY reason").fetchall()
        for reason, (source_file, line) in rows:
            found[(source, reason)] = Example(line, source_file,
                                              line_number(lake_root / source_file, line, reason == INVALID_ENCODING))
    con.close()
    return found


def line_number(path: Path, line: str, latin1: bool) -> int | None:
    """Where `line` (as the rejected table keeps it) first stands in the file, lines split as the engines split them."""
    try:
        data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    except OSError:
        return None
    wanted = line.encode("latin-1") if latin1 else line.encode()
    for number, raw in enumerate(data.splitlines(), start=1):  # LF, CR and CRLF end a line, as in Spark
        if raw == wanted or (not latin1 and raw.startswith(b"\xef\xbb\xbf") and raw[3:] == wanted):
            return number
    return None
