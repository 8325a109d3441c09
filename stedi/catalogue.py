"""The pipeline's catalogue: sources, their landing schemas, the stages and the tables.

This is the one home of these facts. Everything else reads them from here:
the engines, the checks, the command line, the benchmarks, the code
generator (which writes the Glue job script and the state machine) and the
Lambda functions. The stage order is not listed anywhere: it follows from
what each stage reads and writes.

Each stage's own logic is one SQL statement per output, in stedi/sql/spark/
(see `Stage.statements`). Standard library only: the check Lambda ships this
module and the Glue job script embeds what it needs of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class Field(NamedTuple):
    name: str
    type: str  # a Spark SQL type: STRING, BIGINT, INT, DOUBLE
    required: bool


@dataclass(frozen=True)
class Source:
    """An upload stream: JSON lines under <lake>/<name>/landing/, typed by `fields`, never inferred."""

    name: str
    fields: tuple[Field, ...]

    @property
    def landing_folder(self) -> str:
        """Where its uploads land, relative to the lake (a folder, or a prefix of the S3 bucket)."""
        return f"{self.name}/landing"

    @property
    def reject_reasons(self) -> tuple[str, ...]:
        """Every reason the landing stage can give for rejecting one of the source's lines."""
        return (INVALID_ENCODING, MALFORMED_JSON, *(missing_field(f.name) for f in self.fields if f.required),
                *(wrong_type(f.name) for f in self.fields))

    @property
    def raw_table(self) -> str:
        """Every line of the source's landing files, one row each (what the landing checks count)."""
        return f"{self.name}_raw"

    @property
    def landing_table(self) -> str:
        return f"{self.name}_landing"

    @property
    def rejected_table(self) -> str:
        return f"{self.name}_rejected"

    @property
    def drift_table(self) -> str:
        """Per key outside the schema (schema drift), the lines that carry it and a file that has one."""
        return f"{self.name}_drift"


def _fields(*spec: tuple[str, str, bool]) -> tuple[Field, ...]:
    return tuple(Field(*field) for field in spec)


LANDING_SOURCES: tuple[Source, ...] = (
    Source("customer", _fields(
        ("customerName", "STRING", False),
        ("email", "STRING", True),
        ("phone", "STRING", False),
        ("birthDay", "STRING", False),
        ("serialNumber", "STRING", True),
        ("registrationDate", "BIGINT", False),
        ("lastUpdateDate", "BIGINT", True),
        ("shareWithResearchAsOfDate", "BIGINT", False),
        ("shareWithPublicAsOfDate", "BIGINT", False),
        ("shareWithFriendsAsOfDate", "BIGINT", False),
    )),
    Source("accelerometer", _fields(
        ("user", "STRING", True),
        ("timestamp", "BIGINT", True),
        ("x", "DOUBLE", True),
        ("y", "DOUBLE", True),
        ("z", "DOUBLE", True),
    )),
    Source("step_trainer", _fields(
        ("sensorReadingTime", "BIGINT", True),
        ("serialNumber", "STRING", True),
        ("distanceFromObject", "INT", True),
    )),
)
SOURCE: dict[str, Source] = {source.name: source for source in LANDING_SOURCES}
SOURCES: tuple[str, ...] = tuple(SOURCE)

# Why a landing line is rejected. The first problem found, in this order, is the reason given:
# the line's bytes, then its JSON, then each field in schema order.
INVALID_ENCODING = "invalid_encoding"  # the line's bytes are not UTF-8 (kept as Latin-1 text: see README)
MALFORMED_JSON = "malformed_json"  # the line is not one JSON object, within the limits stedi.landing sets


# What a blank line holds: nothing but these characters, JSON's whitespace (a line
# feed ends a line) and the byte-order mark that some editors put at a file's start.
# A blank line is no record: it is neither typed nor rejected, and not counted.
# Nothing else is blank: a vertical tab, a form feed, 0x1C-0x1F, a no-break space,
# U+3000 make a line that is rejected. Every one of them is ASCII but the mark, so
# a line is blank or not whatever it is decoded as, and the same on every engine.
BLANK_CHARACTERS = (" ", "\t", "\r", "\ufeff")


