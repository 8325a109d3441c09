"""The floor: the five stage statements straight in DuckDB, and nothing else.

Reads each source's landing files with DuckDB's read_json and the explicit
landing schemas of glue_scripts/landing.py, runs the five stage statements
of the Glue scripts (translated by stedi.sqldialect.spark_to_duckdb, consent
scope `reading`), materialises each result as a table and writes the five
outputs to Parquet in a temporary folder, deleted on exit. No rejection, no
checks, no staging, no publish: the lower bound against which the overhead
of `stedi run` is measured.

    python bench/floor.py --lake DIR

Prints the seconds spent reading landing, in each stage and writing Parquet,
in the same layout as the `seconds` block of `stedi run`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb

from stedi.duck import file_list, quote
from stedi.engines import glue_script
from stedi.lake import Lake
from stedi.sqldialect import duckdb_type, spark_to_duckdb
from stedi.stages import SOURCES, STAGES, filtered_table

CONSENT_SCOPE = "reading"


def read_landing_sql(source: str, files: list[Path]) -> str:
    """A source's landing files as typed rows, with the file each row came from as source_file."""
    schema = glue_script("landing").LANDING_SCHEMAS[source]
    columns = "{" + ", ".join(f"{quote(name)}: {quote(duckdb_type(sql_type))}" for name, sql_type, _ in schema) + "}"
    return (f"SELECT * EXCLUDE (filename), filename AS source_file FROM read_json({file_list(files)}, "
            f"format = 'newline_delimited', columns = {columns}, filename = true)")


def stage_sql(stage: str) -> str:
    """The stage's statement from its Glue script, in DuckDB's dialect, keeping only the rows it keeps."""
    sql = spark_to_duckdb(glue_script(stage).SQL, consent_scope=CONSENT_SCOPE)
    if filtered_table(stage):
        return f"SELECT * EXCLUDE (filtered_by) FROM ({sql}) AS classified WHERE filtered_by IS NULL"
    return sql


def run_floor(lake: Lake, output: Path) -> dict[str, float]:
    """Run everything once; return the seconds of each step (the statements are prepared before the clock starts)."""
    landing = {source: read_landing_sql(source, lake.landing_files(source)) for source in SOURCES}
    stages = {stage: stage_sql(stage) for stage in STAGES if stage != "landing"}
    seconds = {}
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")  # as the DuckDB engine runs
    started = time.perf_counter()
    for source, sql in landing.items():
        con.execute(f"CREATE TABLE {source}_landing AS {sql}")
    seconds["landing"] = time.perf_counter() - started
    for stage, sql in stages.items():
        started = time.perf_counter()
        con.execute(f"CREATE TABLE {stage} AS {sql}")
        seconds[stage] = time.perf_counter() - started
    started = time.perf_counter()
    for stage in stages:
        con.execute(f"COPY {stage} TO {quote(output / f'{stage}.parquet')} (FORMAT parquet)")
    seconds["write parquet"] = time.perf_counter() - started
    con.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", type=Path, required=True, help="a lake folder: <lake>/<source>/landing/*")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stedi-floor-") as output:
        seconds = run_floor(Lake(args.lake), Path(output))
    print("seconds")
    for step, value in seconds.items():
        print(f"  {step:<28} {value:8.2f}")
    print(f"  {'total':<28} {sum(seconds.values()):8.2f}")


if __name__ == "__main__":
    main()
