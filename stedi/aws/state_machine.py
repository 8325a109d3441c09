"""The Step Functions definition of a run, built from the catalogue.

`make generate` writes it to statemachine/pipeline.asl.json, which template.yaml
deploys with its ${...} placeholders substituted (DefinitionSubstitutions).
A run: validate the input, take the run lock (stedi.aws.run_lock), then for
each stage of stedi.catalogue in order its Glue job and its checks on Athena
(after landing's, the one landing crawl when it has something to catalogue:
stedi.aws.crawl), then publish, release the lock and record the run in the
history; the execution's output is the run summary. Any failure goes through
one "Failed at <step>" state, which names the step, then releases the lock,
records the run, describes the failure in plain text and sends the one alert,
to the one Fail state. Service ARNs name the partition (${Partition}), so the
definition deploys outside the `aws` partition too.

Each stage keeps its own named states (rather than a Map over the stages) so
that the console's graph shows which stage a run reached.
Standard library only: it ships in the Lambda layer with the rest of stedi.aws.
"""

from __future__ import annotations

from stedi.accounting import SUMMARY_KEYS
from stedi.aws.run_lock import LOCK_ATTRIBUTE, LOCK_KEY, OWNER_ATTRIBUTE, RUN_TIMEOUT_SECONDS
from stedi.catalogue import STAGE_LIST, TYPED, Stage

# Service integrations in the partition deployed to (arn:aws:states:::... in most Regions).
STATES = "arn:${Partition}:states:::"

# The one Glue job runs every stage, named by its --stage argument.
STAGE_JOB = "${StageJob}"
CHECK_FUNCTION = "${CheckStageFunctionArn}"
RECORD_FUNCTION = "${RecordRunFunctionArn}"
DESCRIBE_FUNCTION = "${DescribeFailureFunctionArn}"

# Errors of the Lambda service rather than of the function: worth retrying.
LAMBDA_SERVICE_RETRY = {
    "ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                    "Lambda.TooManyRequestsException"],
    "IntervalSeconds": 2, "MaxAttempts": 6, "BackoffRate": 2,
}
GLUE_API_RETRY = {
    "ErrorEquals": ["Glue.ThrottlingException", "Glue.OperationTimeoutException", "Glue.InternalServiceException"],
    "IntervalSeconds": 5, "MaxAttempts": 5, "BackoffRate": 2,
}
# StartJobRun refused (MaxConcurrentRuns is 1), throttled or failing inside Glue is retried; a job run
# that failed is not (States.TaskFailed), here or by Glue (MaxRetries 0): the run fails at its stage.
GLUE_JOB_RETRY = {
    "ErrorEquals": ["Glue.ConcurrentRunsExceededException", "Glue.AWSGlueException", *GLUE_API_RETRY["ErrorEquals"]],
    "IntervalSeconds": 60, "MaxAttempts": 3, "BackoffRate": 2,
}
CRAWL_POLL_SECONDS = 30
CRAWL_MAX_POLLS = 60


def catch_all(failed_at: str) -> list[dict]:
    """Any error of a step: keep it in $.failure and name the step for the alert."""
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": f"Failed at {failed_at}"}]


def lambda_task(*, comment: str, function: str, payload: dict, result_selector: dict | None, result_path: str | None,
                failed_at: str, next_state: str, retry: tuple[dict, ...] = ()) -> dict:
    return {
        "Type": "Task",
        "Comment": comment,
        "Resource": f"{STATES}lambda:invoke",
        "Parameters": {"FunctionName": function, "Payload": payload},
        **({"ResultSelector": result_selector} if result_selector else {}),
        "ResultPath": result_path,
        "Retry": [LAMBDA_SERVICE_RETRY, *retry],
        "Catch": catch_all(failed_at),
        "Next": next_state,
    }


