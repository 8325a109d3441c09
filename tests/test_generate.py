import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from stedi import generate
from stedi.generate import generate_lake

SOURCES = ("customer", "accelerometer", "step_trainer")
CUSTOMER_KEYS = {
    "customerName": str,
    "email": str,
    "phone": str,
    "birthDay": str,
    "serialNumber": str,
    "registrationDate": int,
    "lastUpdateDate": int,
}
OPTIONAL_CUSTOMER_KEYS = ("shareWithResearchAsOfDate", "shareWithPublicAsOfDate", "shareWithFriendsAsOfDate")
READING_KEYS = {
    "accelerometer": {"user": str, "timestamp": int, "x": float, "y": float, "z": float},
    "step_trainer": {"sensorReadingTime": int, "serialNumber": str, "distanceFromObject": int},
}
RESEARCH = "shareWithResearchAsOfDate"


# --- Helpers -------------------------------------------------------------------------------


def landing_files(lake: Path, source: str) -> list[Path]:
    return sorted((lake / source / "landing").iterdir())


def lines(lake: Path, source: str) -> list[str]:
    return [line for path in landing_files(lake, source) for line in path.read_text().split("\n")[:-1]]


def records(lake: Path, source: str) -> list[dict]:
    return [json.loads(line) for line in lines(lake, source)]


def snapshot(lake: Path) -> dict[str, bytes]:
    return {str(path.relative_to(lake)): path.read_bytes() for path in sorted(lake.rglob("*")) if path.is_file()}


MALFORMED = object()


def parsed(line: str) -> object:
    """The JSON value of a line, or MALFORMED."""
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return MALFORMED


def has_type(value: object, expected: type) -> bool:
    return isinstance(value, expected) and not isinstance(value, bool)


def is_valid(source: str, line: str) -> bool:
    """Whether the line is one complete record of the source, every value of the right type."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return False
    if not isinstance(record, dict):
        return False
    if source == "customer":
        keys = CUSTOMER_KEYS | {key: int for key in OPTIONAL_CUSTOMER_KEYS if key in record}
        return (
            record.keys() == keys.keys()
            and all(has_type(record[key], expected) for key, expected in keys.items())
            and re.fullmatch(r"\d{4}-\d{2}-\d{2}", record["birthDay"]) is not None
        )
    keys = READING_KEYS[source]
    return record.keys() == keys.keys() and all(has_type(record[key], expected) for key, expected in keys.items())


def current_records(customers: list[dict]) -> dict[str, dict]:
    """Each email's record with the latest lastUpdateDate."""
    current: dict[str, dict] = {}
    for record in customers:
        if record["email"] not in current or record["lastUpdateDate"] > current[record["email"]]["lastUpdateDate"]:
            current[record["email"]] = record
    return current


@pytest.fixture(scope="module")
def clean_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, generate.GeneratedLake]:
    lake = tmp_path_factory.mktemp("clean")
    return lake, generate_lake(lake)


@pytest.fixture(scope="module")
def clean(clean_lake) -> dict[str, list[dict]]:
    lake, _ = clean_lake
    return {source: records(lake, source) for source in SOURCES}


@pytest.fixture(scope="module")
def dirty_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, generate.GeneratedLake]:
    lake = tmp_path_factory.mktemp("dirty")
    return lake, generate_lake(lake, scale=0.2, dirt=True)


# --- Files ---------------------------------------------------------------------------------


def test_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path):
    first = generate_lake(tmp_path / "a", scale=0.1, seed=3, dirt=True)
    second = generate_lake(tmp_path / "b", scale=0.1, seed=3, dirt=True)
    other = generate_lake(tmp_path / "c", scale=0.1, seed=4, dirt=True)
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    assert first.records == second.records
    assert snapshot(tmp_path / "a").keys() == snapshot(tmp_path / "c").keys()
    assert snapshot(tmp_path / "a") != snapshot(tmp_path / "c")
    assert first.records != other.records


@pytest.mark.parametrize("fixture", ["clean_lake", "dirty_lake"])
def test_the_result_counts_the_lines_and_lists_the_files_on_disk(fixture, request):
    lake, result = request.getfixturevalue(fixture)
    assert set(result.records) == set(SOURCES)
    assert set(result.files) == {path for source in SOURCES for path in landing_files(lake, source)}
    assert len(result.files) == len(set(result.files))
    for source in SOURCES:
        contents = [path.read_bytes() for path in landing_files(lake, source)]
        assert all(content.endswith(b"\n") and b"\r" not in content for content in contents)
        assert result.records[source] == sum(content.count(b"\n") for content in contents)


