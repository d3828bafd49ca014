"""The lock trace: what each statement of a real migration locked, how long the
lock was held, and which of the app's reads and writes it blocked.

    with locktrace.Tracer(db.engine, "upgrade head") as tracer:
        flask_migrate.upgrade()          # anything that runs on the engine
    print(tracer.trace.table()); print(tracer.trace.verdict())

(`flask trace upgrade` does that for any Flask-Migrate project: labapp.commands.trace.)

Everything is measured on the server while the migration runs as it always
does (same env.py, same transactions), with SQLAlchemy events on the engine:

* after each statement, inside the migration's own transaction and on its own
  connection (a raw DBAPI cursor, so no event fires again), the migration asks
  `pg_locks WHERE pid = pg_backend_pid() AND granted`: the rows that are new
  since the previous statement are that statement's locks, held until its
  transaction's COMMIT or ROLLBACK (the `begin`/`commit`/`rollback` events).
  Shown: locks on tables (not their indexes, TOAST or the catalogs) and on
  types (`type dealcurrency`; a table's own row type is left out);
* `pg_relation_filenode` of every table before and after the statement: a new
  file means the statement rewrote the table (TRUNCATE gives one too);
* a statement outside a transaction (`autocommit_block`, transaction `auto`)
  runs in a one-statement transaction of its own, which is what autocommit
  gives it anyway, so that its locks can be asked for before its COMMIT lets
  them go. Those that PostgreSQL refuses in a transaction (CREATE INDEX
  CONCURRENTLY, VACUUM, ...) run as they are: their locks are what the watcher
  saw while they ran;
* a second connection, the watcher (application_name `locktrace`), polls
  `pg_locks WHERE pid = <the migration's>` every few ms: an ungranted row is a
  wait;
* the migration's session is named `migration` in pg_stat_activity while the
  trace runs (its previous name comes back when the pool takes it back).

What a lock blocks is the one thing looked up, in PostgreSQL's lock conflict
table (CONFLICTS, from "Explicit Locking" in its docs; tests/test_locktrace.py
proves it against a real server): the app's reads take ACCESS SHARE, its
writes (INSERT, UPDATE, DELETE) ROW EXCLUSIVE. A lock is held from its
statement's start (a request that waits already queues the app behind it).
A table created in the same transaction blocks nobody: no one else sees it yet.

Text output shows durations only as BUCKETS; the objects keep exact seconds
(`table(exact=True)`). A scan's time still straddles a bucket's edge from one
machine to the next, so what a notebook stores is the steady view,
`table(times=False)` (`flask trace upgrade --no-times`): instead of times, how
far each lock was held ("this statement", or "to COMMIT, through #4"), and
only the waits of at least STEADY_WAIT seconds (a lab makes those long on
purpose; the app's own millisecond transactions come and go), and only the
attempt that got through: an env.py that retries after a lock timeout (lab 07's)
runs the migration again, and how many attempts gave up depends on the app's
traffic that moment (`Trace.steady`; the other views show every attempt). Every
time is a `time.monotonic()` reading, system-wide on Linux, macOS and Windows:
another process's measurements share the timeline. `save`/`load`: JSON.
"""
import contextlib
import json
import math
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, field, replace

import sqlalchemy as sa

from labapp.errors import LabError

# Durations as text: (upper limit in seconds, label), the first that fits.
BUCKETS = ((0.1, "< 0.1 s"), (1.0, "0.1–1 s"), (math.inf, "≥ 1 s"))

# Table-level lock modes, weakest first, as PostgreSQL's docs name them.
MODES = ("ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE",
         "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE")
_PG_MODES = {"".join(word.title() for word in mode.split()) + "Lock": mode for mode in MODES}

# PostgreSQL's lock conflict table ("Conflicting Lock Modes"): mode -> the modes it conflicts with.
CONFLICTS = {
    "ACCESS SHARE": {"ACCESS EXCLUSIVE"},
    "ROW SHARE": {"EXCLUSIVE", "ACCESS EXCLUSIVE"},
    "ROW EXCLUSIVE": {"SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"},
    "SHARE UPDATE EXCLUSIVE": {"SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE",
                               "EXCLUSIVE", "ACCESS EXCLUSIVE"},
    "SHARE": {"ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE",
              "ACCESS EXCLUSIVE"},
    "SHARE ROW EXCLUSIVE": {"ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE",
                            "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"},
    "EXCLUSIVE": {"ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE",
                  "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"},
    "ACCESS EXCLUSIVE": set(MODES),
}
READ, WRITE = "ACCESS SHARE", "ROW EXCLUSIVE"  # what the app's SELECT / INSERT, UPDATE, DELETE take

POLL = 0.005  # seconds between the watcher's looks at pg_locks
STEADY_WAIT = 0.1  # the steady view shows waits this long or longer
LOCK_TIMEOUT = "lock timeout"  # in PostgreSQL's message: "canceling statement due to lock timeout"
FORMAT = "labapp.live.locktrace/1"
SQL_WIDTH = 60

