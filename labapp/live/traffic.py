"""Traffic: what the app's users feel while a migration runs.

    with traffic.Load(v1) as load:            # users start arriving at release v1
        load.wait(1)                          # a second of ordinary traffic
        with load.mark("migration"):          # marked on the timeline
            !flask db upgrade
    load.report.plot()                        # every request over time (labapp.live.timeline)

Users arrive at a steady rate (`rate` requests a second), whatever the app
does: when it stalls, requests pile up, as real users' do, and each request's
time runs from when its user arrived (waiting for a free client included), so
a stall is measured whole. The servers take turns (a load balancer's round
robin), and each goes through the whole mix of requests. With `health_every`,
the load balancer also checks each server's /api/health that often.

Bounded on every side so it cannot run away in a lab: at most 16 requests in
flight, a duration limit (it stops by itself), a cap on requests (and so on
memory), loopback only (it refuses any URL that is not http://127.0.0.1:...).
Every request's start, latency, status and path is kept, and the release it
was sent to (servers restart on new ports, so a request is told by its
release, not its URL); a request the server did not answer within the
client's timeout, or refused, has status 0 and counts as failed, like one
answered with a 5xx.

Times vary from run to run and machine to machine: a lab prints verdicts with
wide margins (`verdict(...)`), and the numbers go into the plot and into
`make bench`.
"""
import contextlib
import json
import queue
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import sqlalchemy as sa

from labapp import settings
from labapp.live import timeline
from labapp.errors import LabError

MAX_CLIENTS = 16       # requests in flight at once, at most
# in flight by default: fewer than an app server's threads (labapp.live.appserver: 8), so a
# stalled database leaves it threads for its health check, as a real server has
MAX_SECONDS = 600      # no load runs longer, whatever its caller forgets
MAX_REQUESTS = 50_000
# Users' requests a second: a busy app's, and it leaves the CPU to the migration.
RATE = 80
HEALTH = "/api/health"  # what a load balancer's health check asks
CLIENTS = 4

READS = (("GET", "/api/deals?limit=5", None),)


def sales(currency, every=4):
    """Mostly reads, and one new deal in `currency` every `every` requests."""
    deal = {"contact_id": 1, "title": "Live deal", "amount": "99.00", "currency": currency}
    return READS * (every - 1) + (("POST", "/api/deals", deal),)


def edits(ids, every=2):
    """Reads, and every `every` requests a salesperson's edit of a deal (PATCH
    /api/deals/N: an UPDATE of that row), of each deal of `ids` in turn, in an
    order shuffled once (the same on every run: people do not edit in id order)."""
    ids = list(ids)
    random.Random(len(ids)).shuffle(ids)
    mix = []
    for deal_id in ids:
        mix += READS * (every - 1) + (("PATCH", f"/api/deals/{deal_id}", {"amount": "120.00"}),)
    return tuple(mix)


@dataclass
class Request:
    start: float    # seconds since the load began
    latency: float  # seconds until the answer (or the timeout)
    status: int     # HTTP status; 0: no answer (timeout, refused)
    target: str     # the server's URL
    release: str    # the release that server serves ("v1"; the URL for a bare URL)
    path: str = ""  # what was asked ("/api/deals?limit=5")
    method: str = "GET"  # anything else (POST, PATCH) is a write

    @property
    def failed(self):
        return self.status == 0 or self.status >= 500

    @property
    def write(self):
        """Does it change data (POST, PATCH: anything but a GET)?"""
        return self.method != "GET"

    @property
    def health(self):
        """Is it the load balancer's health check (not a user's request)?"""
        return self.path == HEALTH


def _check_loopback(url):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1":
        raise LabError(f"the load generator sends traffic to this machine's own app only "
                       f"(http://127.0.0.1:PORT), not to {url!r}")
    return url.rstrip("/")


