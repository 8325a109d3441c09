"""Run SQL queries on Athena, waiting for each to finish.

A query goes QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED. Queued and
running queries are polled with a growing interval; a query still unfinished
at the deadline is stopped, so a stuck query cannot hold the Lambda until it
is killed without saying which check hung.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

PENDING_STATES = ("QUEUED", "RUNNING")


class QueryFailed(Exception):
    """Athena ran the query and it failed or was cancelled: a broken query or table, not a check result."""


class QueryTimedOut(Exception):
    """The query did not finish within the allowed time; it has been stopped."""


@dataclass
class AthenaQuery:
    """Callable SQL text -> the single value of the first row, as a number (or None for NULL);
    `rows(sql)` gives every row instead."""

    client: Any  # boto3 Athena client
    database: str
    workgroup: str
    timeout_seconds: float = 240.0
    first_poll_seconds: float = 0.2
    max_poll_seconds: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def __call__(self, sql: str) -> float | int | None:
        query_id = self._run(sql)
        rows = self.client.get_query_results(QueryExecutionId=query_id, MaxResults=2)["ResultSet"]["Rows"]
        return parse_number(rows[1]["Data"][0].get("VarCharValue") if len(rows) > 1 else None)

    def rows(self, sql: str) -> list[tuple[str | None, ...]]:
        """Every row as text (Athena returns every value as text), without the header row."""
        query_id = self._run(sql)
        pages = self.client.get_paginator("get_query_results").paginate(QueryExecutionId=query_id)
        rows = [row for page in pages for row in page["ResultSet"]["Rows"]]
        return [tuple(cell.get("VarCharValue") for cell in row["Data"]) for row in rows[1:]]

    def _run(self, sql: str) -> str:
        query_id = self.client.start_query_execution(
            QueryString=sql,
            QueryExecutionContext={"Database": self.database},
            WorkGroup=self.workgroup,
        )["QueryExecutionId"]
        self._wait(query_id, sql)
        return query_id

    def _wait(self, query_id: str, sql: str) -> None:
        deadline = self.clock() + self.timeout_seconds
        interval = self.first_poll_seconds
        while True:
            status = self.client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
            state = status["State"]
            if state == "SUCCEEDED":
                return
            if state not in PENDING_STATES:
                reason = status.get("StateChangeReason", "no reason given")
                raise QueryFailed(f"query {query_id} {state}: {reason}; SQL: {sql}")
            if self.clock() >= deadline:
                self.client.stop_query_execution(QueryExecutionId=query_id)
                raise QueryTimedOut(f"query {query_id} still {state} after {self.timeout_seconds:.0f}s; SQL: {sql}")
            self.sleep(interval)
            interval = min(interval * 2, self.max_poll_seconds)


def parse_number(text: str | None) -> float | int | None:
    """Athena returns every value as text; checks compare numbers."""
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)
