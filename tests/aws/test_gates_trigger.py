"""The trigger's two rules at their edges: the name of a run, and which uploads a run has already read."""

import time
from datetime import datetime, timedelta, timezone

from stedi.aws.trigger import Upload, decide, execution_name

START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def test_the_execution_name_is_the_newest_upload_time_and_a_digest_of_the_event_ids_whenever_asked():
    uploads = [Upload("m-2", "e-2", START), Upload("m-1", "e-1", START - timedelta(minutes=5))]
    # sha256 of "e-1\ne-2" (the ids sorted, one per line), its first 16 hex digits: worked out once, pinned.
    expected = "upload-20260102T030405Z-1434cfd8dc7599bf"
    assert execution_name(uploads) == expected
    time.sleep(0.01)  # later, and with the events in the other order, a redelivered batch asks for the same run
    assert execution_name(list(reversed(uploads))) == expected


def test_an_upload_made_the_instant_the_latest_run_started_was_read_by_it():
    # S3 event times have whole seconds: one stamped with the run's start was made before its landing job listed
    # the files, a crawler poll later. Only a later upload asks for a run, named after it alone.
    at_start, after = Upload("m-1", "e-1", START), Upload("m-2", "e-2", START + timedelta(seconds=1))
    assert decide([at_start], START).action == "skip"
    decision = decide([at_start, after], START)
    assert (decision.action, decision.execution_name) == ("start", execution_name([after]))
