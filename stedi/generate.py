"""A synthetic STEDI landing zone: customers, their phones and their step trainers.

``generate_lake(lake)`` writes JSON-lines uploads, one object per line, to

    <lake>/customer/landing/customer-<n>.json
    <lake>/accelerometer/landing/accelerometer-<n>.json
    <lake>/step_trainer/landing/step_trainer-<n>.json

with at most 100,000 lines a file (n counts from 1). The same (scale, seed,
dirt, edges) always writes byte-identical files.

Shape of the data. Scale 1 is about the size of the real starter data set
(~960 customer records, ~80,000 accelerometer and ~28,000 step trainer
readings); every volume grows linearly with the scale.

* Customers. Each has a unique email ``First.Last<n>@test.com`` and one step
  trainer (``serialNumber``). About half consent to research: their record
  has ``shareWithResearchAsOfDate``; for the others the key is absent. The
  public and friends sharing dates are optional keys as well. A few percent
  of customers have a second record with a later ``lastUpdateDate`` that
  revokes consent (the key is absent again), grants it, or only changes the
  phone number.
* Readings. Most customers train: at each instant t of a step trainer
  session the trainer records one reading and the phone 1 to 6 readings
  (different x/y/z) with exactly the timestamp t; the phone also records a
  few instants before the trainer starts. Some customers only carry the
  phone (accelerometer readings, no step trainer ones), some have no
  readings at all. Readings start at 2022-06-18 and spread over two months.
* Shared instants. A few sessions run on the clock of an earlier session of
  another customer (a class training together), so hundreds of instants
  carry readings of two customers.
* Consent over time. Most consenting customers consent before their first
  reading, but some consent, revoke or grant consent at the first trainer
  reading of one of their sessions: they have readings before the date,
  after it, and one exactly at it.

With ``dirt=True`` about 2% more lines of each source are dirt, each kind at
least once per source (see ``DIRT``): malformed lines, records missing a
required key, values of the wrong type, repeated lines, blank lines and
readings of no known customer; and the last accelerometer and step trainer
files are uploaded twice. The clean lines are the same as without dirt.

With ``edges=True`` a few more customers (one set of ``EDGES`` per unit of
scale, at least one) stand at the edges of the rules, shapes the customers
above never take: two records of one customer updated at the same instant,
a serial number carried by two curated customers (and one carried by a
curated customer and two who are not), a step trainer without a phone, a
phone that misses instants of its trainer, a trainer that reads twice at one
instant, phone readings differing in one axis only, exact repeats in clean
data, a customer who changes step trainer and one who consents only after
their last reading. They come after every other customer: the lines written
without edges are written first, as they were (with dirt, the clean ones).
"""

from __future__ import annotations

import datetime
import itertools
import json
import math
import random
import shutil
import uuid
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, TextIO

from stedi.catalogue import SOURCES

MAX_LINES_PER_FILE = 100_000
CUSTOMERS_PER_SCALE = 930

BASE_MS = 1_655_564_000_000  # 2022-06-18, where the real readings are
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
SESSION_DAYS = 60  # readings spread over this many days from BASE_MS

# What a customer does with the devices, with its share of customers.
TRAINS, PHONE_ONLY, IDLE = "trains", "phone only", "idle"
ACTIVITIES = (TRAINS,) * 60 + (PHONE_ONLY,) * 15 + (IDLE,) * 25

RESEARCH_CONSENT = 0.5  # customers whose (first) record consents
CONSENT_AT_TURN = 0.3  # of consenting customers with readings: consent amid them
SECOND_RECORD = 0.04  # customers with a later record
CHANGES_CONSENT = 0.5  # of second records: revoke or grant; the rest change the phone
SHARED_CLOCK = 0.03  # trainer sessions on the clock of another customer's session
RECENT_CLOCKS = 64  # how many recent sessions a shared clock is picked from

