"""Lab 04's lock and rewrite observatory: what a schema change costs the
sessions that read the table while it runs.

    swap = observatory.observe(lab04, "swap through a temporary type", [sql, ...])
    observatory.plot([swap, ...])

`observe` runs the statements in one transaction, as `flask db upgrade` runs a
revision, in a session named `migration`. As soon as that session holds a lock
on the table (or has finished), a `reader` session counts the table's rows, as
every page of the app does; an `observer` session looks at `pg_locks` to see
who holds and who waits. After each statement the migration reads the table's
relfilenode, the file that holds its rows: a new file means the statement
rewrote the whole table. Only what is the same on every machine is printed
(rewrites, locks, who waited); the times go into the plot.
"""
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa

TABLE = "observatory.deals"
LOCKS = """SELECT a.application_name, l.mode, l.granted
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.relation = to_regclass(:table)
  AND a.application_name IN ('migration', 'reader')
ORDER BY l.granted DESC, a.application_name, l.mode"""
FILENODE = "SELECT pg_relation_filenode(to_regclass(:table))"
TIMEOUT = 60  # seconds: a run that takes longer is broken, not slow


@dataclass
class Observation:
    title: str
    rewrites: int        # statements that gave the table a new file
    locks: list          # (session, lock mode, granted?) while the reader waited
    migration_s: float   # the transaction's statements, commit excluded
    reader_s: float      # the reader's count, waiting included

    @property
    def reader_waited(self):
        return any(session == "reader" and not granted for session, _, granted in self.locks)

    def report(self):
        lines = [f"{self.title}:", f"  table rewrites: {self.rewrites}",
                 "  locks on the table while the reader waited:"]
        lines += [f"    {session:<10} {mode:<20} {'granted' if granted else 'WAITING'}"
                  for session, mode, granted in self.locks] or ["    (none)"]
        lines.append(f"  the reader had to wait: {self.reader_waited}")
        return "\n".join(lines)


def _session(url, name, autocommit=False):
    """A connection of its own, named `name` in pg_stat_activity."""
    options = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool,
                              connect_args={"application_name": name}, **options)
    return engine.connect()


def _wait_until(condition):
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the observatory waited a minute: is another session holding a lock?")
        time.sleep(0.005)


def measure(url, title, statements, table=TABLE):
    """Run `statements` in one transaction while a reader counts `table`."""
    result, errors = {}, []
    done, read, release = threading.Event(), threading.Event(), threading.Event()

    def migration():
        try:
            with _session(url, "migration") as conn, conn.begin():
                node = conn.execute(sa.text(FILENODE), {"table": table}).scalar()
                rewrites, started = 0, time.perf_counter()
                for statement in statements:
                    conn.execute(sa.text(statement))
                    new = conn.execute(sa.text(FILENODE), {"table": table}).scalar()
                    rewrites, node = rewrites + (new != node), new
                result.update(rewrites=rewrites, migration_s=time.perf_counter() - started)
                done.set()
                release.wait(TIMEOUT)  # keep the locks until the observer has looked
        except Exception as exc:  # shown in the caller's thread
            errors.append(exc)
            done.set()

    def reader():
        with _session(url, "reader", autocommit=True) as conn:
            started = time.perf_counter()
            conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
            result["reader_s"] = time.perf_counter() - started
        read.set()

    # autocommit: in one transaction, pg_stat_activity would stay as first read
    with _session(url, "observer", autocommit=True) as observer:
        def locks():
            return [tuple(row) for row in observer.execute(sa.text(LOCKS), {"table": table})]

        threads = [threading.Thread(target=migration, daemon=True)]
        threads[0].start()
        _wait_until(lambda: done.is_set() or any(s == "migration" for s, _, _ in locks()))
        threads.append(threading.Thread(target=reader, daemon=True))
        threads[1].start()
        _wait_until(lambda: read.is_set() or any(not granted for _, _, granted in locks()))
        seen = locks()
        release.set()
        for thread in threads:
            thread.join(TIMEOUT)
    if errors:
        raise errors[0]
    return Observation(title, result["rewrites"], seen, result["migration_s"], result["reader_s"])


def observe(lab, title, statements, table=TABLE):
    """Measure `statements` on the lab's database and print what they cost."""
    observation = measure(lab.url, title, statements, table)
    print(observation.report())
    return observation


def plot(observations):
    """Seconds per change, the migration's and the reader's, on a log scale."""
    import matplotlib.pyplot as plt  # a second to import: only when a cell plots

    labels, seconds = [], []
    for o in observations:
        labels += [f"{o.title}: migration", f"{o.title}: reader's count"]
        seconds += [o.migration_s, o.reader_s]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 0.8))
    colors = ["tab:red", "tab:orange", "tab:purple", "tab:pink", "tab:green", "tab:olive"]
    ax.barh(labels, seconds, color=colors[:len(labels)])
    ax.set_xscale("log")
    ax.set_xlim(right=max(seconds) * 10)  # room for the labels
    ax.set_xlabel("seconds (log scale)")
    ax.invert_yaxis()
    for y, s in enumerate(seconds):
        ax.annotate(f" {s:.3g} s", (s, y), va="center")
    plt.tight_layout()
    plt.show()
