"""The catalogue: the stage order follows from what each stage reads, and each stage's SQL keeps to its declaration."""

import pytest
import sqlglot
from sqlglot import exp

from stedi.catalogue import (
    FILTERING,
    LANDING_SOURCES,
    STAGE,
    STAGE_LIST,
    STAGES,
    TABLES,
    CatalogueError,
    Stage,
    ordered,
    with_consent_scope,
)
from stedi.sql import sql_text

RAW = {source.raw_table for source in LANDING_SOURCES}


def test_the_order_runs_every_stage_after_the_stages_it_reads():
    assert STAGES == ("landing", "customer_trusted", "accelerometer_trusted", "customer_curated",
                      "step_trainer_trusted", "machine_learning_curated")
    for position, stage in enumerate(STAGE_LIST):
        written_before = {table for earlier in STAGE_LIST[:position] for table in earlier.tables}
        assert set(stage.reads) <= written_before | RAW, stage.name


def test_the_order_does_not_depend_on_how_the_stages_are_listed():
    assert ordered(tuple(reversed(STAGE_LIST)), RAW) == STAGE_LIST
    assert ordered(tuple(sorted(STAGE_LIST, key=lambda s: s.name)), RAW) == STAGE_LIST


def test_a_stage_reading_a_table_nobody_writes_is_refused():
    orphan = Stage("orphan", "reads a table nobody writes", FILTERING, reads=("customer_gold",), rules=("x",),
                   records_from="customer_gold")
    with pytest.raises(CatalogueError, match="orphan reads customer_gold, which no stage writes"):
        ordered((*STAGE_LIST, orphan), RAW)


def test_stages_reading_each_other_are_refused():
    first = Stage("first", "", FILTERING, reads=("second",), rules=("x",), records_from="second")
    second = Stage("second", "", FILTERING, reads=("first",), rules=("x",), records_from="first")
    with pytest.raises(CatalogueError, match="cycle: first, second"):
        ordered((first, second), RAW)


def test_a_filtering_stage_must_name_the_table_it_filters_among_those_it_reads():
    vague = Stage("vague", "", FILTERING, reads=("customer_landing",), rules=("x",), records_from="customer_trusted")
    with pytest.raises(CatalogueError, match="stage vague: a filtering stage names the table it filters"):
        ordered((*STAGE_LIST, vague), RAW)


def test_every_table_has_one_writer():
    assert len(TABLES) == len(set(TABLES)) == 18


def tables_read(sql: str) -> set[str]:
    tree = sqlglot.parse_one(sql, read="spark")
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    return {table.name for table in tree.find_all(exp.Table)} - ctes


@pytest.mark.parametrize("stage", STAGES)
def test_each_statement_reads_exactly_what_its_stage_declares(stage):
    definition = STAGE[stage]
    read = set().union(*(tables_read(sql_text(name, "spark")) for name in definition.statements))
    assert read == set(definition.reads)


@pytest.mark.parametrize("stage", [stage.name for stage in STAGE_LIST if stage.kind == FILTERING])
def test_each_filtering_statement_names_exactly_its_stage_rules(stage):
    tree = sqlglot.parse_one(sql_text(stage, "spark"), read="spark")
    # Every string the statement holds, but for the consent scopes it compares with, is a rule it gives.
    named = {literal.this for literal in tree.find_all(exp.Literal) if literal.is_string} - {"reading", "customer"}
    assert named == set(STAGE[stage].rules)


def test_the_consent_scope_becomes_a_literal_and_nothing_else_is_accepted():
    assert with_consent_scope("WHERE :consent_scope = 'reading'", "customer") == "WHERE 'customer' = 'reading'"
    with pytest.raises(ValueError, match="consent scope 'everything'"):
        with_consent_scope("SELECT 1", "everything")