# Phone readings per instant, 1 to 6, repeated by weight (mean ~2.4).
READINGS_PER_INSTANT = (1,) * 32 + (2,) * 30 + (3,) * 20 + (4,) * 9 + (5,) * 5 + (6,) * 4
# Axis values, repeated by weight: half are -1.0, 0.0 or 1.0, half other tenths.
AXIS_VALUES = ("-1.0", "0.0", "1.0") * 6 + tuple(
    f"{tenths / 10:.1f}" for tenths in range(-9, 10) if tenths != 0
)
# Every x/y/z of a reading as JSON members, so a line is one string format.
ORIENTATIONS = tuple(f'"x":{x},"y":{y},"z":{z}' for x in AXIS_VALUES for y in AXIS_VALUES for z in AXIS_VALUES)

FIRST_NAMES = (
    "Santosh", "Frank", "Jerry", "Sarah", "Lyn", "Chris", "Danny", "Jacob", "Spencer", "Ben",
    "Larry", "Sean", "Eric", "John", "Steph", "Liz", "Senthil", "Angie", "Gail", "Jeff",
    "Bobby", "Kate", "Trevor", "Lisa", "Marcus", "Ava", "Raj", "Mei", "Olga", "Pedro",
)  # fmt: skip
LAST_NAMES = (
    "Clayton", "Doshi", "Lincoln", "Jones", "Ahmed", "Davis", "Mitra", "Hansen", "Gonzalez", "Khan",
    "Aristotle", "Wu", "Smith", "Lopez", "Habschied", "Phillips", "Anandh", "Huey", "Staples", "Stark",
    "Armstrong", "Kim", "Okafor", "Silva", "Novak", "Rossi", "Tanaka", "Singh", "Meyer", "Young",
)  # fmt: skip


@dataclass(frozen=True)
class GeneratedLake:
    """What generate_lake wrote: lines per source (every line, dirt included) and the files."""

    records: dict[str, int]
    files: tuple[Path, ...]


def generate_lake(lake: Path, *, scale: float = 1.0, seed: int = 7, dirt: bool = False,
                  edges: bool = False) -> GeneratedLake:
    """Write a synthetic STEDI landing zone into `lake` (see the module docstring).

    Refuses a landing folder that already holds files: generated files must
    never mix with earlier uploads.
    """
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    folders = {source: Path(lake) / source / "landing" for source in SOURCES}
    for folder in folders.values():
        if folder.is_dir() and any(folder.iterdir()):
            raise ValueError(f"{folder} already holds files; generate into an empty landing folder")

    sinks = {source: _Sink(folder, source) for source, folder in folders.items()}
    writers: dict[str, _Sink | _DirtySink] = dict(sinks)
    if dirt:
        # A generator of its own, so the clean lines stay those of dirt=False.
        dirt_rng = random.Random(f"dirt-{seed}")
        writers = {source: _DirtySink(sink, DIRT[source], dirt_rng) for source, sink in sinks.items()}
    count = max(1, round(CUSTOMERS_PER_SCALE * scale))
    try:
        _write_customers(random.Random(seed), count, writers)
        if edges:
            # A generator of its own, after every other customer: the lines of edges=False stay as they are.
            _write_edges(random.Random(f"edges-{seed}"), count, max(1, round(scale)), writers)
    finally:
        for writer in writers.values():
            writer.close()
    if dirt:
        sinks["accelerometer"].upload_last_file_again()
        sinks["step_trainer"].upload_last_file_again()
    return GeneratedLake(
        records={source: sink.lines for source, sink in sinks.items()},
        files=tuple(path for sink in sinks.values() for path in sink.files),
    )


# --- Customers and their readings ---------------------------------------------------------


@dataclass(frozen=True)
class _Customer:
    name: str
    email: str
    phone: str
    birth_day: str
    serial: str
    registered: int  # epoch ms


@dataclass(frozen=True)
class _Session:
    """Instants start + i * interval, i from -warmup (phone only) to readings - 1."""

    start: int  # epoch ms of the first trainer reading
    interval: int  # ms
    warmup: int
    readings: int
    trainer: bool  # False: the phone alone records

    @property
    def first_instant(self) -> int:
        return self.start - self.warmup * self.interval

    @property
    def last_instant(self) -> int:
        return self.start + (self.readings - 1) * self.interval