def test_scale_1_writes_one_file_a_source_named_from_1(clean_lake):
    lake, _ = clean_lake
    for source in SOURCES:
        assert [path.name for path in landing_files(lake, source)] == [f"{source}-1.json"]


def test_files_hold_at_most_the_maximum_number_of_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(generate, "MAX_LINES_PER_FILE", 1_000)
    result = generate_lake(tmp_path, scale=0.1)
    count = math.ceil(result.records["accelerometer"] / 1_000)
    paths = [tmp_path / "accelerometer" / "landing" / f"accelerometer-{n}.json" for n in range(1, count + 1)]
    assert landing_files(tmp_path, "accelerometer") == sorted(paths)
    sizes = [len(path.read_text().split("\n")) - 1 for path in paths]
    assert sizes[:-1] == [1_000] * (count - 1)
    assert 0 < sizes[-1] <= 1_000


def test_refuses_a_landing_folder_that_holds_files(tmp_path):
    (tmp_path / "step_trainer" / "landing").mkdir(parents=True)
    (tmp_path / "step_trainer" / "landing" / "old.json").write_text("{}\n")
    with pytest.raises(ValueError, match="already holds files"):
        generate_lake(tmp_path, scale=0.1)
    assert not (tmp_path / "customer").exists()


def test_refuses_to_generate_twice_into_one_lake(tmp_path):
    generate_lake(tmp_path, scale=0.05)
    with pytest.raises(ValueError, match="already holds files"):
        generate_lake(tmp_path, scale=0.05)


@pytest.mark.parametrize("scale", [0, -1, float("nan"), float("inf")])
def test_rejects_a_scale_that_is_not_positive(tmp_path, scale):
    with pytest.raises(ValueError, match="scale"):
        generate_lake(tmp_path, scale=scale)
    assert not any(tmp_path.iterdir())


# --- Clean data ----------------------------------------------------------------------------


def test_scale_1_is_the_size_of_the_real_data_set(clean_lake):
    _, result = clean_lake
    assert 765 <= result.records["customer"] <= 1_150  # real: 956
    assert 65_000 <= result.records["accelerometer"] <= 97_500  # real: 81,273
    assert 23_000 <= result.records["step_trainer"] <= 34_500  # real: 28,680


def test_volumes_grow_with_the_scale(tmp_path, clean_lake):
    _, full = clean_lake
    tenth = generate_lake(tmp_path, scale=0.1).records
    for source in SOURCES:
        assert 0.07 <= tenth[source] / full.records[source] <= 0.13


def test_without_dirt_every_line_is_a_complete_record(clean_lake):
    lake, _ = clean_lake
    for source in SOURCES:
        assert all(is_valid(source, line) for line in lines(lake, source))


def test_values_look_like_the_devices(clean):
    assert all(150 <= reading["distanceFromObject"] <= 300 for reading in clean["step_trainer"])
    axis_values = {reading[axis] for reading in clean["accelerometer"] for axis in "xyz"}
    assert {-1.0, 0.0, 1.0} < axis_values
    assert all(-1.0 <= value <= 1.0 and round(value, 1) == value for value in axis_values)
    instants = [reading["timestamp"] for reading in clean["accelerometer"]]
    assert 1_655_000_000_000 < min(instants) < max(instants) < 1_665_000_000_000  # mid-2022


def test_customers_have_unique_emails_and_one_serial_number_each(clean):
    serials = defaultdict(set)
    for record in clean["customer"]:
        assert re.fullmatch(r"[A-Z][a-z]+\.[A-Z][a-z]+\d+@test\.com", record["email"])
        serials[record["email"]].add(record["serialNumber"])
    assert all(len(serial) == 1 for serial in serials.values())
    assert len({serial for (serial,) in serials.values()}) == len(serials)