# Tables and types a migration can lock, by oid: user schemas only (pg_catalog,
# pg_toast, temporary schemas and information_schema left out). Types: not a
# table's row type, not an array type.
_OBJECTS = r"""
SELECT 'table', c.oid, n.nspname, c.relname, pg_relation_filenode(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm')
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
UNION ALL
SELECT 'type', t.oid, n.nspname, t.typname, NULL
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_class r ON r.oid = t.typrelid
WHERE t.typcategory <> 'A' AND (t.typrelid = 0 OR r.relkind = 'c')
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
"""
# The session's own granted locks on relations and types (the pg_locks view
# itself is a catalog relation: filtered out with the catalogs, by oid).
_OWN_LOCKS = """
SELECT CASE WHEN locktype = 'relation' THEN 'table' ELSE 'type' END,
       CASE WHEN locktype = 'relation' THEN relation ELSE objid END, mode
FROM pg_locks
WHERE pid = pg_backend_pid() AND granted
  AND (locktype = 'relation' OR (locktype = 'object' AND classid = 'pg_type'::regclass))
"""
# The watcher's look at the migration's session: locks on relations and types,
# and any lock it waits for, with the sessions it waits behind.
_WATCH = """
SELECT l.pid, l.locktype, l.relation,
       CASE WHEN l.locktype = 'object' AND l.classid = 'pg_type'::regclass THEN l.objid END,
       l.mode, l.granted,
       CASE WHEN NOT l.granted THEN ARRAY(
           SELECT coalesce(nullif(a.application_name, ''), 'pid ' || a.pid)
           FROM pg_stat_activity a WHERE a.pid = ANY(pg_blocking_pids(l.pid)) ORDER BY 1) END
FROM pg_locks l
WHERE l.pid = ANY(%s)
  AND (NOT l.granted OR l.locktype = 'relation'
       OR (l.locktype = 'object' AND l.classid = 'pg_type'::regclass))
"""
# Statements PostgreSQL refuses inside a transaction block: traced as they run, by the watcher
_NO_TRANSACTION = re.compile(
    r"\bCONCURRENTLY\b|^\s*(VACUUM|CREATE\s+DATABASE|DROP\s+DATABASE|ALTER\s+SYSTEM|"
    r"CREATE\s+TABLESPACE|DROP\s+TABLESPACE|REINDEX\s+(SYSTEM|DATABASE)|"
    r"BEGIN|START|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE\s+TRANSACTION)\b",
    re.IGNORECASE)
# Alembic's own statements: on its version table, and its catalog queries (has_table)
_BOOKKEEPING = r"\b{table}\b|^\s*SELECT\s+pg_catalog\."


def bucket(seconds):
    """The BUCKETS label of a duration."""
    return next(label for limit, label in BUCKETS if seconds < limit)


def duration(seconds, exact=False):
    return f"{seconds:.3f} s" if exact else bucket(seconds)


def blocks(mode):
    """Which of the app's operations a lock of `mode` on a table blocks:
    a subset of ("reads", "writes"), from CONFLICTS."""
    return tuple(op for op, taken in (("reads", READ), ("writes", WRITE))
                 if taken in CONFLICTS[mode])


