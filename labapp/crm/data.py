"""DATA folders: one CSV file per table, loaded and dumped in foreign-key order.

CSV because a person can read and edit it: a header row of column names,
then one row per record; an empty cell means NULL.
"""
import csv
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from labapp.errors import LabError
from labapp.server.database import short_reason

SKIPPED_TABLES = {"alembic_version"}


def _tables(conn):
    """The database's own tables, parents before children (not the models':
    production's schema may differ from the code you have checked out)."""
    meta = sa.MetaData()
    meta.reflect(bind=conn)
    return [t for t in meta.sorted_tables if t.name not in SKIPPED_TABLES]


def read_csv(path):
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f, strict=True))
    except UnicodeDecodeError:
        raise LabError(f"{path.name}: not UTF-8 text") from None
    except csv.Error as exc:
        raise LabError(f"{path.name}: malformed CSV ({exc})") from None
    if not rows or not any(rows[0]):
        raise LabError(f"{path.name}: empty file, expected a header row of column names")
    header, records = rows[0], rows[1:]
    for lineno, record in enumerate(records, start=2):
        if len(record) != len(header):
            raise LabError(
                f"{path.name} line {lineno}: {len(record)} values for {len(header)} columns"
            )
    return header, records


def load(conn, data_dir):
    """Insert every DATA file's rows through `conn`, inside the caller's
    transaction. Raises LabError naming the file and line on any problem.
    Returns {table: row count}."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise LabError(f"no DATA folder at {data_dir}: make one with `flask dumpdata {data_dir}`")
    files = {p.stem: p for p in sorted(data_dir.glob("*.csv"))}
    if not files:
        raise LabError(f"no .csv files in {data_dir}: expected one file per table")
    tables = {t.name: t for t in _tables(conn)}
    unknown = sorted(set(files) - set(tables))
    if unknown:
        raise LabError(
            f"{files[unknown[0]].name}: no table {unknown[0]!r} in the database "
            f"(tables: {', '.join(sorted(tables)) or 'none, run `flask db upgrade` first'})"
        )
    counts = {}
    for table in (t for t in _tables(conn) if t.name in files):
        path = files[table.name]
        header, records = read_csv(path)
        missing = [c for c in header if c not in table.c]
        if missing:
            raise LabError(f"{path.name}: no column {missing[0]!r} in table {table.name!r}")
        insert = table.insert()
        for lineno, record in enumerate(records, start=2):
            row = {col: (value if value != "" else None) for col, value in zip(header, record, strict=True)}
            try:
                conn.execute(insert, row)
            except sa.exc.DBAPIError as exc:
                raise LabError(f"{path.name} line {lineno}: {short_reason(exc)}") from None
        counts[table.name] = len(records)
    _reset_sequences(conn, [tables[name] for name in counts])
    return counts


def _reset_sequences(conn, tables):
    """Rows loaded with explicit ids leave serial sequences behind; move them on."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        for col in table.primary_key.columns:
            seq = conn.execute(
                sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": col.name}
            ).scalar()
            if seq:
                conn.execute(
                    sa.text(
                        f"SELECT setval(:s, COALESCE((SELECT max({col.name}) FROM {table.name}), 0) + 1, false)"
                    ),
                    {"s": seq},
                )


def _cell(value):
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "name"):  # a Python Enum
        return value.name
    return str(value)


def dump(conn, data_dir):
    """Write one CSV per table, rows ordered by primary key. Returns {table: rows}."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for table in _tables(conn):
        order = list(table.primary_key.columns) or list(table.c)
        rows = conn.execute(sa.select(table).order_by(*order)).all()
        with (data_dir / f"{table.name}.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(table.c.keys())
            writer.writerows([_cell(v) for v in row] for row in rows)
        counts[table.name] = len(rows)
    return counts