def _write_customers(rng: random.Random, count: int, writers: dict[str, _Sink | _DirtySink]) -> None:
    """Write `count` customers, each with their readings, streaming."""
    later_records = []  # a few percent of the customers: kept for the end of the file
    recent_clocks: deque[tuple[int, int]] = deque(maxlen=RECENT_CLOCKS)
    for index in range(count):
        customer = _new_customer(rng, index)
        sessions = _plan_sessions(rng, rng.choice(ACTIVITIES), recent_clocks)
        first, later = _customer_lines(rng, customer, sessions)
        writers["customer"].write([first])
        if later:
            later_records.append(later)
        for session in sessions:
            phone, trainer = _session_lines(rng, session, customer)
            writers["accelerometer"].write(phone)
            writers["step_trainer"].write(trainer)
        recent_clocks.extend((session.start, session.interval) for session in sessions if session.trainer)
    writers["customer"].write(later_records)


def _new_customer(rng: random.Random, index: int) -> _Customer:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    birth_day = datetime.date(1930, 1, 1) + datetime.timedelta(days=rng.randrange(27_000))
    return _Customer(
        name=f"{first} {last}",
        email=f"{first}.{last}{index + 1}@test.com",  # the number makes it unique
        phone=f"801555{rng.randrange(10_000):04d}",
        birth_day=birth_day.isoformat(),
        serial=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        registered=BASE_MS - rng.randrange(DAY_MS, 730 * DAY_MS),
    )


def _plan_sessions(rng: random.Random, activity: str, recent_clocks: deque[tuple[int, int]]) -> list[_Session]:
    """The customer's sessions, in time order, that never overlap one another."""
    if activity == IDLE:
        return []
    trainer = activity == TRAINS
    days = sorted(rng.sample(range(SESSION_DAYS), rng.randint(1, 3) if trainer else rng.randint(1, 2)))
    sessions = [
        _Session(
            start=BASE_MS + day * DAY_MS + rng.randrange(HOUR_MS, DAY_MS - HOUR_MS),
            interval=rng.randrange(400, 1201),
            warmup=rng.randint(0, 3) if trainer else 0,
            readings=rng.randint(15, 35),
            trainer=trainer,
        )
        for day in days
    ]
    if trainer:
        for i, session in enumerate(sessions):
            if recent_clocks and rng.random() < SHARED_CLOCK:
                start, interval = rng.choice(recent_clocks)
                shared = replace(session, start=start, interval=interval)
                # Two readings of one trainer at one instant would be a duplicate, not a session.
                if not any(_overlap(shared, other) for other in sessions if other is not session):
                    sessions[i] = shared
    return sorted(sessions, key=lambda session: session.start)


def _overlap(a: _Session, b: _Session) -> bool:
    return a.first_instant <= b.last_instant and b.first_instant <= a.last_instant


def _turning_point(rng: random.Random, sessions: list[_Session]) -> int:
    """When the customer's consent changes: amid their readings, so some come before it.

    It is the first trainer reading of a session other than the first, or the
    middle instant of a lone session; for a customer without readings, a day
    in the weeks the others train.
    """
    if len(sessions) > 1:
        return rng.choice(sessions[1:]).start
    if sessions:
        return sessions[0].start + sessions[0].readings // 2 * sessions[0].interval
    return BASE_MS + rng.randrange(DAY_MS, SESSION_DAYS * DAY_MS)