def short(sql, width=SQL_WIDTH):
    """A statement on one line, at most `width` characters."""
    text = " ".join(sql.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def _strength(mode):
    return MODES.index(mode) if mode in MODES else len(MODES)


# -- what a trace holds ------------------------------------------------------------

@dataclass
class Lock:
    """One (relation, mode) a statement took, and when it was let go."""
    kind: str            # "table" or "type"
    name: str            # the table or type name (schema-qualified outside the current schema)
    mode: str            # "ACCESS EXCLUSIVE", ...
    start: float         # its statement's start
    end: float = None    # its transaction's COMMIT/ROLLBACK; a statement outside one: its end
    new: bool = False    # created in the same transaction: nobody else sees it yet
    seen_by: str = "session"  # "session" (asked after the statement) or "watcher"
    granted: float = None  # the end of the watcher's first look that saw it granted: held by then

    @property
    def relation(self):
        return self.name if self.kind == "table" else f"type {self.name}"

    @property
    def held(self):
        return None if self.end is None else self.end - self.start

    @property
    def blocks(self):
        """("reads", "writes") of this table that wait while it is held."""
        return blocks(self.mode) if self.kind == "table" and not self.new else ()

    def label(self):
        return f"{self.relation}{' (new)' if self.new else ''}: {self.mode}"


@dataclass
class Wait:
    """A time the migration's session waited for a lock (seen by the watcher)."""
    step: int            # index into Trace.steps (None: between statements)
    target: str          # "deals", "type dealcurrency", "a row of deals", "another transaction"
    mode: str
    start: float
    end: float
    behind: list = field(default_factory=list)  # the sessions it waited for (application_name)
    behind_for: dict = field(default_factory=dict)  # session -> seconds it was seen in the way

    @property
    def seconds(self):
        return self.end - self.start

    def describe(self, steady=False):
        """What it waited for, and behind whom: "for ACCESS EXCLUSIVE on deals, behind blocker".
        steady: only the sessions in the way for STEADY_WAIT or longer (an app request that
        held its lock for a moment as the wait began is not the same on every run)."""
        what = ("for another transaction to end" if self.target == "another transaction"
                else f"for {self.mode} on {self.target}")
        behind = self.behind
        if steady and self.behind_for:
            behind = [name for name in behind if self.behind_for.get(name, 0) >= STEADY_WAIT]
        return what + (f", behind {', '.join(behind)}" if behind else "")


@dataclass
class Step:
    """One statement the migration ran."""
    index: int
    sql: str
    start: float
    end: float = None
    transaction: int = None   # index into Trace.transactions; None: outside any (autocommit)
    locks: list = field(default_factory=list)
    rewrites: list = field(default_factory=list)  # tables that got a new file
    bookkeeping: bool = False  # Alembic's own (alembic_version, its catalog queries)
    failed: str = None
    wrapped: bool = False      # outside a transaction, run in a one-statement one of its own

    @property
    def seconds(self):
        return None if self.end is None else self.end - self.start

    @property
    def label(self):
        return short(self.sql)


@dataclass
class Transaction:
    """One database transaction of the migration's session."""
    index: int
    start: float
    end: float = None
    outcome: str = None       # "COMMIT" or "ROLLBACK" (None: still open when the trace ended)


@dataclass
class Trace:
    """What one traced command did: its statements, transactions and waits."""
    command: str
    start: float
    end: float = None
    server: str = None        # server_version
    pids: list = field(default_factory=list)  # the migration's backend pid(s)
    steps: list = field(default_factory=list)
    transactions: list = field(default_factory=list)
    waits: list = field(default_factory=list)
    error: str = None

    # -- for a plot: (start, end, ...) on the time.monotonic() timeline ---------------
    def held_intervals(self):
        """[(relation, mode, start, end)]: each lock, from its statement to its release."""
        return [(lock.relation, lock.mode, lock.start, lock.end)
                for step in self.steps for lock in _sorted(step.locks)]

    def wait_intervals(self):
        """[(target, mode, start, end)]: each wait for a lock."""
        return [(w.target, w.mode, w.start, w.end) for w in self.waits]

    def statement_intervals(self):
        """[(start, end, label)]: each statement the table shows."""
        return [(s.start, s.end, s.label) for s in self.shown()]

    def blocking(self, table, operation="writes"):
        """(start, end) of the longest-held lock on `table` that blocks `operation`
        ("reads" or "writes"), on the time.monotonic() timeline; None if no lock did.
        Only when PostgreSQL had surely granted it: from the end of the watcher's first
        look at pg_locks that saw it granted (a statement may first wait behind the
        app's transactions in flight, and a busy server takes a while to get there)."""
        found = []
        for step in self.steps:
            for lock in step.locks:
                if lock.name == table and operation in lock.blocks and lock.end is not None:
                    # held for sure from the watcher's first sighting of it granted; never
                    # seen (a statement shorter than the watcher's poll): from its statement's end
                    start = lock.granted if lock.granted is not None else step.end
                    if start is not None and start < lock.end:
                        found.append((lock.end - start, start, lock.end))
        return max(found)[1:] if found else None

    # -- reading it -------------------------------------------------------------------
    def shown(self):
        """The statements worth a row: the migration's, and Alembic's own only if they waited."""
        waited = {w.step for w in self.waits}
        return [s for s in self.steps if not s.bookkeeping or s.index in waited]

    def groups(self):
        """The shown statements as rows: consecutive runs of one statement (a batched
        backfill's UPDATE, its numbers aside) with the same locks make one row."""
        found = []
        for step in self.shown():
            last = found[-1][-1] if found else None
            if last is not None and _repeats(last, step):
                found[-1].append(step)
            else:
                found.append([step])
        return found

    def numbers(self):
        """{step index: its row's number}."""
        return {s.index: n for n, group in enumerate(self.groups(), 1) for s in group}

    def steady(self):
        """This trace without the attempts a retry gave up on (the steady view's): the
        statements before the last lock timeout that the migration ran on past, the
        waits they made, and their transactions (the rest renumbered from 1)."""
        gave_up = [s.index for s in self.steps[:-1] if s.failed and LOCK_TIMEOUT in s.failed]
        if not gave_up:
            return self
        cut = gave_up[-1]
        steps = [s for s in self.steps if s.index > cut]
        kept = sorted({s.transaction for s in steps if s.transaction is not None})
        renumber = {old: new for new, old in enumerate(kept)}
        return replace(
            self,
            steps=[replace(s, transaction=renumber.get(s.transaction)) for s in steps],
            transactions=[replace(self.transactions[old], index=new) for old, new in renumber.items()],
            waits=[w for w in self.waits if w.step is not None and w.step > cut])

    def waited(self, step):
        """Seconds `step` waited for locks; None if it never did."""
        waits = [w.seconds for w in self.waits if w.step == step.index]
        return sum(waits) if waits else None

    def reach(self, step, lock):
        """How far `lock` (taken by `step`) was held, in statements: "this statement",
        or "to COMMIT, through #N" (N: the last statement its transaction ran)."""
        if step.transaction is None:
            return "this statement"
        numbers = self.numbers()
        later = [numbers[s.index] for s in self.shown() if s.transaction == step.transaction]
        outcome = self.transactions[step.transaction].outcome or "the end"
        if not later or max(later) == numbers.get(step.index):
            return "this statement" if outcome == "COMMIT" else f"this statement ({outcome})"
        return f"to {outcome}, through #{max(later)}"

    def table(self, exact=False, times=True):
        """One row per statement (a line per lock), for a learner to read at a glance;
        times=False: the steady view (see the module's docstring)."""
        if not times and self.steady() is not self:
            return self.steady().table(exact, times)
        if times:
            head = ("#", "tx", "statement", "locks taken", "rewrite", "ran", "waited", "held", "blocks")
        else:
            head = ("#", "tx", "statement", "locks taken", "rewrite", "held", "blocks")
        rows, shown, notes = [], self.shown(), []
        for number, group in enumerate(self.groups(), 1):
            step = group[0]
            waits = [self.waited(s) for s in group if self.waited(s) is not None]
            label = step.label if len(group) == 1 else f"{short(step.sql, SQL_WIDTH - 7)} (×{len(group)})"
            txs = sorted({s.transaction for s in group if s.transaction is not None})
            tx = "auto" if step.transaction is None else ",".join(str(t + 1) for t in txs)
            row = [str(number), tx, label, "—",
                   "yes: " + ", ".join(step.rewrites) if step.rewrites else "no"]
            ran = max(s.seconds or 0 for s in group)  # a repeated statement: its longest run
            row += (["failed" if step.failed else duration(ran, exact),
                     duration(sum(waits), exact) if waits else "—"] if times else [])
            row += ["", ""]
            rows.append(row)
            for i, lock in enumerate(_sorted(step.locks)):
                if i:
                    row = [""] * len(head)
                    rows.append(row)
                row[3] = lock.label()
                if times:
                    held = [x.held for s in group for x in s.locks
                            if x.label() == lock.label() and x.held is not None]
                    row[-2] = duration(max(held), exact) if held else "—"
                else:
                    row[-2] = self.reach(step, lock)
                row[-1] = ", ".join(lock.blocks) or "—"
        widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                 for r in [head, ["-" * w for w in widths]] + rows]
        if not shown:
            lines.append("(no statements: nothing to do)")
        numbers = self.numbers()
        for wait in self.waits:
            where = f"#{numbers[wait.step]}" if wait.step in numbers else "between statements"
            if times:
                notes.append(f"{where} waited {duration(wait.seconds, exact)} {wait.describe()}")
            elif wait.seconds >= STEADY_WAIT:
                notes.append(f"{where} waited {wait.describe(steady=True)}")
        if any(s.transaction is not None and not s.locks for s in shown):
            notes.append("locks taken: those the statement added; a transaction keeps each "
                         "lock until it ends")
        if any(s.transaction is None for s in shown):
            notes.append("tx auto: outside a transaction (autocommit): each statement is its own "
                         "transaction, and lets its locks go when it ends")
        if any(s.transaction is None and not s.wrapped for s in shown):
            notes.append("(a statement PostgreSQL runs only outside a transaction, such as "
                         "CONCURRENTLY: its locks are those the watcher saw while it ran)")
        undone = sorted({s.transaction + 1 for s in shown if s.transaction is not None
                         and self.transactions[s.transaction].outcome == "ROLLBACK"})
        if undone:
            notes.append(f"tx {', '.join(map(str, undone))}: rolled back, its statements undone")
        if self.error:
            notes.append(f"the migration failed: {self.error}")
        return "\n".join(lines + notes)

    def worst(self):
        """(lock, step): the lock that blocked the app's reads or writes longest."""
        candidates = [(lock, step) for step in self.steps for lock in step.locks
                      if lock.blocks and lock.held is not None]
        if not candidates:
            return None
        return max(candidates, key=lambda ls: (
            _bucket_rank(ls[0].held), "reads" in ls[0].blocks, ls[0].held,
            _strength(ls[0].mode), ls[0].name))

    def verdict(self, exact=False, times=True):
        """One line: the worst lock for the app (times=False: the steady view's)."""
        if not times:
            return self.steady()._steady_verdict()
        found = self.worst()
        limit = BUCKETS[0][0]
        if found is None or found[0].held < limit:
            return f"no lock that blocks reads or writes of a table was held longer than {limit} s"
        lock, step = found
        until = (self.transactions[step.transaction].outcome or "the end of the trace"
                 if step.transaction is not None else "its end")
        held = duration(lock.held, exact)
        who = ("every read and write" if lock.blocks == ("reads", "writes")
               else "every write")
        rest = "" if "reads" in lock.blocks else " (reads went on)"
        return (f'{lock.mode} on {lock.name} held {held}, from "{step.label}" to {until}: '
                f"{who} of {lock.name} in that time waited{rest}")

    def _steady_verdict(self):
        """The lock that blocked the app through the most statements, without times;
        first, a wait in the lock queue that made the app's requests queue too."""
        numbers = self.numbers()
        queued = [w for w in self.waits if w.seconds >= STEADY_WAIT and w.step in numbers
                  and w.mode in MODES and (READ in CONFLICTS[w.mode] or WRITE in CONFLICTS[w.mode])]
        if queued:
            wait = max(queued, key=lambda w: w.seconds)
            who = "every read and write" if READ in CONFLICTS[wait.mode] else "every write"
            return (f"#{numbers[wait.step]} waited in the lock queue {wait.describe(steady=True)}: {who} of "
                    f"{wait.target} that came after it queued behind it")
        blocking = [(lock, step) for step in self.shown() for lock in step.locks if lock.blocks]
        if not blocking:
            return "no lock that blocks reads or writes of a table was taken"

        def last(lock_step):
            lock, step = lock_step
            if step.transaction is None:
                return numbers[step.index]
            return max(numbers[s.index] for s in self.shown() if s.transaction == step.transaction)

        beyond = [ls for ls in blocking if last(ls) > numbers[ls[1].index]]  # held past its statement
        if not beyond:
            held = [f"#{numbers[s.index]}" for _, s in blocking]
            return (f"each lock that blocks reads or writes was held for its own statement only "
                    f"({', '.join(dict.fromkeys(held))})")
        # the worst for the app: one that stops reads too, then the one held through the most statements
        lock, step = max(beyond, key=lambda ls: ("reads" in ls[0].blocks, last(ls) - numbers[ls[1].index],
                                                 _strength(ls[0].mode)))
        who = "every read and write" if lock.blocks == ("reads", "writes") else "every write"
        reach = self.reach(step, lock)
        return (f'{lock.mode} on {lock.name} held from #{numbers[step.index]} "{step.label}" '
                f"{reach}: {who} of {lock.name} waited until then")

    # -- JSON ---------------------------------------------------------------------------
    def to_dict(self):
        return {"format": FORMAT, "clock": "time.monotonic", **asdict(self)}

    def save(self, path):
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        with open(path, "w", encoding="utf-8") as out:
            json.dump(self.to_dict(), out, indent=1, ensure_ascii=False)
            out.write("\n")

    @classmethod
    def from_dict(cls, data):
        data = dict(data)
        if data.pop("format", None) != FORMAT:
            raise LabError(f"not a lock trace ({FORMAT}) file")
        data.pop("clock", None)
        data["steps"] = [Step(**{**s, "locks": [Lock(**lock) for lock in s["locks"]]})
                         for s in data["steps"]]
        data["transactions"] = [Transaction(**t) for t in data["transactions"]]
        data["waits"] = [Wait(**w) for w in data["waits"]]
        return cls(**data)


