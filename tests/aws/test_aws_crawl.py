"""The landing crawl, run by the real state machine in moto: at most one crawl a run, only when it has
something to catalogue, and a crawl that retypes a catalogued column fails the run saying which.

The fake crawler behaves as AWS documents a crawler whose targets are catalog tables (aws_fakes.
crawl_catalog_targets): no table created, the tables' columns made to fit the data (UPDATE_IN_DATABASE:
https://docs.aws.amazon.com/glue/latest/dg/crawler-configuration.html); GetCrawler's State READY and
LastCrawl.Status SUCCEEDED or FAILED (https://docs.aws.amazon.com/glue/latest/dg/aws-glue-api-crawler-crawling.html).
"""

import json

from aws_fakes import CRAWLED_DB, LakeAthena

from stedi.catalogue import LANDING_SOURCES


def states_entered(execution) -> list[str]:
    return [event["stateEnteredEventDetails"]["name"] for event in execution["history"]
            if "stateEnteredEventDetails" in event]


def crawled_columns(stack) -> dict[str, dict[str, str]]:
    tables = stack.client("glue").get_tables(DatabaseName=CRAWLED_DB)["TableList"]
    return {table["Name"]: {column["Name"]: column["Type"] for column in table["StorageDescriptor"]["Columns"]}
            for table in tables}


def check_output(execution, stage: str = "landing") -> dict:
    """What the state machine kept of a check state's result."""
    for event in execution["history"]:
        details = event.get("stateExitedEventDetails")
        if details and details["name"] == f"Check {stage}":
            return json.loads(details["output"])["checks"][stage]
    raise AssertionError(f"no Check {stage} state")


def test_the_first_run_crawls_once_and_makes_every_landing_table(stack):
    stack.answer = LakeAthena(stack)
    execution = stack.run(name="run-first")

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert stack.crawls == 1
    entered = states_entered(execution)
    assert entered.count("Start landing crawl") == 1 and "Verify landing crawl" in entered
    # The crawl comes after the landing checks, before the next stage's job.
    assert entered.index("Check landing") < entered.index("Start landing crawl") < entered.index(
        "Run customer_trusted job")
    crawl = check_output(execution)["crawl"]
    assert crawl["needed"] and len(crawl["reasons"]) == len(LANDING_SOURCES)
    # The seed's tables, under the catalogue's names, with the columns of the uploads (lower case, as Glue keeps).
    assert crawled_columns(stack) == {"customer_landing": {"email": "string"},
                                      "accelerometer_landing": {"user": "string"},
                                      "step_trainer_landing": {"serialnumber": "string"}}


def test_a_run_with_no_new_key_does_not_crawl(stack):
    stack.answer = LakeAthena(stack)
    assert stack.run(name="run-first")["status"] == "SUCCEEDED"
    stack.upload("accelerometer/landing/more.json", '{"user": "b@test.com", "timestamp": 1}\n')

    execution = stack.run(name="run-again")

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert stack.crawls == 1  # the first run's
    entered = states_entered(execution)
    assert "Crawl needed?" in entered and "Start landing crawl" not in entered
    assert check_output(execution)["crawl"] == {"needed": False, "reasons": [], "columns": crawled_columns(stack)}


def test_a_run_with_a_new_key_crawls_once_and_catalogues_it(stack):
    stack.answer = LakeAthena(stack)
    assert stack.run(name="run-first")["status"] == "SUCCEEDED"
    stack.upload("customer/landing/loyal.json", '{"email": "b@test.com", "loyaltyTier": "gold"}\n'
                                                '{"email": "c@test.com", "loyaltyTier": "silver"}\n')

    execution = stack.run(name="run-new-key")

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert stack.crawls == 2
    assert states_entered(execution).count("Start landing crawl") == 1
    landing = check_output(execution)
    assert landing["drift"]["customer"] == {
        "loyaltyTier": {"lines": 2, "example_file": "customer/landing/loyal.json"}}
    assert landing["crawl"]["reasons"] == ["customer_landing has no column for 'loyaltyTier'"]
    assert crawled_columns(stack)["customer_landing"] == {"email": "string", "loyaltytier": "string"}
    # Catalogued now: the next run does not crawl for it again.
    assert stack.run(name="run-after")["status"] == "SUCCEEDED"
    assert stack.crawls == 2


def test_a_crawl_that_retypes_a_catalogued_column_fails_the_run_naming_it(stack):
    stack.answer = LakeAthena(stack)
    assert stack.run(name="run-first")["status"] == "SUCCEEDED"
    # A new key makes the run crawl; the same upload turns step_trainer's serialNumber into a number.
    stack.upload("step_trainer/landing/seed.json", '{"serialNumber": 7, "firmware": "2.1"}\n')

    execution = stack.run(name="run-retyped")

    assert execution["status"] == "FAILED"
    assert execution["error"].startswith("crawl: ")
    assert "step_trainer_landing.serialnumber from string to int" in execution["cause"]
    assert stack.crawls == 2
    entered = states_entered(execution)
    assert "Run customer_trusted job" not in entered and "Publish run" not in entered
    assert "Failed at crawl" in entered and "Notify failure" in entered  # the one alert of a failed run
    assert stack.lock_owner() is None


def test_a_failed_crawl_fails_the_run_before_the_next_stage(stack):
    stack.crawl_fails = True
    execution = stack.run(name="run-bad-crawl")

    assert execution["status"] == "FAILED"
    assert execution["error"] == "crawl: CrawlFailed"
    assert "landing crawler" in execution["cause"]
    entered = states_entered(execution)
    assert "Run customer_trusted job" not in entered
    assert entered.count("Notify failure") == 1


def test_a_crawler_already_crawling_is_waited_for_rather_than_failing_the_run(stack):
    stack.crawler_busy = True
    execution = stack.run(name="run-busy-crawler")

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    refused = [event["taskFailedEventDetails"]["error"] for event in execution["history"]
               if "taskFailedEventDetails" in event]
    assert refused == ["Glue.CrawlerRunningException"]
    assert stack.crawls == 0  # the crawl under way was someone else's, and it served this run
