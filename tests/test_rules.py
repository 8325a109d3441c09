"""Each stage's SQL on small hand-made lakes: what is kept, and the rule that leaves out the rest."""

from lakes import T0, customer, make_lake, published, reading, run, step

A, B, C = "a@test.com", "b@test.com", "c@test.com"


def emails(lake, table="customer_trusted"):
    return [row[0] for row in published(lake, f"SELECT email FROM {table} ORDER BY email")]


def test_latest_record_decides_consent_and_a_later_record_revokes_it(tmp_path):
    customers = [
        customer(A, "s-a", updated=T0, consent=T0),
        customer(A, "s-a", updated=T0 + 10, consent=None),  # revoked
        customer(B, "s-b", updated=T0, consent=None),
        customer(B, "s-b", updated=T0 + 10, consent=T0 + 5),  # consented later
        customer(C, "s-c", updated=T0, consent=T0),
        customer(C, "s-c", updated=T0, consent=None),  # a tie: the record without consent wins
    ]
    readings = [reading(A, T0 + 20), reading(B, T0 + 20), reading(C, T0 + 20)]
    lake = make_lake(tmp_path, customers, readings, [step("s-b", T0 + 20)])
    report = run(lake, consent_scope="customer")

    assert emails(lake) == [B]
    assert published(lake, "SELECT shareWithResearchAsOfDate FROM customer_trusted") == [(T0 + 5,)]
    assert report.filtered["customer_trusted"] == {"superseded": 3, "no_consent": 2}
    assert report.filtered["accelerometer_trusted"] == {"no_consent": 2}


def test_consent_scope_reading_keeps_readings_from_the_consent_date_on(tmp_path):
    customers = [customer(A, "s-a", consent=T0 + 100)]
    readings = [reading(A, T0 + 99), reading(A, T0 + 100), reading(A, T0 + 101)]
    steps = [step("s-a", T0 + 99), step("s-a", T0 + 100), step("s-a", T0 + 101)]
    lake = make_lake(tmp_path, customers, readings, steps)

    report = run(lake, consent_scope="reading")
    assert published(lake, 'SELECT "timestamp" FROM accelerometer_trusted ORDER BY 1') == [(T0 + 100,), (T0 + 101,)]
    assert published(lake, "SELECT sensorReadingTime FROM step_trainer_trusted ORDER BY 1") == [
        (T0 + 100,), (T0 + 101,)]
    assert report.filtered["accelerometer_trusted"] == {"before_consent": 1}
    assert report.filtered["step_trainer_trusted"] == {"before_consent": 1}

    report = run(lake, consent_scope="customer")
    assert report.rows["accelerometer_trusted"] == 3
    assert report.rows["step_trainer_trusted"] == 3


def test_exact_repeats_count_once_and_readings_differing_in_xyz_all_stay(tmp_path):
    readings = [reading(A, T0, 1, 0, 0), reading(A, T0, 1, 0, 0), reading(A, T0, 0, 1, 0), reading(A, T0, 0, 0, 1)]
    steps = [step("s-a", T0), step("s-a", T0)]
    lake = make_lake(tmp_path, [customer(A, "s-a")], readings, steps)
    report = run(lake, consent_scope="customer")
    assert report.rows["accelerometer_trusted"] == 3
    assert report.rows["step_trainer_trusted"] == 1
    assert report.filtered["accelerometer_trusted"] == {"duplicate": 1}
    assert report.filtered["step_trainer_trusted"] == {"duplicate": 1}
    assert report.rows["machine_learning_curated"] == 3


def test_readings_of_unknown_and_non_consenting_customers_are_left_out_by_name(tmp_path):
    customers = [customer(A, "s-a"), customer(B, "s-b", consent=None), customer(C, "s-c")]
    readings = [reading(A, T0), reading(B, T0), reading("nobody@test.com", T0)]
    steps = [step("s-a", T0), step("s-b", T0), step("s-c", T0), step("s-unknown", T0)]
    lake = make_lake(tmp_path, customers, readings, steps)
    report = run(lake, consent_scope="customer")

    assert report.filtered["accelerometer_trusted"] == {"no_consent": 1, "no_parent": 1}
    # C consented but has no phone readings: trusted, not curated, and so are its step trainer readings.
    assert emails(lake, "customer_trusted") == [A, C]
    assert emails(lake, "customer_curated") == [A]
    assert report.filtered["customer_curated"] == {"no_trusted_readings": 1}
    assert report.filtered["step_trainer_trusted"] == {"no_consent": 1, "no_parent": 1, "no_trusted_readings": 1}


def test_a_serial_number_of_two_curated_customers_has_no_single_owner(tmp_path):
    customers = [customer(A, "shared"), customer(B, "shared"), customer(C, "s-c")]
    readings = [reading(A, T0), reading(B, T0), reading(C, T0)]
    lake = make_lake(tmp_path, customers, readings, [step("shared", T0), step("s-c", T0)])
    report = run(lake, consent_scope="customer")
    assert report.filtered["step_trainer_trusted"] == {"ambiguous_owner": 1}
    assert published(lake, "SELECT serialNumber FROM step_trainer_trusted") == [("s-c",)]


def test_ml_pairs_a_step_reading_only_with_its_owners_phone_at_the_same_instant(tmp_path):
    # A and B both have phone readings at T0; only A's step trainer reads at T0.
    customers = [customer(A, "s-a"), customer(B, "s-b")]
    readings = [reading(A, T0, 1, 1, 1), reading(A, T0, 2, 2, 2), reading(B, T0, 9, 9, 9), reading(A, T0 + 1)]
    lake = make_lake(tmp_path, customers, readings, [step("s-a", T0, 210), step("s-b", T0 + 5)])
    run(lake, consent_scope="customer")

    assert published(lake, "SELECT * FROM machine_learning_curated ORDER BY x") == [
        ("s-a", T0, 210, T0, 1.0, 1.0, 1.0),
        ("s-a", T0, 210, T0, 2.0, 2.0, 2.0),
    ]
    columns = [row[0].lower() for row in published(
        lake, "SELECT column_name FROM information_schema.columns WHERE table_name = 'machine_learning_curated'")]
    assert not {"email", "user", "customername", "phone", "birthday"} & set(columns)


def test_every_landing_record_is_kept_rejected_or_filtered(tmp_path):
    customers = [customer(A, "s-a", consent=T0 + 1), customer(A, "s-a", updated=T0 - 1),
                 customer(B, "s-b", consent=None)]
    readings = [reading(A, T0), reading(A, T0 + 2), reading(A, T0 + 2), reading(B, T0), "{oops"]
    steps = [step("s-a", T0 + 2), step("s-a", T0), step("s-b", T0), step("s-x", T0), '{"sensorReadingTime": 1}']
    lake = make_lake(tmp_path, customers, readings * 2, steps * 2)
    report = run(lake, consent_scope="reading")
    assert report.published, report.failures
    for source, table in [("customer", "customer_trusted"), ("accelerometer", "accelerometer_trusted"),
                          ("step_trainer", "step_trainer_trusted")]:
        landing_lines = {"customer": 3, "accelerometer": 10, "step_trainer": 10}[source]
        kept = report.rows[table]
        rejected = sum(report.rejected[source].values())
        filtered = sum(report.filtered[table].values())
        assert kept + rejected + filtered == landing_lines, source