def load(path):
    """A Trace saved with Trace.save."""
    with open(path, encoding="utf-8") as f:
        return Trace.from_dict(json.load(f))


def _sorted(locks):
    return sorted(locks, key=lambda lock: (lock.kind != "table", lock.name, _strength(lock.mode)))


def _repeats(one, other):
    """Is `other` the same statement as `one`, run again (its numbers aside), with the
    same locks, in the same way (both outside a transaction, or in the same one)?"""
    def key(step):
        return (re.sub(r"\d+", "N", " ".join(step.sql.split())), step.transaction,
                [lock.label() for lock in _sorted(step.locks)], step.rewrites, step.failed)
    return key(one) == key(other)


def _bucket_rank(seconds):
    return next(i for i, (limit, _) in enumerate(BUCKETS) if seconds < limit)


# -- measuring -------------------------------------------------------------------------

class Tracer:
    """Trace every statement that runs on `engine` inside the with-block:

        with Tracer(engine, "upgrade head") as tracer:
            ...
        tracer.trace   # also after an exception (trace.error says which)

    The listeners go when the block ends, whatever happens in it."""

    def __init__(self, engine, command="", poll=POLL, version_table="alembic_version"):
        if engine.dialect.name != "postgresql":
            raise LabError(f"the lock trace needs PostgreSQL (it reads pg_locks); this app's "
                           f"database is {engine.dialect.name}")
        self.engine, self.command, self.poll = engine, command, poll
        self.version_table = version_table
        self._bookkeeping = re.compile(_BOOKKEEPING.format(table=re.escape(version_table)),
                                       re.IGNORECASE)
        self.trace = None

    # the with-block -------------------------------------------------------------------
    def __enter__(self):
        self.trace = Trace(command=self.command, start=time.monotonic())
        self._known = {}          # (kind, oid) -> name, from every snapshot of the session
        self._schema = "public"   # names in it are shown without the schema
        self._names = {}          # id(DBAPI connection) -> its application_name before us
        self._pids = []           # the migration's backend pid(s), for the watcher
        self._tx = None           # the open Transaction
        self._tx_objects = None   # the tables and types that existed when it began (the rest are new)
        self._tx_locks = []       # its Locks, released when it ends
        self._held = set()        # (kind, oid, mode) it held after the last statement
        self._before = {}         # step index -> the snapshot before it ran
        self._step = None
        self._watcher = _Watcher(self.engine, self._pids, self.poll)  # before our pool events
        self._listeners = [(self.engine, name, getattr(self, "_on_" + name)) for name in (
            "checkout", "checkin", "begin", "commit", "rollback",
            "before_cursor_execute", "after_cursor_execute", "handle_error")]
        for target, name, fn in self._listeners:
            sa.event.listen(target, name, fn)
        self._watcher.start()
        return self

    def __exit__(self, kind, exc, tb):
        try:
            self._watcher.finish()
        finally:
            for target, name, fn in self._listeners:
                sa.event.remove(target, name, fn)
        now = time.monotonic()
        if self._tx is not None:  # never ended while we listened
            self._end_transaction(now, None)
        self._from_watcher(self._watcher.polls)
        if self._watcher.error:
            self.trace.error = (self.trace.error or "") + f" (the watcher failed: {self._watcher.error})"
        self.trace.end = now
        if isinstance(exc, SystemExit):  # Flask-Migrate's catch_errors: it said why already
            self.trace.error = f"stopped with exit status {exc.code}"
        elif exc is not None and not self.trace.error:
            self.trace.error = _one_line(exc)
        return False

    # pool events: name the session, learn its pid -------------------------------------
    def _on_checkout(self, dbapi_connection, record, proxy):
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT pg_backend_pid(), current_setting('application_name'), "
                           "current_schema(), current_setting('server_version')")
            pid, name, schema, version = cursor.fetchone()
            cursor.execute("SELECT set_config('application_name', 'migration', false)")
        finally:
            cursor.close()
        _commit(dbapi_connection)  # a session setting made in a transaction lasts only if it commits
        self._names[id(dbapi_connection)] = name
        self._schema, self.trace.server = schema, version
        if pid not in self._pids:
            self._pids.append(pid)
            self.trace.pids.append(pid)

    def _on_checkin(self, dbapi_connection, record):
        name = self._names.pop(id(dbapi_connection), None) if dbapi_connection is not None else None
        if name is None:
            return
        with contextlib.suppress(self.engine.dialect.loaded_dbapi.Error):  # broken: the pool drops it
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT set_config('application_name', %s, false)", (name,))
            cursor.close()
            _commit(dbapi_connection)

    # transactions ---------------------------------------------------------------------
    def _on_begin(self, conn):
        if not _autocommit(conn.connection.dbapi_connection):
            self._begin(time.monotonic())

    def _on_commit(self, conn):
        self._end_transaction(time.monotonic(), "COMMIT")

    def _on_rollback(self, conn):
        self._end_transaction(time.monotonic(), "ROLLBACK")

    def _begin(self, now):
        self._tx = Transaction(index=len(self.trace.transactions), start=now)
        self.trace.transactions.append(self._tx)
        self._tx_objects, self._tx_locks, self._held = None, [], set()

    def _end_transaction(self, now, outcome):
        if self._tx is None:  # Alembic's autocommit_block "commits" a transaction it never began
            return
        self._tx.end, self._tx.outcome = now, outcome
        for lock in self._tx_locks:
            lock.end = now
        self._tx, self._held = None, set()

    # statements -----------------------------------------------------------------------
    def _on_before_cursor_execute(self, conn, cursor, statement, parameters, context, many):
        dbapi_connection = cursor.connection
        auto = _autocommit(dbapi_connection)
        before = self._snapshot(dbapi_connection)
        if not auto and self._tx is None:  # a DBAPI transaction SQLAlchemy did not announce
            self._begin(time.monotonic())
        if not auto and self._tx_objects is None:
            self._tx_objects = set(before)
        wrapped = auto and not _NO_TRANSACTION.search(statement)
        if wrapped:  # what autocommit does, in a transaction we can look into before it ends
            _run(dbapi_connection, "BEGIN")
        step = Step(index=len(self.trace.steps), sql=statement, start=time.monotonic(),
                    transaction=None if auto else self._tx.index,
                    bookkeeping=bool(self._bookkeeping.search(statement)), wrapped=wrapped)
        self.trace.steps.append(step)
        self._before[step.index] = before
        self._step = step

    def _on_after_cursor_execute(self, conn, cursor, statement, parameters, context, many):
        step, self._step = self._step, None
        if step is None:
            return
        step.end = time.monotonic()
        dbapi_connection = cursor.connection
        before, after = self._before[step.index], self._snapshot(dbapi_connection)
        step.rewrites = sorted(self._known[key] for key, node in before.items()
                               if key[0] == "table" and node and after.get(key)
                               and after[key] != node)
        if step.transaction is None and not step.wrapped:
            return  # outside a transaction its locks are gone already: the watcher saw them
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(_OWN_LOCKS)
            held = {(kind, oid, _mode(mode)) for kind, oid, mode in cursor.fetchall()}
        finally:
            cursor.close()
        if step.wrapped:
            _run(dbapi_connection, "COMMIT")
            ended = time.monotonic()
            for kind, oid, mode in held:
                name = self._known.get((kind, oid))
                if name is not None and not (kind == "table" and self._is_version_table(name)):
                    step.locks.append(Lock(kind, name, mode, start=step.start, end=ended,
                                           new=(kind, oid) not in before))
            step.locks = _sorted(step.locks)
            return
        for kind, oid, mode in held - self._held:
            name = self._known.get((kind, oid))
            if name is None or (kind == "table" and self._is_version_table(name)):
                continue  # an index, TOAST, a catalog, a rewrite's transient heap; Alembic's table
            lock = Lock(kind, name, mode, start=step.start, new=(kind, oid) not in self._tx_objects)
            step.locks.append(lock)
            self._tx_locks.append(lock)
        step.locks = _sorted(step.locks)
        self._held = held

    def _on_handle_error(self, context):
        step, self._step = self._step, None
        if step is not None and step.end is None:
            step.end = time.monotonic()
            step.failed = _one_line(context.original_exception)
            if step.wrapped:  # its one-statement transaction failed: end it, as autocommit would
                with contextlib.suppress(self.engine.dialect.loaded_dbapi.Error):
                    _run(context.connection.connection.dbapi_connection, "ROLLBACK")

    # helpers --------------------------------------------------------------------------
    def _snapshot(self, dbapi_connection):
        """{(kind, oid): filenode} of the user's tables and types, as this session sees
        them; remembers their names (a table dropped later keeps its name)."""
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(_OBJECTS)
            rows = cursor.fetchall()
        finally:
            cursor.close()
        snapshot = {}
        for kind, oid, schema, name, filenode in rows:
            self._known[(kind, oid)] = name if schema == self._schema else f"{schema}.{name}"
            snapshot[(kind, oid)] = filenode
        return snapshot

    def _is_version_table(self, name):
        return name.rpartition(".")[2] == self.version_table

    def _from_watcher(self, polls):
        """The watcher's sightings: the locks of statements outside a transaction, when
        each lock was first seen granted, and waits."""
        steps = self.trace.steps
        first_seen = {}  # (kind, name, mode) -> [(t0, t1) of each look that saw it granted]
        for _, t0, t1, rows in polls:
            for kind, oid, mode, granted, *_ in rows:
                name = self._known.get((kind, oid)) if kind in ("table", "type") else None
                if granted and name is not None:
                    first_seen.setdefault((kind, name, mode), []).append((t0, t1))
        for step in steps:
            if step.transaction is not None or step.wrapped or step.end is None:
                continue
            seen = set()
            for _, t0, t1, rows in polls:
                if t0 >= step.start and t1 <= step.end:  # the look happened while it ran
                    seen |= {(kind, oid, mode) for kind, oid, mode, granted, *_ in rows
                             if granted and kind in ("table", "type")}
            for kind, oid, mode in seen:
                name = self._known.get((kind, oid))
                if name is None or (kind == "table" and self._is_version_table(name)):
                    continue
                step.locks.append(Lock(kind, name, mode, start=step.start, end=step.end,
                                       new=(kind, oid) not in self._before[step.index],
                                       seen_by="watcher"))
            step.locks = _sorted(step.locks)
        for step in steps:
            for lock in step.locks:  # a look that began after its statement did
                lock.granted = next((t1 for t0, t1 in first_seen.get((lock.kind, lock.name, lock.mode), ())
                                     if t0 >= lock.start and t1 <= (lock.end or t1)), None)
        for key, start, end, behind, behind_for in _intervals(polls):
            if behind == ["locktrace"] and self._watcher.same_database:
                continue  # a CONCURRENTLY build waiting for one of the watcher's own looks
            step = _step_at(steps, start, end)
            if step is not None:
                start, end = max(start, step.start), min(end, step.end or end)
            kind, oid, mode = key
            self.trace.waits.append(Wait(step=None if step is None else step.index,
                                         target=self._target(kind, oid), mode=mode,
                                         start=start, end=max(start, end), behind=behind,
                                         behind_for=behind_for))

    def _target(self, kind, oid):
        if kind in ("table", "type", "tuple"):
            name = self._known.get(("type" if kind == "type" else "table", oid))
            name = name or f"relation {oid}"
            return {"table": name, "type": f"type {name}", "tuple": f"a row of {name}"}[kind]
        if kind in ("transactionid", "virtualxid"):
            return "another transaction"
        return f"a lock of type {kind}"


