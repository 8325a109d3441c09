"""What a run records about itself, built the same way by the local run and on AWS.

After each stage: its rows per table, what it set aside (lines rejected by
reason, records filtered by rule), for landing the keys its lines carry outside
their schema (schema drift: information, never a failure), its checks and its
seconds; at publish,
the manifest entry made from every stage's summary; at the end of every run,
published or not, its rows of the run history. The local pipeline and the
check and publish Lambdas call these functions, so published.json and the
history hold the same figures for the same data wherever they were written.

Standard library only: the Lambda layer ships this module.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Mapping

from stedi.catalogue import STAGE, TYPED
from stedi.checks import CheckResult, run_checks

CHECK_STATUSES = ("passed", "failed", "skipped")
# The keys of a stage summary: the state machine passes these on from the check Lambda to the publish Lambda.
SUMMARY_KEYS = ("stage", "rows", "set_aside", "drift", *(f"checks_{status}" for status in CHECK_STATUSES),
                "check_seconds", "results")
Rows = Callable[[str], Iterable[tuple[Any, Any]]]  # SQL -> (name, number) rows
# (queries of one value, queries of rows) -> (each query's value, each query's rows), all asked at once
Ask = Callable[[list[str], list[str]], tuple[Mapping[str, Any], Mapping[str, list[tuple]]]]


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


# Schema drift: per source, each key its landing lines carry outside the schema, with how many lines carry
# it and one file that has such a line (stedi.landing.drift_sql writes the <source>_drift tables).
Drift = Mapping[str, Mapping[str, Mapping[str, Any]]]  # source -> key -> {"lines": n, "example_file": path}


def drift_query(stage: str) -> str | None:
    """The SQL giving (source, key, lines, example_file) of every key outside a schema; None but for landing."""
    sources = STAGE[stage].sources
    if not sources:
        return None
    return " UNION ALL ".join(f"SELECT '{source.name}' AS source, key, lines, example_file FROM {source.drift_table}"
                              for source in sources)


def drift(stage: str, rows: Rows) -> dict[str, dict[str, dict[str, Any]]]:
    """The stage's drift (empty but for landing): every source it types, each with its keys sorted."""
    sql = drift_query(stage)
    if sql is None:
        return {}
    found: dict[str, dict[str, dict[str, Any]]] = {source.name: {} for source in STAGE[stage].sources}
    for source, key, lines, example_file in rows(sql):
        found[str(source)][str(key)] = {"lines": int(lines), "example_file": str(example_file)}
    return {source: dict(sorted(keys.items())) for source, keys in found.items()}


def audit(stage: str, ask: Ask, *, consent_scope: str, expected_counts: Mapping[str, int], schema: str
          ) -> tuple[dict[str, int], list[CheckResult], dict[str, dict[str, int]], dict[str, dict[str, dict]]]:
    """A stage's row counts, check results, what it set aside and (landing) its drift, from its tables as staged.

    Every query is independent of the others, so `ask` gets all of them at once (Athena runs them
    concurrently, DuckDB on several cursors). Which queries the checks need is what run_checks asks
    for: it is run once with a recorder, then again to judge the answers.
    """
    checks = dict(consent_scope=consent_scope, expected_counts=expected_counts, schema=schema)
    asked: list[str] = []
    run_checks(stage, lambda sql: asked.append(sql) or 0, **checks)
    counts, aside = row_count_queries(stage), set_aside_queries(stage)
    values, rows = ask([*counts.values(), *asked], [*aside.values(), *filter(None, [drift_query(stage)])])
    results = run_checks(stage, values.__getitem__, **checks)
    return ({table: int(values[sql]) for table, sql in counts.items()}, results,
            set_aside(stage, rows.__getitem__), drift(stage, rows.__getitem__))


def stage_summary(stage: str, rows: Mapping[str, int], results: Iterable[CheckResult],
                  aside: Mapping[str, Mapping[str, int]], check_seconds: float,
                  drift: Drift | None = None) -> dict[str, Any]:
    """One stage's record: small, flat and JSON, for the state machine's output and the manifest."""
    results = list(results)
    return {
        "stage": stage,
        "rows": dict(rows),
        "set_aside": {name: dict(counts) for name, counts in aside.items()},
        "drift": {source: {key: dict(found) for key, found in keys.items()} for source, keys in (drift or {}).items()},
        **{f"checks_{status}": sum(r.status == status for r in results) for status in CHECK_STATUSES},
        "check_seconds": round(check_seconds, 3),
        "results": [{"table": r.table, "check": r.check, "status": r.status, "expected": r.expected,
                     "actual": r.actual} for r in results],
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
        "drift": {source: keys for summary in summaries for source, keys in summary.get("drift", {}).items()},
        "checks": {status: sum(int(summary[f"checks_{status}"]) for summary in summaries)
                   for status in CHECK_STATUSES},
        "stage_seconds": {stage: round(float(seconds), 3) for stage, seconds in stage_seconds.items()},
        "check_seconds": {summary["stage"]: summary["check_seconds"] for summary in summaries},
    }


