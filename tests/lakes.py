"""Hand-made lakes for tests: landing files from records, a run, queries over what it published."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from stedi import duck
from stedi.catalogue import TABLES
from stedi.lake import Lake
from stedi.pipeline import RunReport, run_pipeline

STARTER = Path(__file__).resolve().parents[2] / "shared" / "data" / "stedi-starter"

T0 = 1_655_564_000_000  # an instant in the starter data's range (epoch ms)


def write_landing(root: Path, source: str, lines: list, name: str = "part-1.json") -> Path:
    """Write JSON lines (dicts are serialised, strings written as they are) into a landing folder."""
    folder = root / source / "landing"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def customer(email: str, serial: str, updated: int = T0, consent: int | None = T0, **extra) -> dict:
    record = {
        "customerName": email.split("@")[0].replace(".", " "),
        "email": email,
        "phone": "8015551212",
        "birthDay": "1980-01-01",
        "serialNumber": serial,
        "registrationDate": T0 - 1000,
        "lastUpdateDate": updated,
    }
    if consent is not None:
        record["shareWithResearchAsOfDate"] = consent
    record.update(extra)
    return record


def reading(user: str, ts: int, x: float = 0.0, y: float = 0.0, z: float = 0.0) -> dict:
    return {"user": user, "timestamp": ts, "x": x, "y": y, "z": z}


def step(serial: str, ts: int, distance: int = 200) -> dict:
    return {"sensorReadingTime": ts, "serialNumber": serial, "distanceFromObject": distance}


def make_lake(root: Path, customers: list, accelerometer: list, step_trainer: list) -> Lake:
    write_landing(root, "customer", customers)
    write_landing(root, "accelerometer", accelerometer)
    write_landing(root, "step_trainer", step_trainer)
    return Lake(root)


def run(lake: Lake, **options) -> RunReport:
    return run_pipeline(lake, **options)


def published(lake: Lake, sql: str) -> list[tuple]:
    """Run SQL over the published tables."""
    manifest = lake.published()
    assert manifest is not None, "nothing published"
    con = duckdb.connect()
    duck.view_tables(con, lake.staging(manifest["current"]["run_id"]), TABLES)
    return con.execute(sql).fetchall()
