"""The pipeline's stages, in order, and the tables each one writes.

This is the one home of the stage order: the local run, the checks and the
AWS state machine (tested against it) all follow it. Each stage is one Glue
job whose script is ``glue_scripts/<stage>.py``. The module is standard
library only, because the check Lambda ships it too.
"""

SOURCES = ("customer", "accelerometer", "step_trainer")

# Stage name -> tables it writes, in the order the stages run. A stage named
# after a table writes that table plus "<table>_filtered": one row per named
# rule with the number of input records the rule left out.
STAGE_TABLES: dict[str, tuple[str, ...]] = {
    "landing": tuple(f"{source}_{kind}" for source in SOURCES for kind in ("landing", "rejected")),
    "customer_trusted": ("customer_trusted", "customer_trusted_filtered"),
    "accelerometer_trusted": ("accelerometer_trusted", "accelerometer_trusted_filtered"),
    "customer_curated": ("customer_curated", "customer_curated_filtered"),
    "step_trainer_trusted": ("step_trainer_trusted", "step_trainer_trusted_filtered"),
    "machine_learning_curated": ("machine_learning_curated",),
}

STAGES: tuple[str, ...] = tuple(STAGE_TABLES)
TABLES: tuple[str, ...] = tuple(table for tables in STAGE_TABLES.values() for table in tables)
CONSENT_SCOPES = ("reading", "customer")
DEFAULT_CONSENT_SCOPE = "reading"


def raw_table(source: str) -> str:
    """The one-column table of raw landing lines of a source (used by checks)."""
    return f"{source}_raw"


def filtered_table(stage: str) -> str | None:
    """The per-rule filtered counts a stage writes, or None for a stage that filters nothing."""
    name = f"{stage}_filtered"
    return name if name in STAGE_TABLES[stage] else None
