"""One hand-made lake where every rule of every stage, and every reason of every source, applies.

The expected figures are worked out by hand from the rules in the README, so
a rule dropped from a stage's SQL, or a rule or reason missing from a check's
list of known ones, changes a figure or fails a check and the run. Both
engines must publish exactly these figures.
"""

import json

import pytest
from lakes import T0, customer, make_lake, published, reading, run, step

A, B, C, D, E, F, P = (f"{name}@test.com" for name in "abcdefp")


def without(record: dict, key: str) -> str:
    return json.dumps({k: v for k, v in record.items() if k != key})


def changed(record: dict, **values) -> str:
    return json.dumps({**record, **values})


NESTED = {"nested": 1}
GOOD_CUSTOMER, GOOD_READING, GOOD_STEP = customer("r@test.com", "s-r"), reading(A, T0), step("s-a", T0)
# One line per reason, in each source: every reason the landing stage can give.
REJECTED = {
    "customer": {
        "malformed_json": "{oops",
        "missing_field:email": without(GOOD_CUSTOMER, "email"),
        "missing_field:serialNumber": without(GOOD_CUSTOMER, "serialNumber"),
        "missing_field:lastUpdateDate": without(GOOD_CUSTOMER, "lastUpdateDate"),
        **{f"wrong_type:{key}": changed(GOOD_CUSTOMER, **{key: NESTED})
           for key in ("customerName", "email", "phone", "birthDay", "serialNumber")},
        **{f"wrong_type:{key}": changed(GOOD_CUSTOMER, **{key: "soon"})
           for key in ("registrationDate", "lastUpdateDate", "shareWithResearchAsOfDate", "shareWithPublicAsOfDate",
                       "shareWithFriendsAsOfDate")},
    },
    "accelerometer": {
        "malformed_json": '["not", "an", "object"]',
        **{f"missing_field:{key}": without(GOOD_READING, key) for key in ("user", "timestamp", "x", "y", "z")},
        "wrong_type:user": changed(GOOD_READING, user=NESTED),
        **{f"wrong_type:{key}": changed(GOOD_READING, **{key: "abc"}) for key in ("timestamp", "x", "y", "z")},
    },
    "step_trainer": {
        "malformed_json": '{"sensorReadingTime": 1,',
        **{f"missing_field:{key}": without(GOOD_STEP, key)
           for key in ("sensorReadingTime", "serialNumber", "distanceFromObject")},
        "wrong_type:sensorReadingTime": changed(GOOD_STEP, sensorReadingTime="noon"),
        "wrong_type:serialNumber": changed(GOOD_STEP, serialNumber=NESTED),
        "wrong_type:distanceFromObject": changed(GOOD_STEP, distanceFromObject=True),
    },
}

CUSTOMERS = [
    customer(A, "s-a", consent=T0 + 100), customer(A, "s-a", updated=T0 - 5, consent=None),  # superseded
    customer(B, "s-b", consent=None),  # no consent
    customer(C, "s-c", consent=T0), customer(C, "s-c", consent=None),  # a tie: the record without consent wins
    customer(D, "s-d", consent=T0),  # consents, but no phone readings
    customer(E, "s-ef", consent=T0), customer(F, "s-ef", consent=T0),  # one serial number, two curated customers
    # Enough records (P never consents) that the rejected lines stay under a quarter of the customer lines.
    *(customer(P, "s-p", updated=T0 - 1000 - i, consent=None) for i in range(42)),
]
READINGS = [
    reading(A, T0 + 99), reading(A, T0 + 100, 1.0), reading(A, T0 + 101, 2.0), reading(A, T0 + 101, 2.0),
    reading(C, T0 + 300), reading(E, T0 + 100, 5.0), reading(F, T0 + 600), reading("nobody@test.com", T0),
    *(reading(B, T0 + 200 + i) for i in range(31)),
]
STEPS = [
    step("s-a", T0 + 99), step("s-a", T0 + 100), step("s-a", T0 + 101), step("s-a", T0 + 101),
    step("s-c", T0 + 300), step("s-d", T0 + 400), step("s-ef", T0 + 600), step("s-unknown", T0),
    *(step("s-b", T0 + 200 + i) for i in range(16)),
]

ROWS = {"customer_landing": 50, "customer_rejected": 14, "accelerometer_landing": 39, "accelerometer_rejected": 11,
        "step_trainer_landing": 24, "step_trainer_rejected": 7, "customer_trusted": 4, "accelerometer_trusted": 4,
        "customer_curated": 3, "step_trainer_trusted": 2, "machine_learning_curated": 2}
FILTERED = {
    "customer_trusted": {"superseded": 1 + 1 + 41, "no_consent": 1 + 1 + 1},  # A's older, C's other, P's older
    "accelerometer_trusted": {"before_consent": 1, "duplicate": 1, "no_consent": 1 + 31, "no_parent": 1},
    "customer_curated": {"no_trusted_readings": 1},  # D
    "step_trainer_trusted": {"before_consent": 1, "duplicate": 1, "no_consent": 1 + 16, "no_trusted_readings": 1,
                             "ambiguous_owner": 1, "no_parent": 1},
}
# A's trainer at T0 + 100 and T0 + 101 with A's phone at the same instants only (E's phone reads at T0 + 100 too).
ML_ROWS = [("s-a", T0 + 100, 200, T0 + 100, 1.0, 0.0, 0.0), ("s-a", T0 + 101, 200, T0 + 101, 2.0, 0.0, 0.0)]


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def test_every_rule_and_every_reason_on_one_lake(tmp_path, engine):
    lake = make_lake(tmp_path, [*CUSTOMERS, *REJECTED["customer"].values()],
                     [*READINGS, *REJECTED["accelerometer"].values()], [*STEPS, *REJECTED["step_trainer"].values()])
    report = run(lake, engine=engine, consent_scope="reading")

    assert report.published, [f.describe() for f in report.failures]  # rule_known and reason_known know them all
    assert report.rows == ROWS
    assert report.rejected == {source: dict.fromkeys(reasons, 1) for source, reasons in REJECTED.items()}
    assert report.filtered == FILTERED
    assert published(lake, "SELECT * FROM machine_learning_curated ORDER BY sensorReadingTime") == ML_ROWS
    assert published(lake, "SELECT email FROM customer_curated ORDER BY email") == [(A,), (E,), (F,)]
