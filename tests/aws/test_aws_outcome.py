"""What a run's end says: the execution's Error and Cause, the alert and the success mail (stedi.aws.outcome).

The limits kept: an execution's error and cause at most 256 and 32,768 characters
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_ExecutionFailedEventDetails.html), an SNS
subject under 100 characters with no line break or control character, a message at most 262,144 bytes of
UTF-8 (https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/sns/aws.sdk.kotlin.services.sns.model/-publish-request/subject.html,
https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/sns/aws.sdk.kotlin.services.sns.model/-publish-request/message.html).
"""

import json

import pytest

from stedi.accounting import manifest_entry, stage_summary
from stedi.aws.outcome import (
    MAX_CAUSE,
    MAX_MESSAGE_BYTES,
    check_failure,
    clip_bytes,
    console_link,
    failure_alert,
    plain_cause,
    subject_line,
    success_mail,
)
from stedi.catalogue import STAGES
from stedi.checks import CHECKS, CheckResult, offending_rows_sql

LINK = console_link("arn:aws:states:eu-west-1:123456789012:execution:Pipeline:run-9")


def results(*failed: tuple[str, str, str]) -> list[dict]:
    """The results of customer_trusted's checks, `failed` (check, expected, actual) failing."""
    wrong = {name: (expected, actual) for name, expected, actual in failed}
    return [{"table": check.table, "check": check.name, "status": "failed" if check.name in wrong else "passed",
             "expected": wrong.get(check.name, ("0", "0"))[0], "actual": wrong.get(check.name, ("0", "0"))[1]}
            for check in CHECKS["customer_trusted"]]


@pytest.mark.parametrize("arn, host", [
    ("arn:aws:states:eu-west-1:123456789012:execution:Pipeline:run-9", "eu-west-1.console.aws.amazon.com"),
    ("arn:aws-us-gov:states:us-gov-west-1:123456789012:execution:Pipeline:run-9",
     "us-gov-west-1.console.amazonaws-us-gov.com"),
    ("arn:aws-cn:states:cn-north-1:123456789012:execution:Pipeline:run-9", "cn-north-1.console.amazonaws.cn"),
])
def test_the_console_link_is_the_execution_s_in_its_partition_and_region(arn, host):
    """A Region's console is <region>.console.aws.amazon.com
    (https://docs.aws.amazon.com/general/latest/gr/mgmt-console.html); GovCloud and China have consoles of
    their own (https://docs.aws.amazon.com/govcloud-us/latest/UserGuide/accessing-govcloud.html)."""
    region = arn.split(":")[3]
    assert console_link(arn) == f"https://{host}/states/home?region={region}#/v2/executions/details/{arn}"


def test_failed_checks_make_the_error_of_the_first_and_a_cause_listing_each_with_its_rows():
    failure = check_failure("customer_trusted", results(("unique_email", "0", "3"), ("rule_known", "0", "1")),
                            staging="s3://lake/runs/run-9", database="stedi_dev_staging", workgroup="stedi-dev-checks",
                            consent_scope="customer")
    assert failure["Error"] == "customer_trusted.unique_email"
    cause = failure["Cause"]
    assert cause.startswith(f"2 of {len(CHECKS['customer_trusted'])} checks of stage customer_trusted failed.\n")
    checks = {check.name: check for check in CHECKS["customer_trusted"]}
    first = cause.index("customer_trusted.unique_email: expected 0, got 3.")
    second = cause.index("customer_trusted_filtered.rule_known: expected 0, got 1.")
    assert first < second
    for name in ("unique_email", "rule_known"):
        assert f"Rows: {offending_rows_sql(checks[name], 'customer', 'stedi_dev_staging')}" in cause
    assert "workgroup stedi-dev-checks, database stedi_dev_staging" in cause
    assert cause.endswith("This run's tables stay at s3://lake/runs/run-9/.")


def test_no_failed_check_is_no_failure():
    with pytest.raises(ValueError):
        check_failure("customer_trusted", results(), staging="s3://l/runs/r", database="d", workgroup="w",
                      consent_scope="reading")


def lambda_error(error_type: str, message: str) -> str:
    """Lambda's error document of a Python function, as Step Functions gives it in Cause."""
    return json.dumps({"errorMessage": message, "errorType": error_type, "requestId": "0d1e-2f",
                       "stackTrace": ['  File "/var/task/check_stage.py", line 40, in handler\n    x()\n']})


@pytest.mark.parametrize("cause, plain", [
    (lambda_error("QueryFailed", "query q-1 FAILED: TABLE_NOT_FOUND"),
     "QueryFailed: query q-1 FAILED: TABLE_NOT_FOUND"),
    (lambda_error("Sandbox.Timedout", ""), "Sandbox.Timedout"),
    (json.dumps({"Id": "jr_1", "JobName": "stedi-stage", "JobRunState": "TIMEOUT", "ExecutionTime": 1800}),
     "Glue job run jr_1 of job stedi-stage ended TIMEOUT: the job run gave no error message: see its log"),
    (json.dumps({"Id": "jr_2", "JobName": "stedi-stage", "JobRunState": "FAILED",
                 "ErrorMessage": "AnalysisException: x"}),
     "Glue job run jr_2 of job stedi-stage ended FAILED: AnalysisException: x"),
    ("The landing crawler was still running after 30 minutes.",
     "The landing crawler was still running after 30 minutes."),
    ('["not", "an", "error", "document"]', '["not", "an", "error", "document"]'),
    (None, ""),
])
def test_a_step_s_cause_in_plain_text(cause, plain):
    assert plain_cause(cause) == plain