def _customer_lines(rng: random.Random, customer: _Customer, sessions: list[_Session]) -> tuple[str, str | None]:
    """The customer's record, and for a few customers a later one."""
    turn = _turning_point(rng, sessions)
    consents = rng.random() < RESEARCH_CONSENT
    # Most consent when they register; some only once they already have readings.
    consents_at_turn = consents and bool(sessions) and rng.random() < CONSENT_AT_TURN
    updated = turn if consents_at_turn else rng.randrange(customer.registered, BASE_MS)
    research = updated if consents else None
    public = rng.randint(customer.registered, updated) if rng.random() < 0.5 else None
    friends = rng.randint(customer.registered, updated) if rng.random() < 0.4 else None
    first = _customer_line(customer, customer.phone, updated, research, public, friends)
    if consents_at_turn or rng.random() >= SECOND_RECORD:
        return first, None
    phone = customer.phone
    if rng.random() < CHANGES_CONSENT:
        research = None if consents else turn  # revoked, or granted
    else:
        phone = f"801555{rng.randrange(10_000):04d}"
    return first, _customer_line(customer, phone, turn, research, public, friends)


def _customer_line(
    customer: _Customer, phone: str, updated: int, research: int | None, public: int | None, friends: int | None
) -> str:
    record = {
        "customerName": customer.name,
        "email": customer.email,
        "phone": phone,
        "birthDay": customer.birth_day,
        "serialNumber": customer.serial,
        "registrationDate": customer.registered,
        "lastUpdateDate": updated,
    }
    # Absent, never null: that is how the apps upload a customer who did not share.
    for key, value in (
        ("shareWithResearchAsOfDate", research),
        ("shareWithPublicAsOfDate", public),
        ("shareWithFriendsAsOfDate", friends),
    ):
        if value is not None:
            record[key] = value
    return _dumps(record) + "\n"


def _session_lines(rng: random.Random, session: _Session, customer: _Customer) -> tuple[list[str], list[str]]:
    """The phone lines and the trainer lines of one session."""
    phone_lines: list[str] = []
    trainer_lines: list[str] = []
    phone_start = f'{{"user":"{customer.email}","timestamp":'
    trainer_end = f',"serialNumber":"{customer.serial}","distanceFromObject":'
    distance = rng.randint(150, 300)
    for i in range(-session.warmup, session.readings):
        instant = session.start + i * session.interval
        for xyz in _orientations(rng, rng.choice(READINGS_PER_INSTANT)):
            phone_lines.append(f"{phone_start}{instant},{xyz}}}\n")
        if session.trainer and i >= 0:
            distance = min(300, max(150, distance + rng.randint(-12, 12)))  # the user moves a little
            trainer_lines.append(f'{{"sensorReadingTime":{instant}{trainer_end}{distance}}}\n')
    return phone_lines, trainer_lines


def _orientations(rng: random.Random, count: int) -> list[str]:
    """`count` different x/y/z: the phone's readings at one instant."""
    picked = rng.choices(ORIENTATIONS, k=count)
    while len(set(picked)) < count:  # rare: draw again
        picked = rng.choices(ORIENTATIONS, k=count)
    return picked


def _dumps(record: object) -> str:
    return json.dumps(record, separators=(",", ":"))


# --- Edges ---------------------------------------------------------------------------------

# An edge: from new customers (each call of `new` makes one), their customer, phone and trainer lines.
Lines = tuple[list[str], list[str], list[str]]
Edge = Callable[[random.Random, Callable[[], _Customer]], Lines]


def _write_edges(rng: random.Random, first_index: int, sets: int, writers: dict[str, _Sink | _DirtySink]) -> None:
    """Write `sets` sets of EDGES, numbering their customers on from `first_index`."""
    indexes = itertools.count(first_index)

    def new() -> _Customer:
        return _new_customer(rng, next(indexes))

    for _ in range(sets):
        for edge in EDGES:
            customers, phone, trainer = edge(rng, new)
            writers["customer"].write(customers)
            writers["accelerometer"].write(phone)
            writers["step_trainer"].write(trainer)


def _trains(rng: random.Random, customer: _Customer) -> tuple[list[_Session], list[str], list[str]]:
    """The customer's training sessions (alone, on no shared clock), phone lines and trainer lines."""
    sessions = _plan_sessions(rng, TRAINS, deque())
    phone: list[str] = []
    trainer: list[str] = []
    for session in sessions:
        session_phone, session_trainer = _session_lines(rng, session, customer)
        phone += session_phone
        trainer += session_trainer
    return sessions, phone, trainer