class _Watcher(threading.Thread):
    """A second connection that looks at the migration's locks every `poll` seconds.

    It connects to the `postgres` database when it can: pg_locks shows every
    database's locks, and a CREATE INDEX CONCURRENTLY waits for the queries of
    every session in its own database (the watcher's looks too) before it ends.
    Else to the app's database, and waits behind the watcher alone are dropped."""

    def __init__(self, engine, pids, poll):
        super().__init__(name="locktrace-watcher", daemon=True)
        self.pids, self.poll = pids, poll
        self.polls = []           # (number, t0, t1, rows) of each look that saw something
        self.error = None
        self._done = threading.Event()
        self._pool = None
        self._errors = (sa.exc.SQLAlchemyError, engine.dialect.loaded_dbapi.Error)
        try:
            self._connection = self._connect_elsewhere(engine)
        except self._errors:  # no `postgres` database, no right to connect to it
            self._pool = engine.pool.recreate()  # the engine's way to connect, a pool of its own
            self._connection = self._pool.connect()
        self.same_database = self._pool is not None
        dbapi_connection = self._connection.dbapi_connection
        dbapi_connection.autocommit = True
        cursor = dbapi_connection.cursor()
        cursor.execute("SET application_name = 'locktrace'")
        cursor.close()

    @staticmethod
    def _connect_elsewhere(engine):
        options = {"connect_timeout": 5} if engine.dialect.driver in ("psycopg2", "psycopg") else {}
        other = sa.create_engine(engine.url.set(database="postgres"), poolclass=sa.pool.NullPool,
                                 connect_args=options)
        return other.raw_connection()

    def run(self):
        number = 0
        try:
            cursor = self._connection.dbapi_connection.cursor()
            while not self._done.is_set():
                if self.pids:
                    t0 = time.monotonic()
                    cursor.execute(_WATCH, (list(self.pids),))
                    rows = cursor.fetchall()
                    t1 = time.monotonic()
                    if rows:
                        self.polls.append((number, t0, t1, [_watched(row) for row in rows]))
                    number += 1
                self._done.wait(self.poll)
        except self._errors as exc:  # reported with the trace; the migration goes on
            self.error = _one_line(exc)

    def finish(self):
        self._done.set()
        if self.is_alive():
            self.join()
        self._connection.invalidate()  # closed, never handed to anyone else
        if self._pool is not None:
            self._pool.dispose()


