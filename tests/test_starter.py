"""The real STEDI starter data: exact figures for both consent scopes.

Scope `customer` reproduces the published course figures (with the ML table
joined on the customer, 40,981 rows, not the timestamp-only 43,681). Scope
`reading` applies the consent date to each reading; its figures are what the
rules compute from this data, checked here to add up to the landing counts.
"""

import pytest
from lakes import published, run

LANDING = {"customer_landing": 956, "accelerometer_landing": 81_273, "step_trainer_landing": 28_680}
NOTHING_REJECTED = {"customer_rejected": 0, "accelerometer_rejected": 0, "step_trainer_rejected": 0}

EXPECTED = {
    "customer": {
        "rows": {**LANDING, **NOTHING_REJECTED, "customer_trusted": 482, "accelerometer_trusted": 40_981,
                 "customer_curated": 482, "step_trainer_trusted": 14_460, "machine_learning_curated": 40_981},
        "filtered": {"customer_trusted": {"no_consent": 474},
                     "accelerometer_trusted": {"no_consent": 40_292},
                     "customer_curated": {},
                     "step_trainer_trusted": {"no_consent": 14_220}},
    },
    "reading": {
        "rows": {**LANDING, **NOTHING_REJECTED, "customer_trusted": 482, "accelerometer_trusted": 32_025,
                 "customer_curated": 464, "step_trainer_trusted": 11_297, "machine_learning_curated": 32_025},
        "filtered": {"customer_trusted": {"no_consent": 474},
                     "accelerometer_trusted": {"before_consent": 8_956, "no_consent": 40_292},
                     "customer_curated": {"no_trusted_readings": 18},
                     "step_trainer_trusted": {"before_consent": 2_623, "no_consent": 14_220,
                                              "no_trusted_readings": 540}},
    },
}


@pytest.mark.parametrize("scope", ["customer", "reading"])
def test_starter_figures(starter_lake, scope):
    expected = EXPECTED[scope]
    report = run(starter_lake, consent_scope=scope, expected_counts=expected["rows"])

    assert report.published, [f.describe() for f in report.failures]
    assert report.filtered == expected["filtered"]
    assert report.rows == expected["rows"]
    assert all(r.status == "passed" for r in report.checks if r.check == "row_count")


def test_the_timestamp_only_join_would_pair_other_customers_devices(starter_lake):
    """The 2,700 rows the course's quoted 43,681 has too many are cross-customer pairs."""
    run(starter_lake, consent_scope="customer")
    [(timestamp_only,)] = published(starter_lake, """
        SELECT count(*) FROM step_trainer_trusted s
        JOIN accelerometer_trusted a ON a."timestamp" = s.sensorReadingTime""")
    assert timestamp_only == 43_681
    assert timestamp_only - published(starter_lake, "SELECT count(*) FROM machine_learning_curated")[0][0] == 2_700