def _sql_character(character: str) -> str:
    """One character as SQL that Spark, DuckDB and Trino read alike: a control character as chr(),
    any other as itself (Spark's chr() goes no further than 255: the byte-order mark is written as is)."""
    return f"chr({ord(character)})" if ord(character) < 32 else f"'{character}'"


def blank_characters_sql() -> str:
    """SQL (Spark, DuckDB, Trino): the string of BLANK_CHARACTERS, as trim(BOTH ... FROM line) takes it."""
    return "concat(" + ", ".join(_sql_character(c) for c in BLANK_CHARACTERS) + ")"


def not_blank(line: str) -> str:
    """SQL (Spark, DuckDB, Trino): `line` holds more than BLANK_CHARACTERS (NULL, for a NULL line).

    Byte for byte: each replace() removes one character wherever it stands, so the
    test means the same in each engine, even over bytes that are not UTF-8.
    The first test settles nearly every line: it opens an object.
    """
    stripped = line
    for character in BLANK_CHARACTERS:
        stripped = f"replace({stripped}, {_sql_character(character)}, '')"
    return f"({line} LIKE '{{%' OR {stripped} <> '')"


def missing_field(field: str) -> str:
    """A required key is absent or null (or, for a string, blank)."""
    return f"missing_field:{field}"


def wrong_type(field: str) -> str:
    """A value does not fit the field's type."""
    return f"wrong_type:{field}"


# How an engine splits the rows of a stage's statement into its tables:
TYPED = "typed"  # landing: rows with a `reason` -> <source>_rejected, the rest -> <source>_landing;
#                  the keys outside the schema, counted per key -> <source>_drift
FILTERING = "filtering"  # rows with a `filtered_by` rule -> counted per rule in <stage>_filtered, the rest -> <stage>
PLAIN = "plain"  # every row -> <stage>


@dataclass(frozen=True)
class Stage:
    """One Glue job, one local engine step, one named state in the state machine."""

    name: str
    summary: str  # one line, for the Glue job, the state machine and the README
    kind: str  # TYPED, FILTERING or PLAIN
    reads: tuple[str, ...]  # tables written by earlier stages (or a source's raw lines, for landing)
    rules: tuple[str, ...] = ()  # a FILTERING stage's named rules, each a value of `filtered_by`
    records_from: str | None = None  # a FILTERING stage: the table whose records it keeps or filters, one for one

    @property
    def filtered_table(self) -> str | None:
        """Per rule, how many input records the stage left out; None for a stage that filters nothing."""
        return f"{self.name}_filtered" if self.kind == FILTERING else None

    @property
    def drift_tables(self) -> tuple[str, ...]:
        """For the landing stage, per source, the keys its lines carry outside the schema."""
        return tuple(source.drift_table for source in self.sources)

    @property
    def tables(self) -> tuple[str, ...]:
        """Every table the stage writes."""
        if self.kind == TYPED:
            return tuple(table for source in self.sources
                         for table in (source.landing_table, source.rejected_table, source.drift_table))
        return (self.name, self.filtered_table) if self.filtered_table else (self.name,)

    @property
    def record_tables(self) -> tuple[str, ...]:
        """The tables that hold records (every table but the per-rule and per-key counts): what row counts count."""
        return tuple(table for table in self.tables if table != self.filtered_table and table not in self.drift_tables)

    @property
    def sources(self) -> tuple[Source, ...]:
        """For the landing stage, the sources it types."""
        return tuple(SOURCE[raw.removesuffix("_raw")] for raw in self.reads) if self.kind == TYPED else ()

    @property
    def drift_statement(self) -> str | None:
        """For the landing stage, the SQL file that counts, per key outside a source's schema, the lines
        carrying it: it reads each landing statement's rows (stedi.runner.TYPED_LINES)."""
        return "landing_drift" if self.kind == TYPED else None

    @property
    def statements(self) -> tuple[str, ...]:
        """The names of the stage's SQL files: one per source for landing, else one named after the stage."""
        if self.kind == TYPED:
            return tuple(f"landing_{source.name}" for source in self.sources)
        return (self.name,)


