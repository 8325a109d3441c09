"""The landing stage alone, on either engine, over landing files written byte for byte.

For the tests of what becomes of each landing line: the stage and its checks
run as in a pipeline run (stedi.pipeline), without the stages after it, so one
Spark session serves many runs.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from stedi import duck
from stedi.catalogue import SOURCES, STAGE
from stedi.lake import Lake
from stedi.pipeline import Audit


@dataclass
class Landed:
    landed: dict[str, list[tuple]]  # per source: the typed rows (with source_file), sorted
    rejected: dict[str, list[tuple]]  # per source: (reason, line, source_file), sorted
    failures: list[str]  # the landing checks that failed

    def reasons(self, source: str) -> dict[str, str]:
        """Each rejected line of a source, with its reason."""
        return {line: reason for reason, line, _ in self.rejected[source]}


def write_bytes(root: Path, source: str, name: str, data: bytes) -> Path:
    folder = root / source / "landing"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


def lines(*items: str | bytes) -> bytes:
    """Lines (text as UTF-8, bytes as they are), each ended by LF."""
    return b"".join((item if isinstance(item, bytes) else item.encode()) + b"\n" for item in items)


def land(engine, root: Path) -> Landed:
    """Run the landing stage and its checks over the lake at `root` on `engine` (an engine object)."""
    lake = Lake(root)
    snapshot = lake.snapshot()
    (root / "runs").mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="landing-", dir=root / "runs"))
    engine.run_stage("landing", snapshot, staging, "reading")
    audit = Audit(snapshot, staging)
    try:
        failures = [r.describe() for r in audit.audit("landing", "reading", {})[1] if r.failed]
    finally:
        audit.close()
    con = duckdb.connect()
    duck.view_tables(con, staging, STAGE["landing"].tables)
    landed = {s: sorted(con.execute(f"SELECT * FROM {s}_landing").fetchall(), key=repr) for s in SOURCES}
    rejected = {s: sorted(con.execute(f"SELECT reason, line, source_file FROM {s}_rejected").fetchall())
                for s in SOURCES}
    con.close()
    return Landed(landed, rejected, failures)