def test_about_half_of_the_customers_consent(clean):
    current = current_records(clean["customer"]).values()
    share = sum(RESEARCH in record for record in current) / len(current)
    assert 0.4 <= share <= 0.6
    optional = Counter(key for record in clean["customer"] for key in OPTIONAL_CUSTOMER_KEYS if key in record)
    assert all(0 < optional[key] < len(clean["customer"]) for key in OPTIONAL_CUSTOMER_KEYS)


def test_some_customers_have_a_later_record_revoking_or_granting_consent(clean):
    history = defaultdict(list)
    for record in clean["customer"]:
        history[record["email"]].append(record)
    later = [sorted(records, key=lambda r: r["lastUpdateDate"]) for records in history.values() if len(records) > 1]
    assert 0.01 <= len(later) / len(history) <= 0.1
    assert all(len({r["lastUpdateDate"] for r in records}) == len(records) for records in later)
    assert any(RESEARCH in records[0] and RESEARCH not in records[-1] for records in later)  # revoked
    assert any(RESEARCH not in records[0] and RESEARCH in records[-1] for records in later)  # granted


def test_every_step_trainer_reading_has_phone_readings_at_the_same_instant(clean):
    owner = {record["serialNumber"]: record["email"] for record in clean["customer"]}
    phone = Counter((reading["user"], reading["timestamp"]) for reading in clean["accelerometer"])
    per_instant = [phone[owner[r["serialNumber"]], r["sensorReadingTime"]] for r in clean["step_trainer"]]
    assert all(1 <= count <= 6 for count in per_instant)
    assert set(per_instant) == {1, 2, 3, 4, 5, 6}
    readings = Counter((r["user"], r["timestamp"], r["x"], r["y"], r["z"]) for r in clean["accelerometer"])
    assert max(readings.values()) == 1  # the readings of an instant differ in x/y/z


def test_some_customers_have_phone_readings_only_and_some_no_readings(clean):
    owner = {record["serialNumber"]: record["email"] for record in clean["customer"]}
    emails = {record["email"] for record in clean["customer"]}
    with_phone = {reading["user"] for reading in clean["accelerometer"]}
    with_trainer = {owner[reading["serialNumber"]] for reading in clean["step_trainer"]}
    assert with_trainer < with_phone < emails
    assert len(with_phone - with_trainer) > 50
    assert len(emails - with_phone) > 100


def test_hundreds_of_instants_are_shared_by_two_customers(clean):
    serials = defaultdict(set)
    for reading in clean["step_trainer"]:
        serials[reading["sensorReadingTime"]].add(reading["serialNumber"])
    assert sum(len(owners) > 1 for owners in serials.values()) >= 100


def test_some_consenting_customers_have_readings_before_and_after_their_consent(clean):
    current = current_records(clean["customer"])
    consent = {email: record[RESEARCH] for email, record in current.items() if RESEARCH in record}
    instants = defaultdict(list)
    for reading in clean["accelerometer"]:
        instants[reading["user"]].append(reading["timestamp"])
    spans = {user: (min(times), max(times)) for user, times in instants.items()}
    split = [email for email, date in consent.items() if email in spans and spans[email][0] < date <= spans[email][1]]
    assert len(split) >= 30
    assert any(consent[email] in instants[email] for email in split)  # a reading exactly at consent
    assert any(email not in consent for email in spans)  # non-consenting customers have readings too


# --- Dirt ----------------------------------------------------------------------------------


def test_dirt_keeps_every_clean_line(tmp_path, dirty_lake):
    lake, _ = dirty_lake
    clean_lake = tmp_path / "clean"
    generate_lake(clean_lake, scale=0.2)
    for source in SOURCES:
        assert set(lines(clean_lake, source)) <= set(lines(lake, source))


def test_dirt_is_a_small_share_of_the_lines(dirty_lake):
    lake, _ = dirty_lake
    for source in SOURCES:
        source_lines = lines(lake, source)
        invalid = sum(not is_valid(source, line) for line in source_lines)
        assert 0.005 <= invalid / len(source_lines) <= 0.06, source  # customers: each kind at least once


@pytest.mark.parametrize("source", SOURCES)
def test_dirt_has_malformed_blank_and_repeated_lines(dirty_lake, source):
    lake, _ = dirty_lake
    source_lines = lines(lake, source)
    unparsable = [line for line in source_lines if line and parsed(line) is MALFORMED]
    assert "" in source_lines
    assert any(line.endswith("},") for line in unparsable)
    assert any(not line.endswith("}") and not line.endswith("},") for line in unparsable)  # cut short
    assert any(line and parsed(line) is not MALFORMED and not isinstance(parsed(line), dict) for line in source_lines)
    repeated_in_a_file = [
        line
        for path in landing_files(lake, source)
        for line, count in Counter(path.read_text().split("\n")).items()
        if count > 1 and line
    ]
    assert repeated_in_a_file


