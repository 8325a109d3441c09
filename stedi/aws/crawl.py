"""The landing crawl: whether a run has anything to catalogue, and whether the crawl kept every type.

The crawled database holds one table per source, `<source>_landing` (the names
of stedi.catalogue), over its landing folder: a view of the uploads for people
exploring them, never read by the pipeline. One crawler keeps the three up to
date, with the tables themselves as its targets, so the names are the
catalogue's rather than the crawler's (three folders named `landing` would
otherwise get one table named `landing` and two with a hash added).

A run crawls at most once, and only when there is something to catalogue: a
table missing (the first run: plan_crawl creates it, with no columns, for the
crawler to fill) or without columns, or a key outside a source's schema that
the landing stage saw and the table has no column for. After the crawl,
verify_crawl fails the run if a column the table had changed type: the crawler
updates the table in the database (a new key must become a column), so a
change of type in the uploads reaches the catalog, and the run says where.

Standard library only: the check Lambda ships it in the layer.
"""

from __future__ import annotations

from typing import Any, Mapping

from stedi.catalogue import LANDING_SOURCES, Source

# The tables the crawler is given as targets hold JSON lines; the crawler fills in their columns.
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
TEXT_INPUT_FORMAT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

Columns = dict[str, str]  # column name -> type, as the catalog has them


class CrawlRetyped(Exception):
    """The crawl changed the type of a column the crawled table already had."""


def landing_table_input(source: Source, bucket: str) -> dict:
    """The crawled table of a source before its first crawl: JSON lines at its landing folder, no columns yet."""
    return {
        "Name": source.landing_table,
        "Description": f"The uploads of {source.landing_folder}/ as the landing crawler sees them.",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "json"},
        "StorageDescriptor": {
            "Columns": [],
            "Location": f"s3://{bucket}/{source.landing_folder}/",
            "InputFormat": TEXT_INPUT_FORMAT,
            "OutputFormat": TEXT_OUTPUT_FORMAT,
            "SerdeInfo": {"SerializationLibrary": JSON_SERDE},
        },
    }


def catalogued_columns(glue: Any, database: str, table: str) -> Columns | None:
    """The table's columns (None when there is no such table)."""
    try:
        descriptor = glue.get_table(DatabaseName=database, Name=table)["Table"].get("StorageDescriptor", {})
    except glue.exceptions.EntityNotFoundException:
        return None
    return {column["Name"]: column.get("Type", "") for column in descriptor.get("Columns", [])}


def plan_crawl(glue: Any, database: str, bucket: str, drift: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Whether the landing crawler has anything to catalogue, why, and the columns before it crawls.

    `drift` is the landing stage's (stedi.accounting.drift): per source, the keys outside its schema. A
    missing table is created, empty, for the crawler to fill. Column names are compared without case:
    the catalog keeps them in lower case
    (https://docs.aws.amazon.com/athena/latest/ug/tables-databases-columns-names.html).
    """
    reasons, before = [], {}
    for source in LANDING_SOURCES:
        table = source.landing_table
        columns = catalogued_columns(glue, database, table)
        if columns is None:
            glue.create_table(DatabaseName=database, TableInput=landing_table_input(source, bucket))
            reasons.append(f"{table} is new in {database}")
            columns = {}
        elif not columns:
            reasons.append(f"{table} has no columns yet")
        known = {name.lower() for name in columns}
        new = [key for key in drift.get(source.name, {}) if key.lower() not in known]
        if columns and new:
            reasons.append(f"{table} has no column for {', '.join(repr(key) for key in new)}")
        before[table] = columns
    return {"needed": bool(reasons), "reasons": reasons, "columns": before}


def verify_crawl(glue: Any, database: str, before: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """After the crawl: every column the crawled tables had keeps its type; raises CrawlRetyped naming each
    one that did not. Returns the columns each table has now."""
    after, retyped = {}, []
    for table, columns in before.items():
        now = catalogued_columns(glue, database, table) or {}
        after[table] = now
        retyped += [f"{table}.{name} from {kind} to {now[name]}" for name, kind in columns.items()
                    if name in now and now[name] != kind]
    if retyped:
        raise CrawlRetyped(
            f"the landing crawl retyped {len(retyped)} catalogued column(s) of {database}: {'; '.join(retyped)}. "
            "Uploads now hold other kinds of values under these keys than before. Queries of the crawled tables "
            "that relied on the old types need a look; the table's previous version is kept by Glue "
            "(aws glue get-table-versions). The pipeline's own tables are typed by stedi/catalogue.py and are "
            "not affected.")
    return {"columns": after}
