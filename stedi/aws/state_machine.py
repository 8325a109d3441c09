"""The Step Functions definition of a run, built from the catalogue.

`make generate` writes it to statemachine/pipeline.asl.json, which template.yaml
deploys with its ${...} placeholders substituted (DefinitionSubstitutions).
A run: validate the input, take the run lock (stedi.aws.run_lock), crawl every
landing zone, then for each stage of stedi.catalogue in order its Glue job and
its checks on Athena, then publish and release the lock. Any failure goes
through one "Failed at <step>" state, which names the step for the one alert,
then releases the lock, to the one Fail state. Service ARNs name the partition
(${Partition}), so the definition deploys outside the `aws` partition too.

Each stage keeps its own named states (rather than a Map over the stages) so
that the console's graph shows which stage a run reached.
Standard library only: it ships in the Lambda layer with the rest of stedi.aws.
"""

from __future__ import annotations

from stedi.accounting import SUMMARY_KEYS
from stedi.aws.run_lock import LOCK_ATTRIBUTE, LOCK_KEY, OWNER_ATTRIBUTE, RUN_TIMEOUT_SECONDS
from stedi.catalogue import LANDING_SOURCES, STAGE_LIST, TYPED, Source, Stage

# Service integrations in the partition deployed to (arn:aws:states:::... in most Regions).
STATES = "arn:${Partition}:states:::"

# The one Glue job runs every stage, named by its --stage argument.
STAGE_JOB = "${StageJob}"
CHECK_FUNCTION = "${CheckStageFunctionArn}"

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


def crawler_placeholder(source: Source) -> str:
    """The template's substitution of the source's crawler name: ${CustomerCrawler}, ..."""
    return "${%sCrawler}" % "".join(part.capitalize() for part in source.name.split("_"))


def crawl_branch(source: Source) -> dict:
    """Start the source's crawler (or wait for the crawl under way), then poll until it ends, for a bounded time."""
    label = source.name.replace("_", " ")
    title = label.capitalize()
    crawler = crawler_placeholder(source)
    start, wait, get = f"Start {label} crawl", f"Wait for {label} crawl", f"Get {label} crawler"
    done, count, overdue = f"Is {label} crawl done?", f"Count {label} poll", f"Is {label} crawl overdue?"
    crawled, failed, timed_out = f"{title} crawled", f"{title} crawl failed", f"{title} crawl timed out"
    return {
        "StartAt": f"Prepare {label} crawl",
        "States": {
            f"Prepare {label} crawl": {"Type": "Pass", "Parameters": {"polls": 0}, "Next": start},
            start: {
                "Type": "Task",
                "Resource": f"{STATES}aws-sdk:glue:startCrawler",
                "Parameters": {"Name": crawler},
                "ResultPath": None,
                "Retry": [GLUE_API_RETRY],
                "Catch": [{"ErrorEquals": ["Glue.CrawlerRunningException"], "ResultPath": None, "Next": wait}],
                "Next": wait,
            },
            wait: {"Type": "Wait", "Seconds": CRAWL_POLL_SECONDS, "Next": get},
            get: {
                "Type": "Task",
                "Resource": f"{STATES}aws-sdk:glue:getCrawler",
                "Parameters": {"Name": crawler},
                "ResultSelector": {"State.$": "$.Crawler.State", "Crawler.$": "$.Crawler"},
                "ResultPath": "$.crawler",
                "Retry": [GLUE_API_RETRY],
                "Next": done,
            },
            done: {
                "Type": "Choice",
                "Choices": [
                    {"Not": {"Variable": "$.crawler.State", "StringEquals": "READY"}, "Next": count},
                    {"Variable": "$.crawler.Crawler.LastCrawl.Status", "StringEquals": "SUCCEEDED", "Next": crawled},
                ],
                "Default": failed,
            },
            count: {"Type": "Pass", "Parameters": {"polls.$": "States.MathAdd($.polls, 1)"}, "Next": overdue},
            overdue: {
                "Type": "Choice",
                "Comment": f"Bounded polling: {CRAWL_MAX_POLLS} polls of {CRAWL_POLL_SECONDS} s.",
                "Choices": [{"Variable": "$.polls", "NumericGreaterThanEquals": CRAWL_MAX_POLLS, "Next": timed_out}],
                "Default": wait,
            },
            crawled: {
                "Type": "Pass",
                "Parameters": {"source": source.name, "status.$": "$.crawler.Crawler.LastCrawl.Status",
                               "polls.$": "$.polls"},
                "End": True,
            },
            failed: {
                "Type": "Fail",
                "Error": "CrawlFailed",
                "Cause": f"The {source.name} landing crawler's last crawl did not succeed: "
                         "see LastCrawl and its log in the Glue console.",
            },
            timed_out: {
                "Type": "Fail",
                "Error": "CrawlTimedOut",
                "Cause": f"The {source.name} landing crawler was still running after "
                         f"{CRAWL_MAX_POLLS * CRAWL_POLL_SECONDS // 60} minutes.",
            },
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


def stage_states(stage: Stage, next_state: str) -> dict[str, dict]:
    """The stage's Glue job, then its checks; either failing fails the run at this stage."""
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
            comment="Row counts and the stage's checks on Athena; a failed check (CheckFailed) is never retried.",
            function=CHECK_FUNCTION,
            payload={"stage": stage.name, "run.$": "$.run"},
            result_selector={f"{key}.$": f"$.Payload.{key}" for key in SUMMARY_KEYS},
            result_path=f"$.checks.{stage.name}",
            failed_at=stage.name,
            next_state=next_state,
            # The function gives up on a slow query after its own timeout; one more try, then fail.
            retry=({"ErrorEquals": ["QueryTimedOut"], "IntervalSeconds": 30, "MaxAttempts": 1},),
        ),
    }