# The run history: one row per figure, so that "how did X move over the last runs" is one query.
#   measure  run (one row per run, there even for a run that got through no stage: no figure; its stage is
#            where a run that was not published ended, '' if unknown) | rows | rejected | filtered | drift
#            | check | stage_seconds | check_seconds
#   subject  the table (rows, check), source (rejected, drift) or stage (filtered, seconds)
#   detail   the reason, rule, key outside the schema (drift: value = the lines carrying it, its example file
#            is in the manifest) or check name; '' for rows and seconds, and where nothing was set aside
HISTORY_COLUMNS = {
    "run_id": "VARCHAR", "finished_at": "VARCHAR", "engine": "VARCHAR", "consent_scope": "VARCHAR",
    "outcome": "VARCHAR", "stage": "VARCHAR", "measure": "VARCHAR", "subject": "VARCHAR", "detail": "VARCHAR",
    "value": "DOUBLE", "status": "VARCHAR", "expected": "VARCHAR", "actual": "VARCHAR",
}
# stopped: by a person (Ctrl-C, StopExecution); timed_out: past the state machine's TimeoutSeconds.
OUTCOMES = ("published", "failed", "crashed", "stopped", "timed_out")


def history_rows(run_id: str, engine: str, consent_scope: str, outcome: str,
                 summaries: Iterable[Mapping[str, Any]], stage_seconds: Mapping[str, float],
                 ended_at: str = "") -> list[dict[str, Any]]:
    """A run's rows of the history, whatever its outcome: the run's own row (with `ended_at`, the stage or
    step where a run that was not published ended), then every stage it got through."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r}: one of {', '.join(OUTCOMES)}")
    finished_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    rows = []

    def add(stage: str, measure: str, subject: str, detail: str = "", value: float | None = None,
            status: str = "", expected: str = "", actual: str = "") -> None:
        rows.append({"run_id": run_id, "finished_at": finished_at, "engine": engine, "consent_scope": consent_scope,
                     "outcome": outcome, "stage": stage, "measure": measure, "subject": subject, "detail": detail,
                     "value": value, "status": status, "expected": expected, "actual": actual})

    add(ended_at, "run", "")
    for summary in summaries:
        stage = summary["stage"]
        for table, count in summary["rows"].items():
            add(stage, "rows", table, value=count)
        measure = "rejected" if STAGE[stage].kind == TYPED else "filtered"
        for subject, counts in summary["set_aside"].items():
            if not counts:  # nothing set aside is a figure too: a row with no detail says so
                add(stage, measure, subject, value=0)
            for detail, count in counts.items():
                add(stage, measure, subject, detail, count)
        for source, keys in summary.get("drift", {}).items():  # no key outside the schema is no row
            for key, found in keys.items():
                add(stage, "drift", source, key, found["lines"])
        for result in summary["results"]:
            add(stage, "check", result["table"], result["check"], status=result["status"],
                expected=result["expected"], actual=result["actual"])
        add(stage, "check_seconds", stage, value=summary["check_seconds"])
        if stage in stage_seconds:
            add(stage, "stage_seconds", stage, value=round(float(stage_seconds[stage]), 3))
    return rows


def history_entries(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """History rows (as history_rows makes them, newest run first) folded back into one object per run:
    the figures of its manifest entry, published or not, every check result and the failed ones."""
    runs: dict[str, dict[str, Any]] = {}
    for row in rows:
        run = runs.setdefault(row["run_id"], {
            **{key: row[key] for key in ("run_id", "finished_at", "engine", "consent_scope", "outcome")},
            "rows": {}, "rejected": {}, "filtered": {}, "drift": {},
            "checks": {status: 0 for status in CHECK_STATUSES},
            "failures": [], "results": [], "stage_seconds": {}, "check_seconds": {}})
        measure, subject, detail = row["measure"], row["subject"], row["detail"]
        if measure == "run":  # the run's own row carries no figure: where it ended, if it was not published
            run["ended_at"] = row["stage"]
            continue
        if measure == "rows":
            run["rows"][subject] = int(row["value"])
        elif measure in ("rejected", "filtered"):
            counts = run[measure].setdefault(subject, {})
            if detail:
                counts[detail] = int(row["value"])
        elif measure == "drift":
            run["drift"].setdefault(subject, {})[detail] = int(row["value"])
        elif measure == "check":
            run["checks"][row["status"]] += 1
            run["results"].append({"stage": row["stage"], "table": subject, "check": detail, "status": row["status"],
                                   "expected": row["expected"], "actual": row["actual"]})
            if row["status"] == "failed":
                run["failures"].append(f"{subject}.{detail}: expected {row['expected']}, got {row['actual']}")
        else:
            run[measure][subject] = row["value"]
    return list(runs.values())
