"""The bare floor: the plainest program that computes the five published tables.

What a data engineer would write without the pipeline: DuckDB reads each
source's landing files with read_json_auto and the landing schema's column
types, five hand-written statements (consent scope `reading`) build the
tables in memory, and each is written to Parquet. No rejection of bad lines,
no checks, no staging, no publish: the lower bound against which the cost of
`stedi run` is measured. It imports nothing of the project.

    python bench/bare_floor.py --lake DIR [--out DIR]

Writes <out>/<table>.parquet (without --out, into a temporary folder deleted
on exit) and prints the seconds of each table (its statement, reading the
landing files it needs, and its write), in the layout of the `seconds` block
of `stedi run`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb

# The landing schemas (stedi/catalogue.py), in DuckDB's type names.
LANDING_COLUMNS = {
    "customer": {
        "customerName": "VARCHAR", "email": "VARCHAR", "phone": "VARCHAR", "birthDay": "VARCHAR",
        "serialNumber": "VARCHAR", "registrationDate": "BIGINT", "lastUpdateDate": "BIGINT",
        "shareWithResearchAsOfDate": "BIGINT", "shareWithPublicAsOfDate": "BIGINT",
        "shareWithFriendsAsOfDate": "BIGINT",
    },
    "accelerometer": {"user": "VARCHAR", "timestamp": "BIGINT", "x": "DOUBLE", "y": "DOUBLE", "z": "DOUBLE"},
    "step_trainer": {"sensorReadingTime": "BIGINT", "serialNumber": "VARCHAR", "distanceFromObject": "INTEGER"},
}

CUSTOMER_COLUMNS = """customerName, email, phone, birthDay, serialNumber, registrationDate, lastUpdateDate,
       shareWithResearchAsOfDate, shareWithPublicAsOfDate, shareWithFriendsAsOfDate"""

STAGES = {
    # The latest record of each email (on a tie, one without consent wins), kept if it gives consent.
    # A tie of consent dates too is left to chance (the pipeline breaks it on the other columns).
    "customer_trusted": f"""
        SELECT {CUSTOMER_COLUMNS}
        FROM customer_landing
        QUALIFY row_number() OVER (PARTITION BY email
                                   ORDER BY lastUpdateDate DESC, shareWithResearchAsOfDate DESC NULLS FIRST) = 1
            AND shareWithResearchAsOfDate IS NOT NULL""",
    "accelerometer_trusted": """
        SELECT DISTINCT a."user", a."timestamp", a.x, a.y, a.z
        FROM accelerometer_landing a
        JOIN customer_trusted c ON c.email = a."user"
        WHERE a."timestamp" >= c.shareWithResearchAsOfDate""",
    "customer_curated": f"""
        SELECT {CUSTOMER_COLUMNS}
        FROM customer_trusted
        WHERE email IN (SELECT "user" FROM accelerometer_trusted)""",
    # A serial number carried by more than one curated customer has no single owner.
    "step_trainer_trusted": """
        WITH owners AS (
            SELECT serialNumber, max(shareWithResearchAsOfDate) AS consent_date
            FROM customer_curated
            GROUP BY serialNumber
            HAVING count(*) = 1
        )
        SELECT DISTINCT s.sensorReadingTime, s.serialNumber, s.distanceFromObject
        FROM step_trainer_landing s
        JOIN owners o ON o.serialNumber = s.serialNumber
        WHERE s.sensorReadingTime >= o.consent_date""",
    "machine_learning_curated": """
        SELECT s.serialNumber, s.sensorReadingTime, s.distanceFromObject, a."timestamp", a.x, a.y, a.z
        FROM step_trainer_trusted s
        JOIN customer_curated c ON c.serialNumber = s.serialNumber
        JOIN accelerometer_trusted a ON a."user" = c.email AND a."timestamp" = s.sensorReadingTime""",
}


def quote(value: str | Path) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def run_bare_floor(lake: Path, out: Path) -> dict[str, float]:
    """Build the five tables from `lake`'s landing files into `out`; the seconds of each (statement and write)."""
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")  # as the DuckDB engine runs
    for source, columns in LANDING_COLUMNS.items():
        # Every file of the folder: the pipeline skips hidden and _-prefixed ones, which no measured lake has.
        types = "{" + ", ".join(f"{quote(name)}: {quote(kind)}" for name, kind in columns.items()) + "}"
        con.execute(f"""CREATE VIEW {source}_landing AS SELECT * FROM read_json_auto(
            {quote(lake / source / 'landing' / '*')}, format = 'newline_delimited', columns = {types})""")
    seconds = {}
    for table, sql in STAGES.items():
        started = time.perf_counter()
        con.execute(f"CREATE TABLE {table} AS {sql}")
        con.execute(f"COPY {table} TO {quote(out / f'{table}.parquet')} (FORMAT parquet)")
        seconds[table] = time.perf_counter() - started
    con.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", type=Path, required=True, help="a lake folder: <lake>/<source>/landing/*")
    parser.add_argument("--out", type=Path, help="where to write the tables (default: a temporary folder)")
    args = parser.parse_args()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        seconds = run_bare_floor(args.lake, args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="stedi-bare-floor-") as out:
            seconds = run_bare_floor(args.lake, Path(out))
    print("seconds")
    for step, value in seconds.items():
        print(f"  {step:<28} {value:8.2f}")
    print(f"  {'total':<28} {sum(seconds.values()):8.2f}")


if __name__ == "__main__":
    main()
