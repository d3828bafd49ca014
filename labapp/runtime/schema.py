"""What a database's schema really is, read from PostgreSQL's catalog, and how
two of them differ: lab 11 proves a baseline revision with it.

    from labapp import schema
    schema.show(lab11)                 # tables, columns, constraints, indexes, as named
    schema.diff(lab11, new)            # "identical: ..." or a unified diff of the two

Everything is listed with the name the server holds (contacts_pkey,
uq_contacts_email): a baseline that builds the same tables under other names is
not the same schema. alembic_version is left out: it records history, it is not
the schema.
"""
import difflib

COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE c.relkind = 'r' AND c.relname <> 'alembic_version'
ORDER BY c.relname, a.attnum
"""
CONSTRAINTS = """
SELECT c.relname, k.conname, pg_get_constraintdef(k.oid)
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
WHERE c.relname <> 'alembic_version' AND k.contype IN ('p', 'u', 'f', 'c', 'x')
ORDER BY c.relname, k.conname
"""
# indexes of their own (those behind a primary key or unique constraint are listed there)
INDEXES = """
SELECT t.relname, i.relname, regexp_replace(pg_get_indexdef(x.indexrelid), '^.* USING ', '')
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema()
WHERE t.relname <> 'alembic_version'
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)
ORDER BY t.relname, i.relname
"""


def describe(lab):
    """The schema of `lab`'s database, one line per column, constraint and index."""
    tables = {}
    for table, column, data_type, not_null, default in lab.sql(COLUMNS):
        line = f"  {column} {data_type}{' NOT NULL' if not_null else ''}"
        tables.setdefault(table, []).append(line + (f" DEFAULT {default}" if default else ""))
    for table, name, definition in lab.sql(CONSTRAINTS):
        tables.setdefault(table, []).append(f"  constraint {name} {definition}")
    for table, name, definition in lab.sql(INDEXES):
        tables.setdefault(table, []).append(f"  index {name} {definition}")
    lines = []
    for table in sorted(tables):
        lines += [f"table {table}", *tables[table]]
    return lines


def show(lab):
    """Print the schema of `lab`'s database."""
    print("\n".join(describe(lab)) or "(no tables)")


def _counts(lines):
    kinds = {"table": 0, "column": 0, "constraint": 0, "index": 0}
    for line in lines:
        word = line.split()[0]
        kinds[word if word in kinds else "column"] += 1
    return ", ".join(f"{n} {kind}{'' if n == 1 else 'es' if kind == 'index' else 's'}"
                     for kind, n in kinds.items())


def diff(a, b):
    """Print whether the schemas of the databases of labs `a` and `b` are the same
    (names included); if not, what differs, as a unified diff from `a` to `b`."""
    left, right = describe(a), describe(b)
    if left == right:
        print(f"identical: {_counts(left)}")
    else:
        print("\n".join(difflib.unified_diff(left, right, a.database, b.database, n=1,
                                             lineterm="")))