def test_a_crash_s_alert_names_the_step_its_type_and_message_and_the_execution():
    state = {"failed_stage": "customer_curated", "run": {"staging": "s3://lake/runs/run-9"},
             "failure": {"Error": "QueryFailed", "Cause": lambda_error("QueryFailed", "query q-1 FAILED")}}
    alert = failure_alert(state, execution_name="run-9", link=LINK)
    assert alert["error"] == "customer_curated: QueryFailed"
    assert alert["cause"] == "QueryFailed: query q-1 FAILED\n\nThis run's tables so far stay at s3://lake/runs/run-9/."
    assert alert["subject"] == "STEDI run run-9 failed: customer_curated: QueryFailed"
    assert alert["message"] == ("The STEDI pipeline run run-9 failed in stage customer_curated.\n\n"
                                f"Error: customer_curated: QueryFailed\n\n{alert['cause']}\n\nExecution: {LINK}\n")


def test_a_failed_check_s_alert_keeps_the_check_s_error_and_cause():
    checked = results(("unique_email", "0", "3"))
    failure = check_failure("customer_trusted", checked, staging="s3://lake/runs/run-9", database="d", workgroup="w",
                            consent_scope="reading")
    state = {"failed_stage": "customer_trusted", "failure": failure,
             "checks": {"customer_trusted": {"checks_failed": 1, "results": checked}}}
    alert = failure_alert(state, execution_name="run-9", link=LINK)
    assert (alert["error"], alert["cause"]) == (failure["Error"], failure["Cause"])
    assert "failed in stage customer_trusted, check customer_trusted.unique_email." in alert["message"]


def test_a_run_that_failed_at_its_input_is_described_by_its_failure_alone():
    """The rest of its state is the execution input: it may say anything, and is believed in nothing."""
    state = {"failed_stage": "input", "failure": {"Error": "InvalidRunInput", "Cause": lambda_error(
        "InvalidRunInput", "unknown input keys ['checks']")},
        "checks": {"input": {"checks_failed": 1, "results": []}}, "run": {"staging": "s3://elsewhere"}}
    alert = failure_alert(state, execution_name="manual-1", link=LINK)
    assert alert["error"] == "input: InvalidRunInput"
    assert alert["cause"] == "InvalidRunInput: unknown input keys ['checks']"
    assert "failed in step input." in alert["message"]


def test_what_no_service_would_take_is_cut_to_what_it_takes():
    state = {"failed_stage": "landing", "failure": {"Error": "E" * 300, "Cause": "ü" * 50_000}}
    alert = failure_alert(state, execution_name="run-" + "9" * 76, link=LINK)
    assert len(alert["error"]) == 256 and len(alert["cause"]) == MAX_CAUSE
    assert alert["cause"].endswith("[cut short]")
    assert len(alert["subject"]) < 100 and alert["subject"].isprintable()
    assert len(alert["message"].encode()) <= MAX_MESSAGE_BYTES
    assert subject_line("a\nb\tc\x07d") == "a b c d"
    cut = clip_bytes("é" * 10, 9, note="…")
    assert len(cut.encode()) <= 9 and cut == "ééé…"


def test_the_success_mail_is_the_run_summary_in_short():
    passed = [CheckResult("s", "t", "c", "passed", "0", "0")] * 2 + [CheckResult("s", "t", "c", "skipped", "-", "-")]
    summaries = [stage_summary("landing", {"customer_landing": 1200, "customer_rejected": 3}, passed,
                               {"customer": {"malformed_json": 3}, "accelerometer": {}, "step_trainer": {}}, 1.0),
                 stage_summary("customer_trusted", {"customer_trusted": 480}, passed,
                               {"customer_trusted": {"no_consent": 441, "superseded": 35}}, 1.0)]
    entry = manifest_entry("run-9", "glue", "reading", summaries, {stage: 60 for stage in STAGES[:2]})
    mail = success_mail(entry, LINK)
    assert mail["subject"] == "STEDI run run-9 published"
    lines = mail["message"].splitlines()
    assert f"  {'customer_landing':<32} {'1,200':>12}" in lines
    assert f"  {'customer_trusted':<32} {'480':>12}" in lines
    assert not any(line.startswith("  customer_rejected ") for line in lines)  # counted by reason instead
    assert f"  {'customer':<32} malformed_json 3" in lines and f"  {'accelerometer':<32} none" in lines
    assert f"  {'customer_trusted':<32} no_consent 441, superseded 35" in lines
    assert "checks: 4 passed, 0 failed, 2 skipped" in lines
    assert lines[-1] == f"Execution: {LINK}"