def _record(rng: random.Random, customer: _Customer, *, consents: bool = True, phone: str | None = None,
            updated: int | None = None, research: int | None = None) -> str:
    """A customer line: by default updated, and consenting, at a date before any reading."""
    updated = rng.randrange(customer.registered, BASE_MS) if updated is None else updated
    research = (updated if research is None else research) if consents else None
    return _customer_line(customer, phone or customer.phone, updated, research, None, None)


def _tie_without_consent(rng: random.Random, new: Callable[[], _Customer]) -> Lines:
    """Two records updated at the same instant, one without consent: it wins, the customer does not consent."""
    customer = new()
    _, phone, trainer = _trains(rng, customer)
    updated = rng.randrange(customer.registered, BASE_MS)
    records = [_record(rng, customer, updated=updated), _record(rng, customer, updated=updated, consents=False)]
    rng.shuffle(records)
    return records, phone, trainer


def _tie_both_consent(rng: random.Random, new: Callable[[], _Customer]) -> Lines:
    """Two consenting records updated at the same instant, with other phones: one is current, one superseded."""
    customer = new()
    _, phone, trainer = _trains(rng, customer)
    updated = rng.randrange(customer.registered, BASE_MS)
    other = f"801555{(int(customer.phone[-4:]) + 1) % 10_000:04d}"
    records = [_record(rng, customer, updated=updated), _record(rng, customer, updated=updated, phone=other)]
    return records, phone, trainer


def _serial_of_two_curated(rng: random.Random, new: Callable[[], _Customer]) -> Lines:
    """Two consenting customers with phone readings carry one serial number: it has no single owner."""
    first = new()
    second = replace(new(), serial=first.serial)
    lines: Lines = ([], [], [])
    for customer in (first, second):
        _, phone, trainer = _trains(rng, customer)
        lines[0].append(_record(rng, customer))
        lines[1].extend(phone)
        lines[2].extend(trainer)
    return lines


def _serial_of_one_curated(rng: random.Random, new: Callable[[], _Customer]) -> Lines:
    """One serial number on three customers of whom one is curated: a consenting customer without
    readings and one who does not consent carry it too. The readings are the curated customer's."""
    owner = new()
    _, phone, trainer = _trains(rng, owner)
    idle, refusing = replace(new(), serial=owner.serial), replace(new(), serial=owner.serial)
    records = [_record(rng, owner), _record(rng, idle), _record(rng, refusing, consents=False)]
    return records, phone, trainer


def _trainer_without_phone(rng: random.Random, new: Callable[[], _Customer]) -> Lines:
    """A consenting customer whose step trainer records and whose phone never does: not curated."""
    customer = new()
    _, _, trainer = _trains(rng, customer)
    return [_record(rng, customer)], [], trainer


def _phone_misses_instants(rng: random.Random, new: Callable[[], _Customer]) -> Lines:
    """The phone records nothing at every fourth trainer instant: those trainer readings have no pair."""
    customer = new()
    sessions, phone, trainer = _trains(rng, customer)
    missed = {session.start + i * session.interval for session in sessions for i in range(0, session.readings, 4)}
    phone = [line for line in phone if json.loads(line)["timestamp"] not in missed]
    return [_record(rng, customer)], phone, trainer


def _trainer_reads_twice(rng: random.Random, new: Callable[[], _Customer]) -> Lines:
    """At every fifth instant the trainer also records a distance 1 cm off: two readings, both kept."""
    customer = new()
    _, phone, trainer = _trains(rng, customer)
    again = []
    for line in trainer[::5]:
        record = json.loads(line)
        record["distanceFromObject"] += 1 if record["distanceFromObject"] < 300 else -1
        again.append(_dumps(record) + "\n")
    return [_record(rng, customer)], phone, trainer + again