def _watched(row):
    """A watcher row as (kind, oid, mode, granted, locktype, behind)."""
    _, locktype, relation, type_oid, mode, granted, behind = row
    if locktype == "relation":
        kind, oid = "table", relation
    elif type_oid is not None:
        kind, oid = "type", type_oid
    elif locktype == "tuple":
        kind, oid = "tuple", relation
    else:
        kind, oid = locktype, None
    return kind, oid, _mode(mode), granted, locktype, list(behind or [])


def _intervals(polls):
    """Waits from consecutive looks that saw the same ungranted lock:
    [((kind, oid, mode), start, end, behind, {blocker: seconds seen in the way})]."""
    found, open_ = [], {}
    for number, t0, t1, rows in polls:
        seen = {}
        for kind, oid, mode, granted, _, behind in rows:
            if not granted:
                seen[(kind, oid, mode)] = behind
        for key in list(open_):
            if key not in seen or open_[key][2] != number - 1:
                found.append(_closed(key, open_.pop(key)))
        for key, behind in seen.items():
            if key not in open_:
                open_[key] = [t0, t1, number, {}]
            open_[key][1:3] = [t1, number]
            for name in behind:  # when each blocker was first and last seen in the way
                open_[key][3][name] = [open_[key][3].get(name, [t0])[0], t1]
    found += [_closed(key, value) for key, value in open_.items()]
    return sorted(found, key=lambda wait: wait[1])