def test_dirty_customers(dirty_lake):
    lake, _ = dirty_lake
    customers = [record for record in map(parsed, lines(lake, "customer")) if isinstance(record, dict)]
    assert any("email" not in record for record in customers)
    assert any(isinstance(record.get("lastUpdateDate"), str) for record in customers)


def test_dirty_accelerometer_readings(dirty_lake):
    lake, _ = dirty_lake
    readings = [record for record in map(parsed, lines(lake, "accelerometer")) if isinstance(record, dict)]
    emails = {r.get("email") for r in map(parsed, lines(lake, "customer")) if isinstance(r, dict)}
    assert any("timestamp" not in record and "timeStamp" not in record for record in readings)
    assert any("timeStamp" in record and "timestamp" not in record for record in readings)
    assert any(isinstance(record.get("timestamp"), str) for record in readings)
    assert any(isinstance(record.get("x"), str) for record in readings)
    assert any(is_valid("accelerometer", json.dumps(record)) and record["user"] not in emails for record in readings)


def test_dirty_step_trainer_readings(dirty_lake):
    lake, _ = dirty_lake
    serials = {r.get("serialNumber") for r in map(parsed, lines(lake, "customer")) if isinstance(r, dict)}
    readings = [record for record in map(parsed, lines(lake, "step_trainer")) if isinstance(record, dict)]
    assert any("serialNumber" not in record for record in readings)
    assert any(isinstance(record.get("distanceFromObject"), bool) for record in readings)
    assert any(is_valid("step_trainer", json.dumps(r)) and r["serialNumber"] not in serials for r in readings)


@pytest.mark.parametrize("source", ["accelerometer", "step_trainer"])
def test_dirt_uploads_a_reading_file_twice(dirty_lake, source):
    lake, _ = dirty_lake
    contents = Counter(path.read_bytes() for path in landing_files(lake, source))
    assert sorted(contents.values()) == [1] * (len(contents) - 1) + [2]


def test_customer_files_are_not_uploaded_twice(dirty_lake):
    lake, _ = dirty_lake
    assert len(landing_files(lake, "customer")) == 1


# --- Output pinned across versions ---------------------------------------------------------


def digest(lake: Path) -> str:
    hashed = hashlib.sha256()
    for name, content in snapshot(lake).items():
        hashed.update(name.encode() + b"\0" + content)
    return hashed.hexdigest()


# Written by the generator before edges existed: a new option must not change what the old ones write.
@pytest.mark.parametrize("dirt, expected", [
    (False, "1879f00aa70208ff071a4313aaef964c306d920941236ad36863640d5a97ccd4"),
    (True, "bde813935e6963d6563a7ef85dca44fadd0cfb9d14a50f5005f1fa1e91063fb5"),
], ids=["clean", "dirty"])
def test_the_default_lakes_are_the_bytes_they_always_were(tmp_path, dirt, expected):
    generate_lake(tmp_path, scale=0.05, seed=7, dirt=dirt)
    assert digest(tmp_path) == expected


# --- Edges ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def edges_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = tmp_path_factory.mktemp("edges")
    generate_lake(lake, scale=0.05, seed=7, edges=True)
    return lake


@pytest.fixture(scope="module")
def edged(edges_lake) -> dict[str, list[dict]]:
    return {source: records(edges_lake, source) for source in SOURCES}


def test_edges_come_after_every_line_of_the_lake_without_them(tmp_path, edges_lake):
    generate_lake(tmp_path / "plain", scale=0.05, seed=7)
    for source in SOURCES:
        plain, edged_lines = lines(tmp_path / "plain", source), lines(edges_lake, source)
        assert edged_lines[: len(plain)] == plain and len(edged_lines) > len(plain), source
    second = generate_lake(tmp_path / "again", scale=0.05, seed=7, edges=True)
    assert snapshot(tmp_path / "again") == snapshot(edges_lake)
    assert all(is_valid(source, line) for source in SOURCES for line in lines(edges_lake, source))
    assert second.records == {source: len(lines(edges_lake, source)) for source in SOURCES}