def failure_states(steps: list[str]) -> dict[str, dict]:
    """One "Failed at <step>" per step, then the lock released, the one alert and the one Fail state."""
    states = {f"Failed at {step}": {"Type": "Pass", "Result": step, "ResultPath": "$.failed_stage",
                                    "Next": "Release run lock after failure"}
              for step in steps}
    states["Release run lock after failure"] = release_lock("Describe failure")
    states["Describe failure"] = {
        "Type": "Pass",
        "Parameters": {"error.$": "States.Format('{}: {}', $.failed_stage, $.failure.Error)",
                       "cause.$": "$.failure.Cause"},
        "ResultPath": "$.alert",
        "Next": "Notify failure",
    }
    states["Notify failure"] = {
        "Type": "Task",
        "Comment": "The one alert of a failed run, naming the stage and, for a check, the check.",
        "Resource": f"{STATES}sns:publish",
        "Parameters": {
            "TopicArn": "${AlertTopicArn}",
            "Subject.$": "States.Format('STEDI pipeline run failed in stage {}', $.failed_stage)",
            "Message.$": "States.Format('Run {} failed in stage {}. Error: {}. Cause: {}. Execution: {}', "
                         "$$.Execution.Name, $.failed_stage, $.alert.error, $.alert.cause, $$.Execution.Id)",
        },
        "ResultPath": None,
        # Failing to alert must not hide the run's own error: retry, then fail the run anyway.
        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.notify_error", "Next": "Run failed"}],
        "Next": "Run failed",
    }
    states["Run failed"] = {"Type": "Fail", "ErrorPath": "$.alert.error", "CausePath": "$.alert.cause"}
    return states


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
            next_state="Crawl landing zones",
        ),
        "Crawl landing zones": {
            "Type": "Parallel",
            "Comment": "Catalog each landing zone in the crawled database.",
            "Branches": [crawl_branch(source) for source in LANDING_SOURCES],
            "ResultPath": None,
            "Catch": catch_all("crawl"),
            "Next": first_job,
        },
    }
    for stage, following in zip(STAGE_LIST, STAGE_LIST[1:] + (None,), strict=True):
        states.update(stage_states(stage, job_name(following) if following else "Publish run"))
    states["Publish run"] = lambda_task(
        comment="Every check passed: point the published tables at this run.",
        function="${PublishRunFunctionArn}",
        payload={"run.$": "$.run", "checks.$": "$.checks", "jobs.$": "$.jobs"},
        result_selector={"tables_published.$": "$.Payload.tables_published", "runs_pruned.$": "$.Payload.runs_pruned"},
        result_path="$.published",
        failed_at="publish",
        next_state="Release run lock",
    )
    states["Release run lock"] = release_lock("Published")
    states["Published"] = {"Type": "Succeed"}
    states.update(failure_states(["input", "lock", "crawl", *(stage.name for stage in STAGE_LIST), "publish"]))
    return {
        "Comment": "STEDI lakehouse pipeline: crawl the landing zones, then each stage's Glue job and its Athena "
                   "checks in the order of stedi.catalogue, then publish. Generated from stedi/aws/state_machine.py "
                   "by `make generate`.",
        "StartAt": "Validate input",
        # No run lasts longer than the run lock it holds (stedi.aws.run_lock).
        "TimeoutSeconds": RUN_TIMEOUT_SECONDS,
        "States": states,
    }
