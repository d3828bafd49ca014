"""Self-checks for the labs' exercises: look at the real database, then say
"done" or give the first hint that still applies.

    from labapp import selfcheck as check
    check.verdict("Exercise 1", [
        (check.has_column(lab02, "contacts", "phone"), "add a `phone` column to Contact"),
        (check.version(lab02) == "0004", "run `flask db upgrade`"),
    ])
"""


def columns(lab, table):
    """{column: data type} of `table` in the lab's database ({} if no table)."""
    rows = lab.sql(
        "SELECT column_name, CASE WHEN data_type = 'USER-DEFINED' THEN udt_name ELSE data_type END"
        " FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = :table ORDER BY ordinal_position",
        table=table,
    )
    return dict(rows)


def has_column(lab, table, column, data_type=None):
    found = columns(lab, table).get(column)
    return found is not None and (data_type is None or found == data_type)


def has_table(lab, table):
    return bool(columns(lab, table))


def enum_labels(lab, type_name):
    """The labels of PostgreSQL enum type `type_name`, in order ([] if none)."""
    rows = lab.sql(
        "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid"
        " WHERE t.typname = :name ORDER BY e.enumsortorder",
        name=type_name,
    )
    return [label for (label,) in rows]


def row_count(lab, table):
    if not has_table(lab, table):
        return None
    return lab.sql(f'SELECT count(*) FROM "{table}"')[0][0]


def version(lab):
    """The revision in alembic_version (None before the first upgrade)."""
    if not has_table(lab, "alembic_version"):
        return None
    rows = lab.sql("SELECT version_num FROM alembic_version ORDER BY 1")
    return ", ".join(v for (v,) in rows) or None


def verdict(title, conditions):
    """Print "done" when every condition holds, else the first failing hint."""
    for ok, hint in conditions:
        if not ok:
            print(f"❌ {title}: not yet. Hint: {hint}")
            return
    print(f"✅ {title}: done.")
