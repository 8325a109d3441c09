"""The stages' SQL: written in Spark SQL (spark/), run on DuckDB as committed translations (duckdb/).

    spark/<stage>.sql           a stage's statement, as written: its own logic, nothing else
    spark/landing_<source>.sql  the landing statements, built from the schemas by stedi.landing
    spark/landing_drift.sql     the landing stage's count of keys outside the schemas, by stedi.landing
    duckdb/<name>.sql           each of the above translated for DuckDB by stedi.translate

Everything but spark/<stage>.sql is written by `make generate`; a test fails
when a committed file differs from what it would write.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Callable

from stedi.catalogue import FILTERING, STAGE, TYPED
from stedi.runner import StageJob, Statement

DIALECTS = ("spark", "duckdb")


def sql_text(name: str, dialect: str) -> str:
    return files(__package__).joinpath(dialect, f"{name}.sql").read_text()


def stage_job(stage: str, dialect: str, read: Callable[[str, str], str] = sql_text) -> StageJob:
    """What an engine needs to run a stage: its statements in `dialect`, what each reads and writes.

    `read` gives a statement's text by name and dialect (the code generator reads what it is about to write).
    """
    definition = STAGE[stage]
    if definition.kind == TYPED:
        statements = tuple(
            Statement(read(name, dialect), writes=source.landing_table, sets_aside=source.rejected_table,
                      landing=source.landing_folder, raw_view=source.raw_table,
                      columns=tuple(field.name for field in source.fields), drift=source.drift_table)
            for name, source in zip(definition.statements, definition.sources, strict=True))
        return StageJob(stage, "reason", (), statements, drift_sql=read(definition.drift_statement, dialect))
    [name] = definition.statements
    statement = Statement(read(name, dialect), writes=definition.name, sets_aside=definition.filtered_table)
    return StageJob(stage, "filtered_by" if definition.kind == FILTERING else None, definition.reads, (statement,))
