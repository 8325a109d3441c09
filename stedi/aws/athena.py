"""Run SQL queries on Athena, waiting for each to finish.

A query goes QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED. Queued and
running queries are polled with a growing interval; a query still unfinished
at its deadline is stopped, so a stuck query cannot hold the Lambda until it
is killed without saying which check hung. A query's deadline is the sooner
of its own timeout and the caller's remaining time (the Lambda's, less a
reserve to stop the queries and report): a Lambda that runs out of time fails
with QueryTimedOut, which the state machine retries, rather than dying.

`run_all` runs independent queries a few at a time. Athena counts running and
queued queries against an account-wide quota per Region, shared by every
workgroup, and refuses the query past it (TooManyRequestsException):
https://docs.aws.amazon.com/athena/latest/ug/service-limits.html
Queries of one value each go as one query of one row (`one_row_query`): a
stage's twenty-odd counts cost one query's queueing and start-up, and one
10 MB billing minimum, instead of one each.
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

PENDING_STATES = ("QUEUED", "RUNNING")


class QueryFailed(Exception):
    """Athena ran the query and it failed or was cancelled: a broken query or table, not a check result."""


class QueryTimedOut(Exception):
    """The query did not finish within the allowed time; it has been stopped."""


@dataclass(frozen=True)
class Answers:
    """What run_all found: each query's single value, and each rows query's rows."""

    values: dict[str, float | int | None]
    rows: dict[str, list[tuple[str | None, ...]]]


@dataclass
class AthenaQuery:
    """Callable SQL text -> the single value of the first row, as a number (or None for NULL);
    `rows(sql)` gives every row instead, `run_all` many queries at once."""

    client: Any  # boto3 Athena client; boto3 clients may be shared between threads
    database: str
    workgroup: str
    timeout_seconds: float = 240.0
    remaining_seconds: Callable[[], float] = lambda: math.inf  # the caller's time left, e.g. the Lambda's
    reserve_seconds: float = 20.0  # kept back from the remaining time to stop queries and report
    concurrency: int = 1
    first_poll_seconds: float = 0.2
    max_poll_seconds: float = 5.0
    sleep: Callable[[float], object] | None = None  # by default, a sleep that ends when the queries are stopped
    clock: Callable[[], float] = time.monotonic
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    def __post_init__(self):
        if self.sleep is None:
            self.sleep = self._stop.wait

    def __call__(self, sql: str) -> float | int | None:
        query_id = self._run(sql)
        rows = self.client.get_query_results(QueryExecutionId=query_id, MaxResults=2)["ResultSet"]["Rows"]
        return parse_number(rows[1]["Data"][0].get("VarCharValue") if len(rows) > 1 else None)

    def execute(self, sql: str) -> str:
        """Run a statement whose answer is no figure (INSERT INTO) and wait for it; returns its query id."""
        return self._run(sql)

    def rows(self, sql: str) -> list[tuple[str | None, ...]]:
        """Every row as text (Athena returns every value as text), without the header row."""
        query_id = self._run(sql)
        pages = self.client.get_paginator("get_query_results").paginate(QueryExecutionId=query_id)
        rows = [row for page in pages for row in page["ResultSet"]["Rows"]]
        return [tuple(cell.get("VarCharValue") for cell in row["Data"]) for row in rows[1:]]

    def one_row(self, queries: tuple[str, ...]) -> tuple[float | int | None, ...]:
        """The value of each query, from one query of one row (one_row_query)."""
        query_id = self._run(one_row_query(queries))
        rows = self.client.get_query_results(QueryExecutionId=query_id, MaxResults=2)["ResultSet"]["Rows"]
        cells = rows[1]["Data"] if len(rows) > 1 else []
        if len(cells) != len(queries):
            raise QueryFailed(f"query {query_id} gave {len(cells)} values for {len(queries)} queries")
        return tuple(parse_number(cell.get("VarCharValue")) for cell in cells)

    def run_all(self, values: Iterable[str], rows: Iterable[str] = ()) -> Answers:
        """Each distinct query once, `concurrency` at a time: the value queries as one (one_row), but for
        those of information_schema, and each rows query on its own. The first failure stops the queries
        still running, drops those not started, and is raised."""
        together, alone = grouped(values)
        work: dict[tuple[str, Any], Callable] = {("row", together): self.one_row} if together else {}
        work |= {("value", sql): self.__call__ for sql in alone}
        work |= {("rows", sql): self.rows for sql in rows}
        answers: dict[tuple[str, Any], Any] = {}
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            futures = {pool.submit(run, sql): (kind, sql) for (kind, sql), run in work.items()}
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [future for future in done if future.exception()]
            if failed:
                self._stop.set()
                pool.shutdown(wait=True, cancel_futures=True)
                raise failed[0].exception()
            for future, key in futures.items():
                answers[key] = future.result()
        found = dict(zip(together, answers.pop(("row", together)), strict=True)) if together else {}
        found |= {sql: answer for (kind, sql), answer in answers.items() if kind == "value"}
        return Answers(found, {sql: answer for (kind, sql), answer in answers.items() if kind == "rows"})

    def _run(self, sql: str) -> str:
        budget = self.remaining_seconds() - self.reserve_seconds
        if budget <= 0 or self._stop.is_set():
            raise QueryTimedOut(f"not started: {self._time_left()}; SQL: {sql}")
        query_id = self.client.start_query_execution(
            QueryString=sql,
            QueryExecutionContext={"Database": self.database},
            WorkGroup=self.workgroup,
        )["QueryExecutionId"]
        self._wait(query_id, sql, min(self.timeout_seconds, budget))
        return query_id

    def _time_left(self) -> str:
        if self._stop.is_set():
            return "another query of the stage failed"
        return f"{self.remaining_seconds():.0f}s left, {self.reserve_seconds:.0f}s of them kept to report"

    def _wait(self, query_id: str, sql: str, timeout: float) -> None:
        deadline = self.clock() + timeout
        interval = self.first_poll_seconds
        while True:
            status = self.client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
            state = status["State"]
            if state == "SUCCEEDED":
                return
            if state not in PENDING_STATES:
                reason = status.get("StateChangeReason", "no reason given")
                raise QueryFailed(f"query {query_id} {state}: {reason}; SQL: {sql}")
            if self.clock() >= deadline or self._stop.is_set():
                self.client.stop_query_execution(QueryExecutionId=query_id)
                why = self._time_left() if self._stop.is_set() or timeout < self.timeout_seconds else "its timeout"
                raise QueryTimedOut(f"query {query_id} still {state} after {timeout:.0f}s ({why}); stopped; "
                                    f"SQL: {sql}")
            self.sleep(min(interval, max(deadline - self.clock(), 0)))
            interval = min(interval * 2, self.max_poll_seconds)


def grouped(values: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Distinct value queries: those sent as one (one_row_query), and those sent on their own. Athena's
    documentation queries information_schema on its own, and so does this, rather than within a query of
    the tables: https://docs.aws.amazon.com/athena/latest/ug/querying-glue-catalog-listing-all-columns-for-all-tables.html"""
    values = tuple(dict.fromkeys(values))
    return (tuple(sql for sql in values if "information_schema" not in sql),
            tuple(sql for sql in values if "information_schema" in sql))


def one_row_query(queries: Iterable[str]) -> str:
    """Queries of one value each as one query of one row: a column per query, in order (scalar subqueries)."""
    return "SELECT\n" + ",\n".join(f"  ({sql})" for sql in queries)


def parse_number(text: str | None) -> float | int | None:
    """Athena returns every value as text; checks compare numbers."""
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)