def release_lock(next_state: str) -> dict:
    """Free the run lock if this execution holds it. Failing to (another run's lock, DynamoDB unavailable)
    changes nothing of how the run ends: the EventBridge rule on its end, or the lock's expiry, frees it."""
    return {
        "Type": "Task",
        "Comment": "Free the run lock for the next run (stedi.aws.run_lock); only its holder can.",
        "Resource": f"{STATES}dynamodb:deleteItem",
        "Parameters": {
            "TableName": "${RunLockTable}",
            "Key": {LOCK_ATTRIBUTE: {"S": LOCK_KEY}},
            "ConditionExpression": "#owner = :owner",
            "ExpressionAttributeNames": {"#owner": OWNER_ATTRIBUTE},
            "ExpressionAttributeValues": {":owner": {"S.$": "$$.Execution.Name"}},
        },
        "ResultPath": None,
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.release_error", "Next": next_state}],
        "Next": next_state,
    }


LANDING_CRAWLER = "${LandingCrawler}"
VERIFY_CRAWL_FUNCTION = "${VerifyCrawlFunctionArn}"
CRAWL_NEEDED = "Crawl needed?"


def crawl_states(next_state: str) -> dict[str, dict]:
    """After the landing checks: the one landing crawl, when the check Lambda found something to catalogue
    (stedi.aws.crawl.plan_crawl), polled for a bounded time, then verified; else straight on to `next_state`.

    GetCrawler gives State READY, RUNNING or STOPPING, and LastCrawl.Status SUCCEEDED, CANCELLED or FAILED
    (https://docs.aws.amazon.com/glue/latest/dg/aws-glue-api-crawler-crawling.html). A crawl already under
    way (StartCrawler refused) is waited for, and its outcome taken as the run's.
    """
    start, wait, get = "Start landing crawl", "Wait for landing crawl", "Get landing crawler"
    done, count, overdue = "Is landing crawl done?", "Count landing crawl poll", "Is landing crawl overdue?"
    verify, failed, timed_out = "Verify landing crawl", "Landing crawl failed", "Landing crawl timed out"
    return {
        CRAWL_NEEDED: {
            "Type": "Choice",
            "Comment": "At most one crawl a run: only for a new table or a key the crawled tables lack.",
            "Choices": [{"Variable": "$.checks.landing.crawl.needed", "BooleanEquals": True,
                         "Next": "Prepare landing crawl"}],
            "Default": next_state,
        },
        "Prepare landing crawl": {"Type": "Pass", "Result": {"polls": 0}, "ResultPath": "$.crawl", "Next": start},
        start: {
            "Type": "Task",
            "Resource": f"{STATES}aws-sdk:glue:startCrawler",
            "Parameters": {"Name": LANDING_CRAWLER},
            "ResultPath": None,
            "Retry": [GLUE_API_RETRY],
            "Catch": [{"ErrorEquals": ["Glue.CrawlerRunningException"], "ResultPath": None, "Next": wait},
                      *catch_all("crawl")],
            "Next": wait,
        },
        wait: {"Type": "Wait", "Seconds": CRAWL_POLL_SECONDS, "Next": get},
        get: {
            "Type": "Task",
            "Resource": f"{STATES}aws-sdk:glue:getCrawler",
            "Parameters": {"Name": LANDING_CRAWLER},
            "ResultSelector": {"State.$": "$.Crawler.State", "Crawler.$": "$.Crawler"},
            "ResultPath": "$.crawl.crawler",
            "Retry": [GLUE_API_RETRY],
            "Catch": catch_all("crawl"),
            "Next": done,
        },
        done: {
            "Type": "Choice",
            "Choices": [
                {"Not": {"Variable": "$.crawl.crawler.State", "StringEquals": "READY"}, "Next": count},
                {"Variable": "$.crawl.crawler.Crawler.LastCrawl.Status", "StringEquals": "SUCCEEDED", "Next": verify},
            ],
            "Default": failed,
        },
        count: {"Type": "Pass", "Parameters": {"polls.$": "States.MathAdd($.crawl.polls, 1)"}, "ResultPath": "$.crawl",
                "Next": overdue},
        overdue: {
            "Type": "Choice",
            "Comment": f"Bounded polling: {CRAWL_MAX_POLLS} polls of {CRAWL_POLL_SECONDS} s.",
            "Choices": [{"Variable": "$.crawl.polls", "NumericGreaterThanEquals": CRAWL_MAX_POLLS, "Next": timed_out}],
            "Default": wait,
        },
        verify: lambda_task(
            comment="Every column the crawled tables had keeps its type (stedi.aws.crawl.verify_crawl), or the run "
                    "fails with CrawlRetyped naming each retyped column.",
            function=VERIFY_CRAWL_FUNCTION,
            payload={"before.$": "$.checks.landing.crawl.columns"},
            result_selector={"columns.$": "$.Payload.columns"},
            result_path="$.crawl.verified",
            failed_at="crawl",
            next_state=next_state,
        ),
        failed: {
            "Type": "Pass",
            "Result": {"Error": "CrawlFailed",
                       "Cause": "The landing crawler's last crawl did not succeed: see LastCrawl and its log in the "
                                "Glue console."},
            "ResultPath": "$.failure",
            "Next": "Failed at crawl",
        },
        timed_out: {
            "Type": "Pass",
            "Result": {"Error": "CrawlTimedOut",
                       "Cause": f"The landing crawler was still running after "
                                f"{CRAWL_MAX_POLLS * CRAWL_POLL_SECONDS // 60} minutes."},
            "ResultPath": "$.failure",
            "Next": "Failed at crawl",
        },
    }


