"""The Glue scripts agree with the stage definitions the runner, the checks and the state machine use."""

import pytest

from stedi.checks import CHECKS
from stedi.engines import glue_script
from stedi.stages import SOURCES, STAGE_TABLES, STAGES


@pytest.mark.parametrize("stage", STAGES)
def test_each_script_writes_the_tables_of_its_stage(stage):
    assert glue_script(stage).WRITES == STAGE_TABLES[stage]


@pytest.mark.parametrize("stage", [s for s in STAGES if s != "landing"])
def test_each_script_reads_only_tables_written_before_it(stage):
    earlier = {table for before in STAGES[: STAGES.index(stage)] for table in STAGE_TABLES[before]}
    assert set(glue_script(stage).READS) <= earlier


def test_landing_types_every_source():
    assert tuple(glue_script("landing").LANDING_SCHEMAS) == SOURCES


def test_every_stage_has_checks_beyond_row_counts():
    for stage in STAGES:
        assert [c for c in CHECKS[stage] if c.name != "row_count"], stage
