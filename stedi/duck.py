"""DuckDB views over the lake's files, shared by the DuckDB engine, the checks and `stedi query`."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import duckdb


def quote(value: str | Path) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def file_list(files: Iterable[Path]) -> str:
    return "[" + ", ".join(quote(f) for f in files) + "]"


def raw_lines_sql(files: Iterable[Path]) -> str:
    """Each line of the files as it is, with its file: no JSON parsing, no quoting, no type sniffing."""
    return (
        f"SELECT line, filename AS source_file FROM read_csv({file_list(files)}, "
        "columns = {'line': 'VARCHAR'}, header = false, delim = '\\0', quote = '', escape = '', "
        "auto_detect = false, filename = true, strict_mode = false)"
    )


def parquet_sql(table_dir: Path) -> str:
    return f"SELECT * FROM read_parquet({quote(table_dir / '*.parquet')})"


def view_raw(con: duckdb.DuckDBPyConnection, view: str, files: Iterable[Path]) -> None:
    """`view`(line, source_file): every line of the files."""
    con.execute(f"CREATE OR REPLACE VIEW {view} AS {raw_lines_sql(files)}")


def view_tables(con: duckdb.DuckDBPyConnection, staging: Path, tables: Iterable[str]) -> None:
    for table in tables:
        con.execute(f"CREATE OR REPLACE VIEW {table} AS {parquet_sql(staging / table)}")


def write_rows(path: Path, columns: dict[str, str], rows: list[dict]) -> None:
    """Write rows (dicts keyed by column) as one Parquet file with the given DuckDB column types."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t ({', '.join(f'{name} {sql_type}' for name, sql_type in columns.items())})")
    if rows:
        con.executemany(f"INSERT INTO t VALUES ({', '.join('?' for _ in columns)})",
                        [[row[name] for name in columns] for row in rows])
    temporary = path.with_suffix(".tmp")
    con.execute(f"COPY t TO {quote(temporary)} (FORMAT parquet)")
    con.close()
    temporary.replace(path)  # readers of the history never see a half-written file


def scalar(con: duckdb.DuckDBPyConnection, sql: str):
    row = con.execute(sql).fetchone()
    return None if row is None else row[0]
