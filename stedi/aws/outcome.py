"""What the end of a run on AWS tells the operator: the execution's Error and Cause, and the mails.

A failed check ends the execution with Error `<stage>.<check>` (the first check that failed) and a
Cause in plain text listing every failed check of the stage: what was expected, what it got, one
Athena query that shows the rows behind it (stedi.checks.offending_rows_sql), and where the run's
tables are. The check Lambda writes them (check_failure), because it has the results in hand.

Any other failure ends it with Error `<step>: <error name>` and a Cause made plain here
(plain_cause), whatever shape the step's error came in: our own code's exception arrives as
Lambda's JSON error document (type, message, request id, stack trace) and leaves as
`<type>: <message>`; a failed Glue job run arrives as the job run's JSON and leaves as one sentence;
anything else is already a sentence.

The one mail of a failed run carries the same Error and Cause, and a link to the execution in the
Step Functions console; the mail of a published run (sent only where someone subscribed to it)
carries the run summary. Every text here keeps within what the services accept: an execution's
error and cause at most 256 and 32,768 characters, an SNS subject under 100 characters with no line
break or control character, a message at most 256 KiB of UTF-8.

Standard library only: the Lambda layer ships this module.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from stedi.catalogue import STAGE, TYPED
from stedi.checks import CHECKS, CheckResult, offending_rows_sql

MAX_ERROR = 256
MAX_CAUSE = 32_768
MAX_SUBJECT = 99
MAX_MESSAGE_BYTES = 262_144
# The AWS console's host in each partition; a GovCloud or China execution is not in the global console.
CONSOLE_HOSTS = {"aws": "console.aws.amazon.com", "aws-cn": "console.amazonaws.cn",
                 "aws-us-gov": "console.amazonaws-us-gov.com"}


def console_link(execution_arn: str) -> str:
    """The execution in the Step Functions console of its partition and Region, both read from its ARN."""
    _, partition, _, region, *_ = execution_arn.split(":")
    return (f"https://{region}.{CONSOLE_HOSTS[partition]}/states/home?region={region}"
            f"#/v2/executions/details/{execution_arn}")


def clip(text: str, limit: int, note: str = " [cut short]") -> str:
    """`text`, cut to at most `limit` characters, saying so when it was cut."""
    return text if len(text) <= limit else text[: limit - len(note)] + note


def clip_bytes(text: str, limit: int, note: str = "\n[cut short]") -> str:
    """`text`, cut to at most `limit` bytes of UTF-8 (never inside a character), saying so when it was cut."""
    if len(text.encode()) <= limit:
        return text
    room = limit - len(note.encode())
    return text.encode()[:room].decode(errors="ignore") + note


def subject_line(text: str) -> str:
    """An SNS subject: printable characters on one line, under 100 of them."""
    return clip(" ".join("".join(c if c.isprintable() else " " for c in text).split()), MAX_SUBJECT, "...")


# ---------------------------------------------------------------- a failed check


def check_failure(stage: str, results: Iterable[Mapping[str, Any]], *, staging: str, database: str,
                  workgroup: str, consent_scope: str) -> dict[str, str]:
    """The Error and Cause of a stage whose checks failed, from its check results (stage_summary's
    `results`: table, check, status, expected, actual)."""
    results = list(results)
    failed = [result for result in results if result["status"] == "failed"]
    if not failed:
        raise ValueError(f"stage {stage}: no check failed")
    checks = {(check.table, check.name): check for check in CHECKS[stage]}
    blocks = []
    for result in failed:
        check = checks[(result["table"], result["check"])]
        said = CheckResult(stage, result["table"], result["check"], result["status"], result["expected"],
                           result["actual"]).describe()  # as the local run says it
        blocks.append(f"{said}.\n  Rows: {offending_rows_sql(check, consent_scope, database)}")
    cause = (f"{len(failed)} of {len(results)} checks of stage {stage} failed.\n\n"
             + "\n\n".join(blocks)
             + f"\n\nRun the queries in Athena (workgroup {workgroup}, database {database}), which reads this "
               "run's tables until the next run registers its own. This run's tables stay at "
               f"{staging.rstrip('/')}/.")
    return {"Error": clip(f"{stage}.{failed[0]['check']}", MAX_ERROR), "Cause": clip(cause, MAX_CAUSE)}


# ---------------------------------------------------------------- any other failure


def plain_cause(cause: Any) -> str:
    """A step's Cause as a sentence: Lambda's error document as `<type>: <message>` (no stack trace, no
    request id), a Glue job run as what became of it, anything else as it is."""
    if not isinstance(cause, str):
        return "" if cause is None else json.dumps(cause)
    try:
        document = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(document, dict) and "errorType" in document:
        message = str(document.get("errorMessage") or "").strip()
        return f"{document['errorType']}: {message}" if message else str(document["errorType"])
    if isinstance(document, dict) and "JobRunState" in document:
        said = document.get("ErrorMessage") or "the job run gave no error message: see its log"
        return (f"Glue job run {document.get('Id', '?')} of job {document.get('JobName', '?')} ended "
                f"{document['JobRunState']}: {said}")
    return cause


def failed_checks(state: Mapping[str, Any], step: str) -> list[Mapping[str, Any]]:
    """The failed check results of `step`, if it is a stage whose checks ran and failed."""
    summary = (state.get("checks") or {}).get(step) if step in STAGE else None
    if not isinstance(summary, Mapping) or not summary.get("checks_failed"):
        return []
    return [result for result in summary.get("results", []) if result.get("status") == "failed"]


def failure_alert(state: Mapping[str, Any], *, execution_name: str, link: str) -> dict[str, str]:
    """The execution's Error and Cause, and the subject and text of the one mail, for the state of a run
    on its failure path: `failed_stage` (the step), `failure` (Error and Cause) and what the run had made.

    A run that failed at its input is described from the failure alone: the rest of its state is the
    execution input, which said nothing true about a run.
    """
    step = str(state.get("failed_stage") or "run")
    trusted = state if step != "input" else {}
    failure = state.get("failure") if isinstance(state.get("failure"), Mapping) else {}
    checks = failed_checks(trusted, step)
    if checks and failure.get("Error") and failure.get("Cause"):  # the check Lambda wrote them
        error, cause = str(failure["Error"]), str(failure["Cause"])
        named = ", ".join(f"{result['table']}.{result['check']}" for result in checks)
        what = f"stage {step}, check{'s' if len(checks) > 1 else ''} {named}"
    else:
        error = f"{step}: {failure.get('Error') or 'unknown error'}"
        cause = plain_cause(failure.get("Cause")) or "no cause was given"
        staging = (trusted.get("run") or {}).get("staging") if isinstance(trusted.get("run"), Mapping) else None
        if staging:
            cause += f"\n\nThis run's tables so far stay at {str(staging).rstrip('/')}/."
        what = f"stage {step}" if step in STAGE else f"step {step}"
    error, cause = clip(error, MAX_ERROR), clip(cause, MAX_CAUSE)
    message = (f"The STEDI pipeline run {execution_name} failed in {what}.\n\n"
               f"Error: {error}\n\n{cause}\n\nExecution: {link}\n")
    return {"error": error, "cause": cause, "subject": subject_line(f"STEDI run {execution_name} failed: {error}"),
            "message": clip_bytes(message, MAX_MESSAGE_BYTES)}


# ---------------------------------------------------------------- a published run


def _figures(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {n:,}" for name, n in counts.items()) or "none"


def success_mail(entry: Mapping[str, Any], link: str) -> dict[str, str]:
    """The subject and text of the mail of a published run, from its manifest entry
    (stedi.accounting.manifest_entry): rows per table, lines rejected by reason, records filtered by rule."""
    rejected_tables = {source.rejected_table for stage in STAGE.values() if stage.kind == TYPED
                       for source in stage.sources}
    filtered_tables = {stage.filtered_table for stage in STAGE.values() if stage.filtered_table}
    lines = [f"The STEDI pipeline run {entry['run_id']} was published at {entry['published_at']} "
             f"(consent scope {entry['consent_scope']}).", "", "rows"]
    lines += [f"  {table:<32} {rows:>12,}" for table, rows in entry["tables"].items()
              if table not in rejected_tables | filtered_tables]
    lines += ["rejected (landing lines, by reason)"]
    lines += [f"  {source:<32} {_figures(reasons)}" for source, reasons in entry["rejected"].items()]
    lines += ["filtered (records left out, by rule)"]
    lines += [f"  {stage:<32} {_figures(rules)}" for stage, rules in entry["filtered"].items()]
    checks = entry["checks"]
    lines += [f"checks: {checks['passed']} passed, {checks['failed']} failed, {checks['skipped']} skipped", "",
              f"Execution: {link}", ""]
    return {"subject": subject_line(f"STEDI run {entry['run_id']} published"),
            "message": clip_bytes("\n".join(lines), MAX_MESSAGE_BYTES)}
