"""One landing snapshot per run: the landing job lists the landing files once, reads exactly those, and the
checks count exactly those, so an upload made while a run goes on waits for the next run.

The state machine runs in moto with the deployed Glue script's own listing and registration (aws_fakes);
Athena's answers come from what the jobs wrote and from the files the raw tables read (LakeAthena).
"""

import json

import boto3
import pytest
from aws_fakes import BUCKET, REGION, SEED_UPLOADS, LakeAthena, glue_script
from moto import mock_aws

from stedi.catalogue import LANDING_SOURCES

# A check that fails before measuring anything has no metrics to flush; Powertools warns, rightly.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

LINES = '{"email": "x"}\n{"email": "y"}\n\n{"email": "z"}\n'  # three lines and a blank one


def snapshot_paths(stack, run_id: str) -> dict[str, list[str]]:
    record = json.loads(stack.client("s3").get_object(Bucket=BUCKET, Key=f"runs/{run_id}/landing_files.json")["Body"]
                        .read())
    return {folder: [file["path"] for file in files] for folder, files in record.items()}


def landing_rows(execution) -> dict[str, int]:
    """Rows per table, as the run summary (the execution's output) gives them."""
    return json.loads(execution["output"])["tables"]


def test_an_upload_between_the_landing_job_and_its_check_waits_for_the_next_run(stack):
    stack.answer = LakeAthena(stack)
    stack.upload("customer/landing/customer-1.json", LINES)
    stack.after_jobs["landing"] = lambda: stack.upload("customer/landing/customer-2.json", LINES)

    first = stack.run(name="run-1")

    assert first["status"] == "SUCCEEDED", first.get("cause")
    assert landing_rows(first)["customer_landing"] == 1 + 3  # the seed file and customer-1
    assert f"s3://{BUCKET}/customer/landing/customer-2.json" not in snapshot_paths(stack, "run-1")["customer/landing"]

    stack.after_jobs.clear()
    second = stack.run(name="run-2")

    assert second["status"] == "SUCCEEDED", second.get("cause")
    assert landing_rows(second)["customer_landing"] == 1 + 3 + 3
    assert f"s3://{BUCKET}/customer/landing/customer-2.json" in snapshot_paths(stack, "run-2")["customer/landing"]


def test_a_landing_file_replaced_after_the_landing_job_read_it_fails_the_run_naming_it(stack):
    """Athena reads a file's current version only: a replaced file of the snapshot cannot be counted as read."""
    stack.answer = LakeAthena(stack)
    stack.after_jobs["landing"] = lambda: stack.upload("accelerometer/landing/seed.json", LINES)

    execution = stack.run(name="run-replaced")

    assert execution["status"] == "FAILED"
    assert execution["error"] == "landing: LandingChanged"
    assert f"s3://{BUCKET}/accelerometer/landing/seed.json was replaced" in execution["cause"]
    entered = [event["stateEnteredEventDetails"]["name"] for event in execution["history"]
               if "stateEnteredEventDetails" in event]
    assert "Run customer_trusted job" not in entered


# ---------------------------------------------------------------- listing the landing folders


@pytest.fixture
def bucket():
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        for key, body in SEED_UPLOADS.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())
        yield s3


FOLDERS = [source.landing_folder for source in LANDING_SOURCES]


def test_the_snapshot_is_the_latest_version_of_each_file_spark_would_read(bucket):
    bucket.put_object(Bucket=BUCKET, Key="customer/landing/b.json", Body=b"1\n")
    replaced = bucket.put_object(Bucket=BUCKET, Key="customer/landing/b.json", Body=b"2\n")
    for ignored in ("customer/landing/_SUCCESS", "customer/landing/.part.json", "customer/landing/"):
        bucket.put_object(Bucket=BUCKET, Key=ignored, Body=b"")
    bucket.put_object(Bucket=BUCKET, Key="customer/landing/gone.json", Body=b"3\n")
    bucket.delete_object(Bucket=BUCKET, Key="customer/landing/gone.json")  # its latest version: a delete marker

    snapshot = glue_script().list_landing(bucket, f"s3://{BUCKET}", FOLDERS)

    assert [file["path"] for file in snapshot["customer/landing"]] == [
        f"s3://{BUCKET}/customer/landing/b.json", f"s3://{BUCKET}/customer/landing/seed.json"]
    [b_json, _] = snapshot["customer/landing"]
    assert (b_json["etag"], b_json["version_id"], b_json["size"]) == (replaced["ETag"], replaced["VersionId"], 2)


def test_a_folder_inside_a_landing_folder_is_refused_by_name(bucket):
    bucket.put_object(Bucket=BUCKET, Key="step_trainer/landing/2024/part.json", Body=b"{}\n")
    with pytest.raises(glue_script().LandingError, match="step_trainer/landing/2024/ is a folder inside"):
        glue_script().list_landing(bucket, f"s3://{BUCKET}", FOLDERS)


def test_an_empty_landing_folder_is_refused_by_name(bucket):
    bucket.delete_object(Bucket=BUCKET, Key="accelerometer/landing/seed.json")
    with pytest.raises(glue_script().LandingError, match=f"no landing files in s3://{BUCKET}/accelerometer/landing/"):
        glue_script().list_landing(bucket, f"s3://{BUCKET}", FOLDERS)