def _closed(key, value):
    start, end, _, behind = value
    return key, start, end, sorted(behind), {name: last - first for name, (first, last) in behind.items()}


def _step_at(steps, start, end):
    """The statement that ran while a wait was seen (the middle of the wait)."""
    middle = (start + end) / 2
    for step in steps:
        if step.start <= middle and (step.end is None or middle <= step.end):
            return step
    return None


def _mode(pg_mode):
    return _PG_MODES.get(pg_mode, pg_mode)


def _autocommit(dbapi_connection):
    return bool(getattr(dbapi_connection, "autocommit", False))


def _run(dbapi_connection, sql):
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def _commit(dbapi_connection):
    if not _autocommit(dbapi_connection):
        dbapi_connection.commit()


def _one_line(exc):
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0]}" if text else type(orig).__name__


# Both durations by the server's clock, at the same look: how long the waiter's statement
# has waited, how long the transaction it waits for has run (a busy machine that delays a
# look, or the client's connecting, skews neither against the other).
ROW_WAITS = """SELECT w.pid, w.transactionid::text, b.query,
           extract(epoch FROM clock_timestamp() - a.query_start) AS waited,
           extract(epoch FROM clock_timestamp() - b.xact_start) AS ran
    FROM pg_locks w
    JOIN pg_locks h ON h.locktype = 'transactionid' AND h.transactionid = w.transactionid
                   AND h.granted
    JOIN pg_stat_activity b ON b.pid = h.pid
    JOIN pg_stat_activity a ON a.pid = w.pid
    WHERE w.locktype = 'transactionid' AND NOT w.granted"""


