"""The committed files that `make generate` writes are what it would write now."""

from stedi import codegen


def test_every_generated_file_is_current():
    stale = [str(path.relative_to(codegen.REPO)) for path in codegen.stale_files()]
    assert stale == [], "run `make generate` and commit the result"


def test_a_changed_statement_makes_its_translation_stale(monkeypatch):
    spark_sql = codegen.sql_text("customer_curated", "spark")
    monkeypatch.setattr(codegen, "sql_text", lambda name, dialect: (
        spark_sql.replace("'no_trusted_readings'", "'no_readings'") if (name, dialect) == ("customer_curated", "spark")
        else codegen.SQL.joinpath(dialect, f"{name}.sql").read_text()))
    stale = {path.name for path in codegen.stale_files()}
    assert stale == {"customer_curated.sql", "stedi_stage.py"}