# In no particular order: `ordered` derives the order from what each stage reads.
_STAGES = (
    Stage("customer_curated", "trusted customers who have trusted accelerometer data", FILTERING,
          reads=("customer_trusted", "accelerometer_trusted"),
          rules=("no_trusted_readings",), records_from="customer_trusted"),
    Stage("machine_learning_curated",
          "each trusted step trainer reading with its owner's phone readings at the same instant, "
          "without personal data", PLAIN,
          reads=("customer_curated", "step_trainer_trusted", "accelerometer_trusted")),
    Stage("landing", "type the raw uploads, rejecting each line that does not fit its schema", TYPED,
          reads=tuple(source.raw_table for source in LANDING_SOURCES)),
    Stage("step_trainer_trusted", "step trainer readings of curated customers, within the consent scope",
          FILTERING, reads=("customer_landing", "customer_trusted", "customer_curated", "step_trainer_landing"),
          rules=("no_parent", "no_consent", "no_trusted_readings", "ambiguous_owner", "before_consent",
                 "duplicate"), records_from="step_trainer_landing"),
    Stage("customer_trusted", "the current record of each customer who consented to research", FILTERING,
          reads=("customer_landing",), rules=("superseded", "no_consent"), records_from="customer_landing"),
    Stage("accelerometer_trusted", "phone readings of consenting customers, within the consent scope", FILTERING,
          reads=("customer_landing", "customer_trusted", "accelerometer_landing"),
          rules=("no_parent", "no_consent", "before_consent", "duplicate"), records_from="accelerometer_landing"),
)


class CatalogueError(Exception):
    """The stages cannot be ordered: a table nobody writes, or a cycle."""


def ordered(stages: tuple[Stage, ...], external: set[str]) -> tuple[Stage, ...]:
    """The stages in an order where each runs after every stage whose tables it reads.

    `external` are the tables no stage writes (the raw landing lines). Ties are
    broken by name, so the order never depends on how the stages are listed.
    """
    writer = {table: stage.name for stage in stages for table in stage.tables}
    for stage in stages:
        if (stage.kind == FILTERING) != (stage.records_from in stage.reads):
            raise CatalogueError(f"stage {stage.name}: a filtering stage names the table it filters, one it reads")
        unknown = [table for table in stage.reads if table not in writer and table not in external]
        if unknown:
            raise CatalogueError(f"stage {stage.name} reads {', '.join(unknown)}, which no stage writes")
    done: list[Stage] = []
    waiting = sorted(stages, key=lambda stage: stage.name)
    while waiting:
        finished = {stage.name for stage in done}
        ready = [stage for stage in waiting
                 if all(table in external or writer[table] in finished for table in stage.reads)]
        if not ready:
            raise CatalogueError("stages read each other's tables in a cycle: " + ", ".join(s.name for s in waiting))
        done.append(ready[0])
        waiting.remove(ready[0])
    return tuple(done)


STAGE_LIST: tuple[Stage, ...] = ordered(_STAGES, external={source.raw_table for source in LANDING_SOURCES})
STAGE: dict[str, Stage] = {stage.name: stage for stage in STAGE_LIST}
STAGES: tuple[str, ...] = tuple(STAGE)
TABLES: tuple[str, ...] = tuple(table for stage in STAGE_LIST for table in stage.tables)
FILTERED_TABLES: tuple[str, ...] = tuple(stage.filtered_table for stage in STAGE_LIST if stage.filtered_table)
RECORD_TABLES: tuple[str, ...] = tuple(table for stage in STAGE_LIST for table in stage.record_tables)
DRIFT_TABLES: tuple[str, ...] = tuple(table for stage in STAGE_LIST for table in stage.drift_tables)

# Consent scope `reading` keeps readings taken at or after the customer's
# consent date; `customer` keeps every reading of a consenting customer.
# A stage's SQL refers to the run's scope as :consent_scope.
CONSENT_SCOPES = ("reading", "customer")
DEFAULT_CONSENT_SCOPE = "reading"


def with_consent_scope(sql: str, consent_scope: str) -> str:
    """`sql` with :consent_scope as a string literal, for an engine without named parameters."""
    if consent_scope not in CONSENT_SCOPES:
        raise ValueError(f"consent scope {consent_scope!r}: choose one of {', '.join(CONSENT_SCOPES)}")
    return sql.replace(":consent_scope", f"'{consent_scope}'")