def job_name(stage: Stage) -> str:
    return f"Run {stage.name} job"


def check_name(stage: Stage) -> str:
    return f"Check {stage.name}"


def job_arguments(stage: Stage) -> dict:
    """What the Glue job script reads (stedi.runner.main): landing reads the lake, the others the run's scope."""
    arguments = {"--stage": stage.name, "--staging.$": "$.run.staging"}
    if stage.kind == TYPED:
        arguments["--lake"] = "s3://${LakeBucket}"
    else:
        arguments["--consent_scope.$"] = "$.run.consent_scope"
    return arguments


def passed_name(stage: Stage) -> str:
    return f"Did {stage.name} pass?"


def checks_failed_name(stage: Stage) -> str:
    return f"Checks of {stage.name} failed"


def stage_states(stage: Stage, next_state: str) -> dict[str, dict]:
    """The stage's Glue job, then its checks; either failing fails the run at this stage.

    A failed check is the check Lambda's result, not its error, and a Choice sends the run to the failure
    path. A Lambda error reaches the state machine as Error (the exception's type) and Cause (Lambda's JSON
    error document: message, request id, stack trace), and a Fail state passes strings on as they are; so
    the check Lambda writes the Error (`<stage>.<check>`) and the plain Cause into its result, beside the
    stage's row counts, which the run thus keeps. (Parsing the Cause with States.StringToJson instead would
    fail the execution itself on any Cause that is no JSON, and a Pass state catches nothing.) A crash is
    still an error, caught here and made plain by "Describe failure".
    """
    return {
        job_name(stage): {
            "Type": "Task",
            "Comment": f"Stage {stage.name}: {stage.summary}.",
            "Resource": f"{STATES}glue:startJobRun.sync",
            "Parameters": {"JobName": STAGE_JOB, "Arguments": job_arguments(stage)},
            # ExecutionTime: the seconds the run used, which the manifest records as the stage's time.
            "ResultSelector": {"job_run_id.$": "$.Id", "state.$": "$.JobRunState", "seconds.$": "$.ExecutionTime"},
            "ResultPath": f"$.jobs.{stage.name}",
            "Retry": [GLUE_JOB_RETRY],
            "Catch": catch_all(stage.name),
            "Next": check_name(stage),
        },
        check_name(stage): lambda_task(
            comment="Row counts and the stage's checks on Athena; failed checks come back as `failure` (the Error "
                    "and Cause of the run), never retried.",
            function=CHECK_FUNCTION,
            payload={"stage": stage.name, "run.$": "$.run", "job.$": f"$.jobs.{stage.name}"},
            result_selector={**{f"{key}.$": f"$.Payload.{key}" for key in SUMMARY_KEYS},
                             "failure.$": "$.Payload.failure",
                             # landing: whether the landing crawler has anything to catalogue (crawl_states)
                             **({"crawl.$": "$.Payload.crawl"} if stage.kind == TYPED else {})},
            result_path=f"$.checks.{stage.name}",
            failed_at=stage.name,
            next_state=passed_name(stage),
            # The function gives up on a slow query after its own timeout; one more try, then fail.
            retry=({"ErrorEquals": ["QueryTimedOut"], "IntervalSeconds": 30, "MaxAttempts": 1},),
        ),
        passed_name(stage): {
            "Type": "Choice",
            "Choices": [{"Variable": f"$.checks.{stage.name}.checks_failed", "NumericGreaterThan": 0,
                         "Next": checks_failed_name(stage)}],
            "Default": next_state,
        },
        checks_failed_name(stage): {
            "Type": "Pass",
            "Comment": "The Error and Cause the check Lambda wrote become the run's failure.",
            "InputPath": f"$.checks.{stage.name}.failure",
            "ResultPath": "$.failure",
            "Next": f"Failed at {stage.name}",
        },
    }