def percentile(values, fraction):
    """The nearest-rank percentile of `values` (0 if empty)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


@dataclass
class Report:
    requests: list
    marks: list = field(default_factory=list)  # (label, start, end) in seconds since the start
    seconds: float = 0.0
    t0: float = 0.0  # time.monotonic() when the load began: other processes' times line up

    @property
    def failures(self):
        return sum(r.failed for r in self.requests)

    def latencies(self):
        return [r.latency for r in self.requests]

    @property
    def p50(self):
        return percentile(self.latencies(), 0.50)

    @property
    def p99(self):
        return percentile(self.latencies(), 0.99)

    @property
    def max(self):
        return max(self.latencies(), default=0.0)

    def mark(self, label):
        """(start, end) of the mark called `label`."""
        for name, start, end in self.marks:
            if name == label:
                return start, end
        raise LabError(f"no mark {label!r} in this report (marks: {[m[0] for m in self.marks]})")

    def held_up(self, interval, writes=True):
        """Did a lock held over `interval` ((start, end), time.monotonic(), as
        Trace.blocking gives it: from when PostgreSQL had surely granted it) hold up
        the app? (arrived, answered_after): the writes (any method but GET; writes=False:
        the reads) whose users arrived while it was held, and how many of them were
        answered only once it was let go. A lock that blocks them gives answered_after
        == arrived; one that does not lets them through meanwhile."""
        if interval is None:
            return 0, 0
        start, end = interval[0] - self.t0, interval[1] - self.t0
        arrived = [r for r in self.requests if not r.health and start <= r.start < end
                   and r.write == writes]
        return len(arrived), sum(r.start + r.latency >= end for r in arrived)

    def answered_during(self, label, writes=True, status=None, paths=None):
        """How many writes (not GET; writes=False: the reads) arrived while the mark
        `label` ran and were answered, without an error, before it ended: the app
        went on meanwhile. `status`: only those answered with it (404: the deal was
        gone); `paths`: only those that asked for one of them."""
        start, end = self.mark(label)
        paths = None if paths is None else set(paths)
        return sum(not r.health and not r.failed and start <= r.start and r.start + r.latency < end
                   and r.write == writes and status in (None, r.status)
                   and (paths is None or r.path in paths) for r in self.requests)

    def summary(self):
        return {"requests": len(self.requests), "failures": self.failures,
                "p50_ms": round(self.p50 * 1000, 1), "p99_ms": round(self.p99 * 1000, 1),
                "max_ms": round(self.max * 1000, 1)}

    def summary_line(self):
        s = self.summary()
        return (f"{s['requests']} requests, {s['failures']} failed, p50 {s['p50_ms']} ms, "
                f"p99 {s['p99_ms']} ms, max {s['max_ms']} ms")

    def plot(self, title="", trace=None, path=None):
        """Every request on a timeline, and the marks and `trace`'s locks in lanes below
        (labapp.live.timeline; `trace`: a Trace, a saved one's path, or a list of them,
        one per migration). Shown inline, or saved as PNG to `path`."""
        timeline.plot(self, title, trace, path)


class Load:
    """Users sending `rate` requests a second to one or more servers (a load
    balancer's round robin) until stopped, or for `seconds` at most; at most
    `clients` in flight. A server is an app server (labapp.live.appserver: its
    release is known) or a URL. `health_every`: seconds between the load
    balancer's health checks of each server (None: none)."""

    def __init__(self, *servers, rate=RATE, clients=CLIENTS, seconds=30, max_requests=10_000,
                 timeout=10, mix=READS, health_every=None):
        if not 1 <= clients <= MAX_CLIENTS:
            raise LabError(f"clients must be between 1 and {MAX_CLIENTS}, not {clients}")
        if not 0 < rate <= 1000:
            raise LabError(f"rate must be between 1 and 1000 requests a second, not {rate}")
        if not servers:
            raise LabError("give the load at least one server")
        self.clients, self.timeout, self.mix, self.rate = clients, timeout, tuple(mix), rate
        self.health_every = health_every
        self.seconds = min(seconds, MAX_SECONDS)
        self.max_requests = min(max_requests, MAX_REQUESTS)
        self._lock, self._stop = threading.Lock(), threading.Event()
        self.route(*servers)
        self._requests, self._marks = [], []
        self._jobs = queue.Queue()
        self._pending = {}  # target URL -> its requests queued or in flight
        self._threads, self._t0, self.report = [], None, None

    def route(self, *servers, mix=None):
        """Send the next requests to these servers (a deploy switches them),
        and with `mix`, send those requests instead."""
        targets = []
        for server in servers:
            url = _check_loopback(getattr(server, "url", server))
            targets.append((url, getattr(server, "name", url)))
        with self._lock:  # a user who arrives now counts on the old servers or the new ones
            self.targets = tuple(targets)
            self.mix = tuple(mix or self.mix)

    def now(self):
        return time.monotonic() - self._t0

    def start(self):
        settings.refuse_in_self_checks("load")
        self._t0 = time.monotonic()
        self._threads = [threading.Thread(target=self._arrivals, daemon=True)]
        self._threads += [threading.Thread(target=self._client, daemon=True)
                          for _ in range(self.clients)]
        if self.health_every:
            self._threads.append(threading.Thread(target=self._health_checks, daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def _arrivals(self):
        """A user every 1/rate seconds: request n is due at n/rate, on server n (in
        turn), with the next request of the mix for that server."""
        for n in range(self.max_requests):
            due = n / self.rate
            if due > self.seconds or self._stop.wait(max(0.0, due - self.now())):
                break
            with self._lock:  # the server and its pending count at once: drain() sees it
                targets, mix = self.targets, self.mix
                target, release = targets[n % len(targets)]
                self._pending[target] = self._pending.get(target, 0) + 1
            self._jobs.put((due, target, release, mix[(n // len(targets)) % len(mix)]))
        for _ in range(self.clients):
            self._jobs.put(None)  # no more users: each client ends once the queue is empty

    def _client(self):
        while True:
            job = self._jobs.get()
            if job is None or self._stop.is_set():
                return
            due, target, release, (method, path, body) = job
            self._record(due, target, release, path, self._send(method, target + path, body),
                         method)
            with self._lock:
                self._pending[target] -= 1

    def _health_checks(self):
        while not self._stop.wait(self.health_every) and self.now() <= self.seconds:
            for target, release in self.targets:
                due = self.now()
                self._record(due, target, release, HEALTH,
                             self._send("GET", target + HEALTH, None, timeout=2))

    def _record(self, due, target, release, path, status, method="GET"):
        with self._lock:  # its time runs from when the user arrived, waiting for a client included
            self._requests.append(Request(due, self.now() - due, status, target, release, path,
                                          method))

    def _send(self, method, url, body, timeout=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code
        except (OSError, ValueError):  # refused, reset, timed out
            return 0

    def drain(self, server, timeout=30):
        """After a route() without `server`: wait until every request already sent its
        way is answered (users that arrived before the switch), so it can be stopped
        without failing them. True once drained."""
        target = _check_loopback(getattr(server, "url", server))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending.get(target):
                    return True
            self._stop.wait(0.02)
        return False

    def wait(self, seconds):
        """Let the traffic flow for `seconds` (less if every client has finished)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and any(t.is_alive() for t in self._threads[1:]):
            self._stop.wait(min(0.05, max(0, deadline - time.monotonic())))

    def wait_for_writes(self, count=1, timeout=30):
        """Let the traffic flow until `count` more writes (the mix's POSTs and PATCHes) are
        answered: a fixed time is too short on a machine too busy to send them. True once seen."""
        def answered():
            with self._lock:
                return sum(r.write and not r.failed for r in self._requests)
        goal, deadline = answered() + count, time.monotonic() + timeout
        while answered() < goal and time.monotonic() < deadline:
            if not any(t.is_alive() for t in self._threads[1:]):
                return False
            self._stop.wait(0.05)
        return answered() >= goal

    @contextlib.contextmanager
    def mark(self, label):
        """Mark what runs inside the block (a migration) on the timeline."""
        start = self.now()
        try:
            yield
        finally:
            self._marks.append((label, start, self.now()))

    def add_mark(self, label, start, end):
        """A span measured elsewhere, in time.monotonic() seconds."""
        self._marks.append((label, start - self._t0, end - self._t0))

    def stop(self):
        """No more users; the requests in flight end (answered or timed out)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        seconds = self.now()
        with self._lock:
            requests = sorted(self._requests, key=lambda r: r.start)
        self.report = Report(requests, sorted(self._marks, key=lambda m: m[1]), seconds, self._t0)
        return self.report

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class LongReport:
    """An analyst's report: one transaction that reads `deals` and then keeps
    its ACCESS SHARE lock (as a slow query or a session left idle in
    transaction does) until `seconds` after another session started waiting
    for a lock on the table: the migration. So the scenario is the same however
    long that migration's `flask` process takes to start on this machine.
    Started in the background; it returns once the lock is held."""

    WAITERS = """SELECT count(*) FROM pg_locks
                 WHERE locktype = 'relation' AND relation = to_regclass(:table) AND NOT granted"""

    def __init__(self, url, seconds, table="deals"):
        settings.refuse_in_self_checks("long transaction")
        self.seconds, self.started, self.ended, self._error = seconds, None, None, None
        self._engine = sa.create_engine(url, poolclass=sa.pool.NullPool,
                                        connect_args={"application_name": "report"})
        holding = threading.Event()

        def run():
            try:
                with self._engine.connect() as conn, conn.begin():
                    conn.execute(sa.text(f"SELECT count(*) FROM {table}"))
                    self.started = time.monotonic()
                    holding.set()
                    with self._engine.connect() as watch:
                        deadline = time.monotonic() + 60  # no migration came: end anyway
                        while time.monotonic() < deadline and not watch.execute(
                                sa.text(self.WAITERS), {"table": table}).scalar():
                            watch.rollback()  # a fresh snapshot of pg_locks each time
                            time.sleep(0.005)
                    time.sleep(seconds)  # idle in transaction: the lock stays
            except Exception as exc:  # shown by wait()
                self._error = exc
            finally:
                self.ended = time.monotonic()
                holding.set()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        holding.wait(60)

    def wait(self):
        self._thread.join(self.seconds + 70)
        self._engine.dispose()
        if self._error:
            raise self._error
        return self


class IdleSession:
    """A session someone forgot: it ran `sql` in a transaction and then sat
    there, `idle in transaction`, keeping every lock the statement took (a psql
    window left open over lunch). Its session is called `name` in
    pg_stat_activity.

        forgotten = traffic.IdleSession(lab09.url, "UPDATE deals SET title = title WHERE id = 1")
        forgotten.pid      # its backend's pid (what pg_blocking_pids() names)
        forgotten.poke()   # its next statement: "ok", or the error that ended it
        forgotten.close()  # rolled back (if it is still there)
    """

    def __init__(self, url, sql, name="psql"):
        settings.refuse_in_self_checks("idle session")
        self._engine = sa.create_engine(url, poolclass=sa.pool.NullPool,
                                        connect_args={"application_name": name})
        self._conn = self._engine.connect()
        self.pid = self._conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        if self._conn.dialect.name == "postgresql":
            # not bound by a statement_timeout meant for the app (lab 09's 1 s): its statement
            # may wait behind autovacuum, which gives way only after deadlock_timeout (1 s)
            self._conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
        self._conn.exec_driver_sql(sql)  # the transaction stays open: idle in transaction

    def poke(self):
        """Send its next statement: "ok" if the session is still there, or the
        first line of the error its user sees."""
        try:
            self._conn.exec_driver_sql("SELECT 1")
            return "ok"
        except sa.exc.DBAPIError as exc:
            self._conn.invalidate()
            return str(exc.orig).strip().splitlines()[0]

    def close(self):
        """Roll it back and close it; a session the server already ended is just dropped."""
        try:
            self._conn.close()
        except sa.exc.DBAPIError:
            with contextlib.suppress(sa.exc.ResourceClosedError):
                self._conn.invalidate()
        self._engine.dispose()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@contextlib.contextmanager
def long_report(load, url, seconds):
    """A LongReport around the block (it ends `seconds` after the block's
    migration began to wait for its lock), marked on `load`'s timeline."""
    report = LongReport(url, seconds)
    try:
        yield report
    finally:
        report.wait()
        load.add_mark("report transaction", report.started, report.ended)


def verdict(claim, holds):
    """Print a claim and whether it holds: the stable part of a measurement."""
    print(f"{claim}: {bool(holds)}")
