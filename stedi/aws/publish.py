"""Publish a run whose every check passed: repoint the published tables, record the manifest, prune.

Readers query the published Glue database. Publishing points each of its
tables at this run's prefix, copying the definition the Glue job registered
in the staging database; a run that failed never reaches this step, so the
published tables keep pointing at the last good run. Glue has no transaction
over several tables: should it refuse one table, those already repointed are
put back as they were, so that the run fails with every table at the last
run. published.json in the bucket records the run and its figures, with the
runs published before it, as the local lake's manifest does; the staging of
the runs it no longer keeps is deleted, but for a run that failed after the
oldest of those it keeps.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Mapping

from stedi.accounting import manifest_entry
from stedi.aws.audit import catalog_tables, table_location, verify_staged_tables
from stedi.aws.run_input import RunInput
from stedi.catalogue import STAGES, TABLES
from stedi.lake import kept_runs, next_manifest, oldest_kept

MANIFEST_KEY = "published.json"
RUNS_PREFIX = "runs/"
# The parts of a catalog table that CreateTable/UpdateTable accept back.
TABLE_INPUT_KEYS = ("Name", "Description", "Owner", "Retention", "StorageDescriptor", "PartitionKeys",
                    "TableType", "Parameters")


class PublishIncomplete(Exception):
    """Repointing the published tables failed, and so did putting some of them back: they are mixed."""


def repoint_published_tables(glue: Any, staging_database: str, published_database: str, run: RunInput) -> None:
    """Point every published table at this run, or, should Glue refuse one, none (see the module's doc)."""
    staged = verify_staged_tables(glue, staging_database, run.staging, TABLES)
    before = catalog_tables(glue, published_database)
    repointed: list[str] = []
    try:
        for table, definition in staged.items():
            table_input = _table_input(definition)
            table_input["StorageDescriptor"] = _located(definition["StorageDescriptor"],
                                                        table_location(run.staging, table))
            if table in before:
                glue.update_table(DatabaseName=published_database, TableInput=table_input)
            else:
                glue.create_table(DatabaseName=published_database, TableInput=table_input)
            repointed.append(table)
    except Exception as failure:
        unrestored = _put_back(glue, published_database, before, repointed)
        if unrestored:
            raise PublishIncomplete(
                f"repointing the published tables failed ({failure}), and putting back {', '.join(unrestored)} "
                "failed too: those tables point at this run, the others at the last one, until the next publish"
            ) from failure
        raise


def _put_back(glue: Any, database: str, before: Mapping[str, Mapping[str, Any]], tables: list[str]) -> list[str]:
    """Each table as it was before (none: deleted); gives those that could not be put back."""
    unrestored = []
    for table in reversed(tables):
        try:
            if table in before:
                glue.update_table(DatabaseName=database, TableInput=_table_input(before[table]))
            else:
                glue.delete_table(DatabaseName=database, Name=table)
        except Exception:  # every table is tried; the caller names those that stay repointed
            unrestored.append(table)
    return unrestored


def _table_input(table: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a table, as GetTable(s) gives it, that CreateTable and UpdateTable take back."""
    return {key: table[key] for key in TABLE_INPUT_KEYS if key in table}


def _located(descriptor: dict[str, Any], location: str) -> dict[str, Any]:
    """The storage descriptor at `location`. Athena reads Location; Spark reads the table's
    files from the SerDe's `path`, which Spark writes when it registers a table."""
    located = {**descriptor, "Location": location}
    serde = descriptor.get("SerdeInfo", {})
    if "path" in serde.get("Parameters", {}):
        located["SerdeInfo"] = {**serde, "Parameters": {**serde["Parameters"], "path": location}}
    return located


def glue_manifest_entry(run: RunInput, stage_summaries: Mapping[str, Mapping[str, Any]],
                        jobs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What published.json records about the run: the entry the local run builds, from the check
    Lambda's stage summaries and each Glue job run's ExecutionTime."""
    return manifest_entry(run.run_id, "glue", run.consent_scope,
                          [stage_summaries[stage] for stage in STAGES],
                          {stage: float(jobs.get(stage, {}).get("seconds", 0)) for stage in STAGES})


def read_manifest(s3: Any, bucket: str) -> dict[str, Any] | None:
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=MANIFEST_KEY)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def write_manifest(s3: Any, bucket: str, entry: dict[str, Any]) -> tuple[dict | None, dict[str, Any]]:
    """Publish `entry` in the manifest: (the manifest before, the manifest written)."""
    previous = read_manifest(s3, bucket)
    manifest = next_manifest(previous, entry)
    s3.put_object(Bucket=bucket, Key=MANIFEST_KEY, Body=json.dumps(manifest, indent=2).encode(),
                  ContentType="application/json")
    return previous, manifest


def prune_runs(s3: Any, bucket: str, keep: set[str], oldest: str | None) -> list[str]:
    """Delete the staging of every run that is neither kept nor ran after `oldest` (stedi.lake.oldest_kept);
    none while it is None. Execution names are in no order: which run ran first is told by when S3 got a
    file of each (runs run one at a time, so any file of a later run is newer than every file of an earlier one)."""
    if oldest is None:
        return []
    since = _written_at(s3, bucket, oldest)
    pruned = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=RUNS_PREFIX, Delimiter="/"):
        for prefix in page.get("CommonPrefixes", []):
            run_id = prefix["Prefix"][len(RUNS_PREFIX):].rstrip("/")
            if run_id in keep:
                continue
            written = _written_at(s3, bucket, run_id)
            if since is not None and written is not None and written > since:
                continue  # failed after the oldest run kept: kept as long as it is
            _delete_prefix(s3, bucket, prefix["Prefix"])
            pruned.append(run_id)
    return pruned


def _written_at(s3: Any, bucket: str, run_id: str) -> datetime | None:
    """When S3 got the first-listed file of a run's staging (a datetime), or None if it has none."""
    first = s3.list_objects_v2(Bucket=bucket, Prefix=f"{RUNS_PREFIX}{run_id}/", MaxKeys=1).get("Contents", [])
    return first[0]["LastModified"] if first else None


def _delete_prefix(s3: Any, bucket: str, prefix: str) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:  # one list page holds at most 1,000 keys, as many as one delete may name
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def publish_run(glue: Any, s3: Any, *, bucket: str, staging_database: str, published_database: str,
                run: RunInput, stage_summaries: Mapping[str, Mapping[str, Any]],
                jobs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    failed = [stage for stage in STAGES if int(stage_summaries[stage].get("checks_failed", 0))]
    if failed:  # the state machine never gets here with one; a run whose checks failed is never published
        raise ValueError(f"checks of {', '.join(failed)} failed: the run is not published")
    entry = glue_manifest_entry(run, stage_summaries, jobs)
    repoint_published_tables(glue, staging_database, published_database, run)
    previous, manifest = write_manifest(s3, bucket, entry)
    pruned = prune_runs(s3, bucket, keep=kept_runs(manifest), oldest=oldest_kept(previous, manifest))
    # The run summary, as published.json records it: the execution's output.
    return {"run_id": run.run_id, "tables_published": len(TABLES), "runs_pruned": len(pruned), "summary": entry}