def record_run(*, published: bool, next_state: str) -> dict:
    """Append the run's figures to the history table (stedi.aws.history). Failing to changes nothing of how
    the run ends: the error is kept in $.record_error and the run goes on to its end."""
    return {
        "Type": "Task",
        "Comment": "The run's check results and record accounting, appended to the history table by Athena.",
        "Resource": f"{STATES}lambda:invoke",
        "Parameters": {"FunctionName": RECORD_FUNCTION,
                       "Payload": {"state.$": "$", "execution_name.$": "$$.Execution.Name", "published": published}},
        "ResultSelector": {"rows.$": "$.Payload.rows", "outcome.$": "$.Payload.outcome"},
        "ResultPath": "$.recorded",
        "Retry": [LAMBDA_SERVICE_RETRY],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.record_error", "Next": next_state}],
        "Next": next_state,
    }


def notify(*, comment: str, topic: str, subject: str, message: str, next_state: str) -> dict:
    """One SNS message. Failing to send it must not hide how the run ended: retry, then go on regardless."""
    return {
        "Type": "Task",
        "Comment": comment,
        "Resource": f"{STATES}sns:publish",
        "Parameters": {"TopicArn" + (".$" if topic.startswith("$.") else ""): topic,
                       "Subject.$": subject, "Message.$": message},
        "ResultPath": None,
        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.notify_error", "Next": next_state}],
        "Next": next_state,
    }


def failure_states(steps: list[str]) -> dict[str, dict]:
    """One "Failed at <step>" per step, then the lock released, the run recorded, the failure described,
    the one alert and the one Fail state."""
    states = {f"Failed at {step}": {"Type": "Pass", "Result": step, "ResultPath": "$.failed_stage",
                                    "Next": "Release run lock after failure"}
              for step in steps}
    states["Release run lock after failure"] = release_lock("Record failed run")
    states["Record failed run"] = record_run(published=False, next_state="Describe failure")
    states["Describe failure"] = {
        "Type": "Task",
        "Comment": "The run's Error and Cause in plain text, and the alert naming stage, check and the execution.",
        "Resource": f"{STATES}lambda:invoke",
        "Parameters": {"FunctionName": DESCRIBE_FUNCTION,
                       "Payload": {"state.$": "$", "execution_name.$": "$$.Execution.Name",
                                   "execution_arn.$": "$$.Execution.Id"}},
        "ResultSelector": {f"{key}.$": f"$.Payload.{key}" for key in ("error", "cause", "subject", "message")},
        "ResultPath": "$.alert",
        "Retry": [LAMBDA_SERVICE_RETRY],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.describe_error",
                   "Next": "Describe failure plainly"}],
        "Next": "Notify failure",
    }
    # Should describing fail, the failure as it came, so that the run still ends with its own error.
    states["Describe failure plainly"] = {
        "Type": "Pass",
        "Parameters": {
            "error.$": "States.Format('{}: {}', $.failed_stage, $.failure.Error)",
            "cause.$": "$.failure.Cause",
            "subject.$": "States.Format('STEDI run failed at {}', $.failed_stage)",
            "message.$": "States.Format('Run {} failed at {}. Error: {}. Cause: {}. Execution: {}', "
                         "$$.Execution.Name, $.failed_stage, $.failure.Error, $.failure.Cause, $$.Execution.Id)",
        },
        "ResultPath": "$.alert",
        "Next": "Notify failure",
    }
    states["Notify failure"] = notify(comment="The one alert of a failed run: stage, check, cause, the execution.",
                                      topic="${AlertTopicArn}", subject="$.alert.subject",
                                      message="$.alert.message", next_state="Run failed")
    states["Run failed"] = {"Type": "Fail", "ErrorPath": "$.alert.error", "CausePath": "$.alert.cause"}
    return states


