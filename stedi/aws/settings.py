"""Names of the deployed resources, read from the Lambda environment the template sets.

Table and database names come only from here and from stedi.catalogue, never
from an event.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    lake_bucket: str
    staging_database: str = ""
    published_database: str = ""
    crawled_database: str = ""  # the landing crawler's tables (stedi.aws.crawl)
    history_database: str = ""  # the run history table (stedi.aws.history)
    athena_workgroup: str = ""
    state_machine_arn: str = ""
    run_lock_table: str = ""
    query_timeout_seconds: float = 240.0
    query_concurrency: int = 1

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        return cls(
            lake_bucket=env["LAKE_BUCKET"],
            staging_database=env.get("STAGING_DATABASE", ""),
            published_database=env.get("PUBLISHED_DATABASE", ""),
            crawled_database=env.get("CRAWLED_DATABASE", ""),
            history_database=env.get("HISTORY_DATABASE", ""),
            athena_workgroup=env.get("ATHENA_WORKGROUP", ""),
            state_machine_arn=env.get("STATE_MACHINE_ARN", ""),
            run_lock_table=env.get("RUN_LOCK_TABLE", ""),
            query_timeout_seconds=float(env.get("QUERY_TIMEOUT_SECONDS", "240")),
            query_concurrency=int(env.get("QUERY_CONCURRENCY", "1")),
        )

    def staging_uri(self, run_id: str) -> str:
        """Where a run writes its tables: the same layout as the local lake's runs/<run id>/."""
        return f"s3://{self.lake_bucket}/runs/{run_id}"