def _readings_differing_in_one_axis(rng: random.Random, new: Callable[[], _Customer]) -> Lines:
    """Next to one phone reading, three more at its instant that differ from it in x only, y only, z only."""
    customer = new()
    _, phone, trainer = _trains(rng, customer)
    record = json.loads(phone[len(phone) // 2])
    taken = {tuple(json.loads(line).values()) for line in phone}
    for axis in "xyz":
        choices = [float(value) for value in sorted(set(AXIS_VALUES))
                   if tuple({**record, axis: float(value)}.values()) not in taken]
        variant = {**record, axis: rng.choice(choices)}
        taken.add(tuple(variant.values()))
        phone.append(_dumps(variant) + "\n")
    return [_record(rng, customer)], phone, trainer


def _exact_repeats(rng: random.Random, new: Callable[[], _Customer]) -> Lines:
    """A phone reading and a trainer reading uploaded twice, in clean data: each counts once."""
    customer = new()
    _, phone, trainer = _trains(rng, customer)
    return [_record(rng, customer)], phone + [rng.choice(phone)], trainer + [rng.choice(trainer)]


def _new_step_trainer(rng: random.Random, new: Callable[[], _Customer]) -> Lines:
    """After the last reading, a consenting customer's new record carries a new serial number:
    the old trainer's readings have no consenting owner any more."""
    customer = new()
    sessions, phone, trainer = _trains(rng, customer)
    consented = rng.randrange(customer.registered, BASE_MS)
    replaced = replace(customer, serial=str(uuid.UUID(int=rng.getrandbits(128), version=4)))
    records = [_record(rng, customer, updated=consented),
               _record(rng, replaced, updated=sessions[-1].last_instant + HOUR_MS, research=consented)]
    return records, phone, trainer


def _consent_after_every_reading(rng: random.Random, new: Callable[[], _Customer]) -> Lines:
    """A customer who consents an hour after their last reading: with consent scope `reading`, nothing is kept."""
    customer = new()
    sessions, phone, trainer = _trains(rng, customer)
    return [_record(rng, customer, updated=sessions[-1].last_instant + HOUR_MS)], phone, trainer


EDGES: tuple[Edge, ...] = (
    _tie_without_consent, _tie_both_consent, _serial_of_two_curated, _serial_of_one_curated,
    _trainer_without_phone, _phone_misses_instants, _trainer_reads_twice, _readings_differing_in_one_axis,
    _exact_repeats, _new_step_trainer, _consent_after_every_reading,
)


# --- Files ---------------------------------------------------------------------------------


class _Sink:
    """The files of one source: <source>-<n>.json, at most MAX_LINES_PER_FILE lines each."""

    def __init__(self, folder: Path, source: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._folder = folder
        self._source = source
        self.files: list[Path] = []
        self.lines = 0
        self._lines_in_file = 0
        # Opened at once, so every source has a file, if only an empty one.
        self._file = self._open_next()

    def _open_next(self) -> TextIO:
        path = self._folder / f"{self._source}-{len(self.files) + 1}.json"
        self.files.append(path)
        self._lines_in_file = 0
        return path.open("w", encoding="utf-8", newline="\n")

    def write(self, lines: list[str]) -> None:
        """Write lines that each end in a newline, going on in a new file when one is full."""
        start = 0
        while start < len(lines):
            if self._lines_in_file == MAX_LINES_PER_FILE:
                self._file.close()
                self._file = self._open_next()
            chunk = lines[start : start + MAX_LINES_PER_FILE - self._lines_in_file]
            self._file.writelines(chunk)
            self._lines_in_file += len(chunk)
            self.lines += len(chunk)
            start += len(chunk)

    def close(self) -> None:
        self._file.close()

    def upload_last_file_again(self) -> None:
        """Copy the (closed) last file under the next name: the same upload, twice."""
        copy = self._folder / f"{self._source}-{len(self.files) + 1}.json"
        shutil.copyfile(self.files[-1], copy)
        self.files.append(copy)
        self.lines += self._lines_in_file


# --- Dirt ----------------------------------------------------------------------------------

# A kind of dirt: makes one dirt line from a clean line (without its newline).
Dirt = Callable[[random.Random, str], str]

DIRT_RATE = 0.02  # dirt lines per clean line
NOT_OBJECTS = ('"hello"', "[1,2]", "42", "null")


class _DirtySink:
    """Passes clean lines on to a sink and slips in a dirt line every ~1/DIRT_RATE lines.

    A dirt line is made from the clean line just before it. Kinds are picked
    at random; any kind not picked by the end is added then.
    """

    def __init__(self, sink: _Sink, kinds: tuple[Dirt, ...], rng: random.Random) -> None:
        self._sink = sink
        self._kinds = kinds
        self._rng = rng
        self._unused = list(kinds)
        self._last: str | None = None
        self._until_dirt = self._gap()

    def _gap(self) -> int:
        return 1 + int(self._rng.expovariate(DIRT_RATE))  # at least 1: a dirt line follows a clean one

    def write(self, lines: list[str]) -> None:
        start = 0
        while len(lines) - start > self._until_dirt:
            end = start + self._until_dirt
            self._sink.write(lines[start:end])
            if end > start:
                self._last = lines[end - 1]
            self._add_dirt(self._rng.choice(self._kinds))
            start = end
            self._until_dirt = self._gap()
        self._sink.write(lines[start:])
        self._until_dirt -= len(lines) - start
        if lines:
            self._last = lines[-1]

    def _add_dirt(self, kind: Dirt) -> None:
        assert self._last is not None
        self._sink.write([kind(self._rng, self._last.rstrip("\n")) + "\n"])
        if kind in self._unused:
            self._unused.remove(kind)

    def close(self) -> None:
        if self._last is not None:  # a source without clean lines stays without dirt
            for kind in list(self._unused):
                self._add_dirt(kind)
        self._sink.close()


def _truncated(rng: random.Random, line: str) -> str:
    return line[: rng.randrange(1, len(line))]  # an object cut short is never valid JSON


def _trailing_comma(rng: random.Random, line: str) -> str:
    return line + ","


def _not_an_object(rng: random.Random, line: str) -> str:
    return rng.choice(NOT_OBJECTS)


def _repeated(rng: random.Random, line: str) -> str:
    return line


def _blank(rng: random.Random, line: str) -> str:
    return ""


def _without(key: str) -> Dirt:
    def dirt(rng: random.Random, line: str) -> str:
        record = json.loads(line)
        del record[key]
        return _dumps(record)

    return dirt


def _renamed(key: str, new_key: str) -> Dirt:
    def dirt(rng: random.Random, line: str) -> str:
        return _dumps({(new_key if k == key else k): v for k, v in json.loads(line).items()})

    return dirt


def _with(key: str, value: Callable[[random.Random], object]) -> Dirt:
    def dirt(rng: random.Random, line: str) -> str:
        return _dumps(json.loads(line) | {key: value(rng)})

    return dirt


def _unknown_email(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}@test.com"  # customer emails carry a number


def _unknown_serial(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# Any upload can hold malformed, blank and repeated lines; each source also
# gets records missing a required key, values of a wrong type and, for the
# readings, records of no known customer.
COMMON_DIRT = (_truncated, _trailing_comma, _not_an_object, _repeated, _blank)
DIRT: dict[str, tuple[Dirt, ...]] = {
    "customer": (
        *COMMON_DIRT,
        _without("email"),
        _with("lastUpdateDate", lambda rng: "2022-01-01"),
    ),
    "accelerometer": (
        *COMMON_DIRT,
        _without("timestamp"),
        _renamed("timestamp", "timeStamp"),
        _with("timestamp", lambda rng: "yesterday"),
        _with("x", lambda rng: "abc"),
        _with("user", _unknown_email),
    ),
    "step_trainer": (
        *COMMON_DIRT,
        _without("serialNumber"),
        _with("distanceFromObject", lambda rng: True),
        _with("serialNumber", _unknown_serial),
    ),
}
