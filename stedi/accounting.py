"""What a run records about itself, built the same way by the local run and on AWS.

After each stage: its rows per table, what it set aside (lines rejected by
reason, records filtered by rule), its checks and its seconds; at publish,
the manifest entry made from every stage's summary. The local pipeline and
the check and publish Lambdas call these functions, so published.json holds
the same figures for the same data wherever it was written.

Standard library only: the Lambda layer ships this module.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Mapping

from stedi.catalogue import STAGE, TYPED
from stedi.checks import CheckResult

CHECK_STATUSES = ("passed", "failed", "skipped")
# The keys of a stage summary: the state machine passes these on from the check Lambda to the publish Lambda.
SUMMARY_KEYS = ("stage", "rows", "set_aside", *(f"checks_{status}" for status in CHECK_STATUSES), "check_seconds")
Rows = Callable[[str], Iterable[tuple[Any, Any]]]  # SQL -> (name, number) rows


def row_count_queries(stage: str) -> dict[str, str]:
    """Per table of records a stage writes, the SQL counting its rows."""
    return {table: f"SELECT count(*) FROM {table}" for table in STAGE[stage].record_tables}


def set_aside_queries(stage: str) -> dict[str, str]:
    """Per table that a stage sets records aside in, the SQL giving (reason or rule, records)."""
    definition = STAGE[stage]
    if definition.kind == TYPED:
        return {source.name: f"SELECT reason, count(*) FROM {source.rejected_table} GROUP BY reason"
                for source in definition.sources}
    if definition.filtered_table:
        return {stage: f"SELECT rule, records FROM {definition.filtered_table}"}
    return {}


def set_aside(stage: str, rows: Rows) -> dict[str, dict[str, int]]:
    """What a stage set aside, by source (landing) or stage (filtering), then by reason or rule, sorted."""
    return {name: dict(sorted((str(key), int(number)) for key, number in rows(sql)))
            for name, sql in set_aside_queries(stage).items()}


def stage_summary(stage: str, rows: Mapping[str, int], results: Iterable[CheckResult],
                  aside: Mapping[str, Mapping[str, int]], check_seconds: float) -> dict[str, Any]:
    """One stage's record: small, flat and JSON, for the state machine's output and the manifest."""
    results = list(results)
    return {
        "stage": stage,
        "rows": dict(rows),
        "set_aside": {name: dict(counts) for name, counts in aside.items()},
        **{f"checks_{status}": sum(r.status == status for r in results) for status in CHECK_STATUSES},
        "check_seconds": round(check_seconds, 3),
    }


def manifest_entry(run_id: str, engine: str, consent_scope: str, summaries: Iterable[Mapping[str, Any]],
                   stage_seconds: Mapping[str, float]) -> dict[str, Any]:
    """What published.json records about a published run."""
    summaries = list(summaries)
    kind = {summary["stage"]: STAGE[summary["stage"]].kind for summary in summaries}
    return {
        "run_id": run_id,
        "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "engine": engine,
        "consent_scope": consent_scope,
        "tables": {table: n for summary in summaries for table, n in summary["rows"].items()},
        "rejected": {name: counts for summary in summaries if kind[summary["stage"]] == TYPED
                     for name, counts in summary["set_aside"].items()},
        "filtered": {name: counts for summary in summaries if kind[summary["stage"]] != TYPED
                     for name, counts in summary["set_aside"].items()},
        "checks": {status: sum(int(summary[f"checks_{status}"]) for summary in summaries)
                   for status in CHECK_STATUSES},
        "stage_seconds": {stage: round(float(seconds), 3) for stage, seconds in stage_seconds.items()},
        "check_seconds": {summary["stage"]: summary["check_seconds"] for summary in summaries},
    }
