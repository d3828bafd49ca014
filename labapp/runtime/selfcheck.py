"""Self-checks for the labs' exercises: look at the real database, then say
"done" or give the first hint that still applies.

    from labapp import selfcheck as check
    check.verdict("Exercise 1", [
        (check.has_column(lab02, "contacts", "phone"), "add a `phone` column to Contact"),
        (check.version(lab02) == "0004", "run `flask db upgrade`"),
    ])

Each verdict a lab's kernel prints is also kept beside its workspace
(`workspaces/lab07.selfchecks.json`, once `lab.setup` has run; outside the
workspace, so that a lab's own `git status` does not see it): `flask room
progress` reads it for the checks it cannot run again itself, those that judge
what the kernel measured while the lab's app servers ran.
"""
import json
import subprocess
from pathlib import Path

from labapp import settings
from labapp.server import processes

_record = None   # this kernel's record file, once a lab's setup cell has run
_listeners = []  # called with (title, hint or None) by every verdict


def listen(callback):
    """Call `callback(title, hint)` on every verdict from now on (hint None: done)."""
    _listeners.append(callback)


def record_file(workspace):
    """Where the verdicts of the lab working in `workspace` are kept: {title: {"state", "hint"}}."""
    workspace = Path(workspace)
    return workspace.with_name(workspace.name + ".selfchecks.json")


def record_into(workspace):
    """Keep every verdict from now on beside `workspace` (a lab's setup cell)."""
    global _record
    _record = record_file(workspace)


def _keep(title, hint):
    found = recorded(_record)
    found[title] = {"state": "hint" if hint else "passed", "hint": hint}
    _record.write_text(json.dumps(found, indent=1))


def recorded(path):
    """The verdicts kept in the record file `path` ({} if none)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def has_database(lab):
    """Is there a database for `lab` (a lab's sibling the lab makes itself, lab11.sibling("_staging"))?"""
    from labapp.server import database  # the server's catalog: only for a check that asks

    return database.database_exists(lab.url)


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


def flask(*args):
    """`flask ARGS` in this folder, as a `!flask` cell runs it, for a check to read:
    a CompletedProcess (.returncode; .stdout holds its output, stderr merged). In a
    room's checking process (`flask room progress`) it is forked from that process,
    which has imported the app: a refresh runs one for each learner."""
    if settings.self_checks_only():
        return processes.flask_forked(args)
    proc = subprocess.run(["flask", *map(str, args)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    proc.output = proc.stdout
    return proc


def verdict(title, conditions):
    """Print "done" when every condition holds, else the first failing hint."""
    hint = next((hint for ok, hint in conditions if not ok), None)
    for listener in list(_listeners):
        listener(title, hint)
    if _record and _record.parent.is_dir():  # (a test may remove the workspaces)
        _keep(title, hint)
    if hint:
        print(f"❌ {title}: not yet. Hint: {hint}")
    else:
        print(f"✅ {title}: done.")