def success_states() -> dict[str, dict]:
    """Publish, release the lock, record the run, tell whoever asked to be told; the output is the run summary."""
    return {
        "Publish run": lambda_task(
            comment="Every check passed: point the published tables at this run.",
            function="${PublishRunFunctionArn}",
            payload={"run.$": "$.run", "checks.$": "$.checks", "jobs.$": "$.jobs",
                     "execution_arn.$": "$$.Execution.Id"},
            # The success topic's ARN is substituted at deploy, empty where nobody asked for the success mail.
            result_selector={"summary.$": "$.Payload.summary", "mail.$": "$.Payload.mail",
                             "tables_published.$": "$.Payload.tables_published",
                             "runs_pruned.$": "$.Payload.runs_pruned", "success_topic": "${SuccessTopicArn}"},
            result_path="$.published",
            failed_at="publish",
            next_state="Release run lock",
        ),
        "Release run lock": release_lock("Record run"),
        "Record run": record_run(published=True, next_state="Anyone to tell?"),
        "Anyone to tell?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.published.success_topic", "StringEquals": "", "Next": "Published"}],
            "Default": "Notify success",
        },
        "Notify success": notify(comment="The run summary, to whoever subscribed to the success topic.",
                                 topic="$.published.success_topic", subject="$.published.mail.subject",
                                 message="$.published.mail.message", next_state="Published"),
        # The execution's output: the run summary, as published.json records it.
        "Published": {"Type": "Succeed", "OutputPath": "$.published.summary"},
    }


def steps_of_states() -> dict[str, str]:
    """Each state whose errors go to a "Failed at <step>" state, and that step: where a run stopped or timed out
    in that state had got to (the `failed_stage` a failure there records)."""
    states = definition()["States"]
    failed_at = {name: state["Result"] for name, state in states.items() if state.get("ResultPath") == "$.failed_stage"}
    return {name: failed_at[catch["Next"]] for name, state in states.items()
            for catch in state.get("Catch", []) if catch["Next"] in failed_at}


def definition() -> dict:
    """The state machine as Amazon States Language, with the template's ${...} placeholders."""
    first_job = job_name(STAGE_LIST[0])
    states = {
        "Validate input": lambda_task(
            comment="Run id = execution name; consent scope and exact row counts may come in the input.",
            function="${ValidateRunFunctionArn}",
            payload={"run_id.$": "$$.Execution.Name", "input.$": "$"},
            result_selector={"run.$": "$.Payload"},
            result_path="$",
            failed_at="input",
            next_state="Take run lock",
        ),
        "Take run lock": lambda_task(
            comment="One run at a time: hold the run lock until the run ends, or fail now if another run holds it.",
            function="${TakeRunLockFunctionArn}",
            payload={"owner.$": "$$.Execution.Name"},
            result_selector=None,
            result_path=None,
            failed_at="lock",
            next_state=first_job,
        ),
    }
    for stage, following in zip(STAGE_LIST, STAGE_LIST[1:] + (None,), strict=True):
        next_state = job_name(following) if following else "Publish run"
        if stage.kind == TYPED:  # the landing crawl, when there is something to catalogue, before what follows
            states.update(stage_states(stage, CRAWL_NEEDED))
            states.update(crawl_states(next_state))
        else:
            states.update(stage_states(stage, next_state))
    states.update(success_states())
    states.update(failure_states(["input", "lock", "crawl", *(stage.name for stage in STAGE_LIST), "publish"]))
    return {
        "Comment": "STEDI lakehouse pipeline: each stage's Glue job and its Athena checks in the order of "
                   "stedi.catalogue (after landing, one crawl of the landing zones when they have something new "
                   "to catalogue), then publish. Generated from stedi/aws/state_machine.py "
                   "by `make generate`.",
        "StartAt": "Validate input",
        # No run lasts longer than the run lock it holds (stedi.aws.run_lock).
        "TimeoutSeconds": RUN_TIMEOUT_SECONDS,
        "States": states,
    }
