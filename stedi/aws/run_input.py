"""Validation of what an execution is started with.

An execution's input may pin the consent scope and exact row counts; the
run id is the execution name. Everything is checked against stedi.catalogue
before any job sees it, so a typo fails the run at its first step instead of
in the middle of a Glue job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from stedi.aws.settings import Settings
from stedi.catalogue import CONSENT_SCOPES, DEFAULT_CONSENT_SCOPE, RECORD_TABLES, STAGES

# Step Functions execution names allow more, but the run id also becomes an
# S3 prefix and a Glue job argument: keep it to a safe alphabet.
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")
ALLOWED_KEYS = {"consent_scope", "expected_counts"}


class InvalidRunInput(ValueError):
    """The execution input or the run id is not usable; the message says what is wrong."""


@dataclass(frozen=True)
class RunInput:
    run_id: str
    staging: str
    consent_scope: str = DEFAULT_CONSENT_SCOPE
    expected_counts: dict[str, int] = field(default_factory=dict)

    def as_state(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "staging": self.staging, "consent_scope": self.consent_scope,
                "expected_counts": dict(self.expected_counts)}


def validate_run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id):
        raise InvalidRunInput(f"run id {run_id!r} must match {RUN_ID_PATTERN.pattern}")
    return run_id


def validate_stage(stage: Any) -> str:
    if stage not in STAGES:
        raise InvalidRunInput(f"unknown stage {stage!r}: expected one of {', '.join(STAGES)}")
    return stage


def validate_run_input(run_id: Any, execution_input: Any, settings: Settings) -> RunInput:
    """The run's validated parameters; raises InvalidRunInput naming the first problem."""
    run_id = validate_run_id(run_id)
    if execution_input is None:
        execution_input = {}
    if not isinstance(execution_input, Mapping):
        raise InvalidRunInput("the execution input must be a JSON object")
    unknown = set(execution_input) - ALLOWED_KEYS
    if unknown:
        raise InvalidRunInput(f"unknown input keys {sorted(unknown)}: allowed are {sorted(ALLOWED_KEYS)}")
    consent_scope = execution_input.get("consent_scope", DEFAULT_CONSENT_SCOPE)
    if consent_scope not in CONSENT_SCOPES:
        raise InvalidRunInput(f"consent_scope {consent_scope!r} must be one of {', '.join(CONSENT_SCOPES)}")
    return RunInput(run_id, settings.staging_uri(run_id), consent_scope,
                    validate_expected_counts(execution_input.get("expected_counts", {})))


def validate_expected_counts(counts: Any) -> dict[str, int]:
    if not isinstance(counts, Mapping):
        raise InvalidRunInput("expected_counts must be an object of table name -> row count")
    for table, number in counts.items():
        if table not in RECORD_TABLES:  # the tables a row count check can pin
            raise InvalidRunInput(f"expected_counts names unknown table {table!r}")
        # bool is an int in Python, and never a row count.
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise InvalidRunInput(f"expected_counts[{table!r}] must be a non-negative integer, not {number!r}")
    return dict(counts)


def run_input_from_state(state: Any, settings: Settings) -> RunInput:
    """Re-validate the run parameters a later state passes on (a Lambda trusts no caller)."""
    if not isinstance(state, Mapping):
        raise InvalidRunInput("the run must be a JSON object")
    run = validate_run_input(state.get("run_id"), {key: state[key] for key in ALLOWED_KEYS if key in state}, settings)
    if state.get("staging", run.staging) != run.staging:
        raise InvalidRunInput(f"staging {state.get('staging')!r} is not this run's prefix {run.staging}")
    return run
