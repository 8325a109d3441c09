"""Proof on a real account, in one command: `make smoke STACK=<name>` (docs/aws.md, "First deploy: prove it").

Against a freshly deployed stack (landing folders empty), with the credentials of its account:

1. upload the starter data; the run it starts succeeds and publishes the README's figures exactly;
2. upload a later record of one curated customer without consent; the next run publishes less, exactly
   what the local pipeline publishes for the same files;
3. upload a file of garbage lines; the next run still publishes, with those lines rejected.

Each run's console link is printed as it ends. About half an hour: each run runs six Glue jobs, the first crawls.
Skipped, saying why, without a stack name (STEDI_STACK, which `make smoke` sets) or AWS credentials.
"""

import os
from datetime import datetime, timezone

import boto3
import pytest
from smoke import (
    GARBAGE,
    STARTER,
    STARTER_PUBLISHED,
    deployed_stack,
    landing_keys,
    local_publication,
    published_entry,
    published_rows,
    recorded_outcomes,
    revocation,
    upload_landing,
    wait_for_run,
)

from stedi.aws.athena import AthenaQuery
from stedi.aws.outcome import console_link

FIGURES = ("tables", "rejected", "filtered")  # what published.json and a local manifest must agree on


@pytest.fixture(scope="module")
def session():
    if not os.environ.get("STEDI_STACK"):
        pytest.skip("no stack given: deploy one (`make deploy STACK=<name>`), then run `make smoke STACK=<name>`")
    session = boto3.session.Session()
    if session.get_credentials() is None or session.region_name is None:
        pytest.skip("no AWS credentials or Region: run `aws configure`, or set AWS_PROFILE and AWS_DEFAULT_REGION")
    return session


def run_after_upload(session, stack, upload, capsys) -> dict:
    """Upload, wait for the run the upload starts, print its console link; the run's published.json entry."""
    uploaded_at = datetime.now(timezone.utc)
    upload()
    execution = wait_for_run(session.client("stepfunctions"), stack.state_machine_arn, uploaded_at)
    with capsys.disabled():
        print(f"\n{execution['name']}: {execution['status']}\n  {console_link(execution['executionArn'])}")
    assert execution["status"] == "SUCCEEDED", f"{execution.get('error')}: {execution.get('cause')}"
    entry = published_entry(session.client("s3"), stack.bucket)
    assert entry["run_id"] == execution["name"]
    return entry


def test_a_deployed_stack_publishes_the_starter_data_then_a_revocation_then_survives_garbage(session, capsys):
    stack = deployed_stack(session.client("cloudformation"), os.environ["STEDI_STACK"])
    s3 = session.client("s3")
    athena = AthenaQuery(session.client("athena"), stack.published_database, stack.workgroup)
    present = landing_keys(s3, stack.bucket)
    assert not present, (f"the smoke test needs a stack whose landing folders are empty, to know what it must "
                         f"publish; {stack.name} has {len(present)} landing file(s), e.g. {present[0]}: "
                         "deploy a new stack for it")

    # 1. The starter data: the README's figures, exactly, in published.json and for a reader in Athena.
    first = run_after_upload(session, stack, lambda: upload_landing(s3, stack.bucket, STARTER), capsys)
    assert {table: first["tables"][table] for table in STARTER_PUBLISHED} == STARTER_PUBLISHED
    expected = local_publication(STARTER)
    assert {key: first[key] for key in FIGURES} == {key: expected[key] for key in FIGURES}
    assert published_rows(athena) == first["tables"]

    # 2. A revocation: the customer's data leaves every trusted and curated table.
    email, record = revocation(STARTER)
    revoked = {f"customer/landing/smoke-revocation-{email.split('@')[0]}.json": record + "\n"}
    second = run_after_upload(session, stack, lambda: [s3.put_object(Bucket=stack.bucket, Key=key, Body=text.encode())
                                                       for key, text in revoked.items()], capsys)
    expected = local_publication(STARTER, revoked)
    assert {key: second[key] for key in FIGURES} == {key: expected[key] for key in FIGURES}
    for table in ("customer_trusted", "accelerometer_trusted", "customer_curated", "step_trainer_trusted",
                  "machine_learning_curated"):
        assert second["tables"][table] < first["tables"][table], table
    assert published_rows(athena) == second["tables"]

    # 3. Garbage: the run still publishes, every garbage line rejected with its reason.
    garbage = {"accelerometer/landing/smoke-garbage.json": "".join(line + "\n" for line in GARBAGE)}
    third = run_after_upload(session, stack, lambda: [s3.put_object(Bucket=stack.bucket, Key=key, Body=text.encode())
                                                      for key, text in garbage.items()], capsys)
    expected = local_publication(STARTER, revoked | garbage)
    assert {key: third[key] for key in FIGURES} == {key: expected[key] for key in FIGURES}
    assert sum(third["rejected"]["accelerometer"].values()) == len(GARBAGE)
    assert third["tables"] == {**second["tables"], "accelerometer_rejected": len(GARBAGE)}

    # Every run is in the history table, as published.
    runs = [entry["run_id"] for entry in (first, second, third)]
    assert recorded_outcomes(athena, stack.history_table, runs) == {run_id: "published" for run_id in runs}