def history(customers: list[dict]) -> dict[str, list[dict]]:
    by_email = defaultdict(list)
    for record in customers:
        by_email[record["email"]].append(record)
    return by_email


def readers(edged) -> tuple[set[str], set[str]]:
    """Emails with phone readings; serial numbers with trainer readings."""
    return {r["user"] for r in edged["accelerometer"]}, {r["serialNumber"] for r in edged["step_trainer"]}


def test_edges_tie_records_of_one_customer_at_one_instant(edged):
    with_phone, _ = readers(edged)
    ties = [records for records in history(edged["customer"]).values()
            if len(records) == 2 and records[0]["lastUpdateDate"] == records[1]["lastUpdateDate"]]
    consenting = [sum(RESEARCH in record for record in records)
                  for records in ties if records[0]["email"] in with_phone]
    assert sorted(consenting) == [1, 2]  # one tie with a record without consent, one where both consent


def test_edges_give_serial_numbers_to_several_customers(edged):
    with_phone, with_trainer = readers(edged)
    current = current_records(edged["customer"])
    carriers = defaultdict(list)
    for email, record in current.items():
        carriers[record["serialNumber"]].append((RESEARCH in record, email in with_phone))
    shared = sorted(sorted(owners) for serial, owners in carriers.items() if len(owners) > 1 and serial in with_trainer)
    # Two consenting customers with phone readings; one such customer with one consenting and one refusing idler.
    assert shared == [[(False, False), (True, False), (True, True)], [(True, True), (True, True)]]


def test_edges_have_a_trainer_without_a_phone_and_a_phone_that_misses_instants(edged):
    with_phone, _ = readers(edged)
    current = current_records(edged["customer"])
    owner = {record["serialNumber"]: email for email, record in current.items()}
    phone_instants = {(r["user"], r["timestamp"]) for r in edged["accelerometer"]}
    unpaired = Counter(owner[r["serialNumber"]] for r in edged["step_trainer"] if r["serialNumber"] in owner
                       and (owner[r["serialNumber"]], r["sensorReadingTime"]) not in phone_instants)
    consenting = {email for email, record in current.items() if RESEARCH in record}
    assert any(email not in with_phone for email in unpaired.keys() & consenting)  # no phone at all
    assert any(email in with_phone for email in unpaired.keys() & consenting)  # a phone that misses instants


def test_edges_have_a_trainer_reading_twice_and_phone_readings_differing_in_one_axis(edged):
    distances = defaultdict(set)
    for r in edged["step_trainer"]:
        distances[r["serialNumber"], r["sensorReadingTime"]].add(r["distanceFromObject"])
    assert any(len(found) == 2 for found in distances.values())
    at_instant = defaultdict(list)
    for r in edged["accelerometer"]:
        at_instant[r["user"], r["timestamp"]].append((r["x"], r["y"], r["z"]))
    differing = set()
    for readings in at_instant.values():
        for a in readings:
            for b in readings:
                axes = [axis for axis, u, v in zip("xyz", a, b, strict=True) if u != v]
                if len(axes) == 1:
                    differing.add(axes[0])
    assert differing == {"x", "y", "z"}


def test_edges_repeat_lines_exactly_without_dirt(edges_lake):
    for source in ("accelerometer", "step_trainer"):
        assert max(Counter(lines(edges_lake, source)).values()) == 2, source


def test_edges_have_a_customer_changing_trainer_and_one_consenting_after_every_reading(edged):
    current = current_records(edged["customer"])
    serials = {email: {r["serialNumber"] for r in records} for email, records in history(edged["customer"]).items()}
    _, with_trainer = readers(edged)
    changed = [email for email, found in serials.items() if len(found) == 2
               and RESEARCH in current[email] and (found - {current[email]["serialNumber"]}) <= with_trainer]
    assert len(changed) == 1
    last_reading = defaultdict(int)
    for r in edged["accelerometer"]:
        last_reading[r["user"]] = max(last_reading[r["user"]], r["timestamp"])
    late = [email for email, record in current.items() if RESEARCH in record and email in last_reading
            and record[RESEARCH] > last_reading[email]]
    assert len(late) == 1