class RowLockWaits:
    """Who waited for another transaction's row locks, as pg_locks shows it: a
    session that updates or deletes a row another transaction has deleted (or
    updated, or locked) and not yet committed waits for that transaction, an
    ungranted `transactionid` lock (ShareLock) in pg_locks, until its COMMIT.

        with locktrace.RowLockWaits(lab.url) as waits:   # a connection of its own
            lab.sql("DELETE FROM deals WHERE id <= 300000")
        waits.waiters, waits.longest                     # sessions; seconds

    Only waits behind a statement that starts with `behind` (DELETE) count. A second
    session that wants the same row meanwhile waits for the first waiter's `tuple` lock
    instead (pg_locks, "Row-level locks"): not counted, a lower bound then.
    `longest`: the longest one session was seen waiting for one transaction (from its
    statement's start); `ran`: how long the transactions waited for had run when last
    seen (from their start), both by the server's clock, to within a poll; `seconds`:
    how long the block ran, by the watcher's."""

    def __init__(self, url, behind="DELETE", poll=POLL):
        self.behind, self.poll = behind.upper(), poll
        self._engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self._waited = {}  # (waiter pid, transaction) -> longest seen waiting, seconds
        self._ran = {}  # transaction waited for -> longest seen running, seconds
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="row-lock-waits", daemon=True)
        self.error, self.seconds, self._began = None, 0.0, None
        self._ready = threading.Event()  # connected, and looked once: the block may start

    def _run(self):
        try:
            with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("SET application_name = 'locktrace'"))
                while not self._done.is_set():
                    for pid, xid, query, waited, ran in conn.execute(sa.text(ROW_WAITS)):
                        if (query or "").lstrip().upper().startswith(self.behind):
                            key = (pid, xid)
                            self._waited[key] = max(self._waited.get(key, 0.0), float(waited))
                            self._ran[xid] = max(self._ran.get(xid, 0.0), float(ran))
                    self._ready.set()
                    self._done.wait(self.poll)
        except sa.exc.SQLAlchemyError as exc:
            self.error = _one_line(exc)
        finally:
            self._ready.set()

    @property
    def waiters(self):
        """How many sessions were seen waiting."""
        return len({pid for pid, _ in self._waited})

    @property
    def transactions(self):
        """How many of the DELETE's transactions they waited for (batches: several)."""
        return len(self._ran)

    @property
    def longest(self):
        return max(self._waited.values(), default=0.0)

    @property
    def ran(self):
        return max(self._ran.values(), default=0.0)

    def __enter__(self):
        self._thread.start()
        self._ready.wait(30)  # watching before the block starts (a busy machine connects slowly)
        self._began = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.seconds = time.monotonic() - self._began
        self._done.set()
        self._thread.join(10)
        self._engine.dispose()
        if self.error:
            raise LabError(f"the row-lock watcher failed: {self.error}")
