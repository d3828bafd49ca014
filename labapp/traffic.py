"""Traffic: what the app's users feel while a migration runs.

    with traffic.Load(v1) as load:            # clients start sending requests to release v1
        load.wait(1)                          # a second of ordinary traffic
        with load.mark("migration"):          # marked on the timeline
            !flask db upgrade
    load.report.plot()                        # latency of every request over time

A small load generator, bounded on every side so it cannot run away in a
lab: at most 16 client threads, a duration limit (it stops by itself), a cap
on requests (and so on memory), loopback only (it refuses any URL that is not
http://127.0.0.1:...). Each client sends its next request as soon as the last
one answered, after a short pause. Every request's start, latency and status
is kept, and the release it was sent to (servers restart on new ports, so a
request is told by its release, not its URL); a request the server did not
answer within the client's timeout, or refused, has status 0 and counts as
failed, like one answered with a 5xx.

Times vary from run to run and machine to machine: a lab prints verdicts with
wide margins (`verdict(...)`), and the numbers go into the plot and into
`make bench`.
"""
import contextlib
import itertools
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from labapp import config
from labapp.errors import LabError

MAX_CLIENTS = 16
MAX_SECONDS = 600      # no load runs longer, whatever its caller forgets
MAX_REQUESTS = 50_000
# Seconds a client waits between two requests: four clients are a busy app's ~80 requests
# a second, and leave the CPU to the migration (at 0.01 the load took half a core).
PAUSE = 0.05

READS = (("GET", "/api/deals?limit=5", None),)


def sales(currency, every=4):
    """Mostly reads, and one new deal in `currency` every `every` requests."""
    deal = {"contact_id": 1, "title": "Live deal", "amount": "99.00", "currency": currency}
    return READS * (every - 1) + (("POST", "/api/deals", deal),)


@dataclass
class Request:
    start: float    # seconds since the load began
    latency: float  # seconds until the answer (or the timeout)
    status: int     # HTTP status; 0: no answer (timeout, refused)
    target: str     # the server's URL
    release: str    # the release that server serves ("v1"; the URL for a bare URL)

    @property
    def failed(self):
        return self.status == 0 or self.status >= 500


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

    def summary(self):
        return {"requests": len(self.requests), "failures": self.failures,
                "p50_ms": round(self.p50 * 1000, 1), "p99_ms": round(self.p99 * 1000, 1),
                "max_ms": round(self.max * 1000, 1)}

    def summary_line(self):
        s = self.summary()
        return (f"{s['requests']} requests, {s['failures']} failed, p50 {s['p50_ms']} ms, "
                f"p99 {s['p99_ms']} ms, max {s['max_ms']} ms")

    def plot(self, title="", path=None):
        """Every request: when it started (x) and how long it took (y); failures
        in red; each mark as a shaded span. Shown inline, or saved as PNG to `path`."""
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 3))
        colours = itertools.cycle(["tab:orange", "tab:purple", "tab:green", "tab:brown"])
        for label, start, end in self.marks:
            ax.axvspan(start, max(end, start + 0.02), alpha=0.25, color=next(colours), label=label)
        ok = [r for r in self.requests if not r.failed]
        bad = [r for r in self.requests if r.failed]
        ax.scatter([r.start for r in ok], [r.latency * 1000 for r in ok], s=6, label="answered")
        if bad:
            ax.scatter([r.start for r in bad], [r.latency * 1000 for r in bad], s=14, marker="x",
                       color="tab:red", label="failed")
        ax.set_yscale("log")
        ax.set_xlabel("seconds since the traffic began")
        ax.set_ylabel("latency (ms, log)")
        ax.set_title(f"{title}\n{self.summary_line()}" if title else self.summary_line(),
                     fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
        fig.tight_layout()
        if path:
            fig.savefig(path, format="png", dpi=80)
            plt.close(fig)
        else:
            plt.show()


class Load:
    """Clients sending requests to one or more servers (a load balancer's
    round robin) until stopped, or for `seconds` at most. A server is an
    app server (labapp.appserver: its release is known) or a URL."""

    def __init__(self, *servers, clients=4, seconds=30, max_requests=10_000, timeout=10,
                 mix=READS):
        if not 1 <= clients <= MAX_CLIENTS:
            raise LabError(f"clients must be between 1 and {MAX_CLIENTS}, not {clients}")
        if not servers:
            raise LabError("give the load at least one server")
        self.clients, self.timeout, self.mix = clients, timeout, tuple(mix)
        self.seconds = min(seconds, MAX_SECONDS)
        self.max_requests = min(max_requests, MAX_REQUESTS)
        self.route(*servers)
        self._requests, self._marks, self._sent = [], [], 0
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._threads, self._t0, self.report = [], None, None

    def route(self, *servers, mix=None):
        """Send the next requests to these servers (a deploy switches them),
        and with `mix`, send those requests instead."""
        targets = []
        for server in servers:
            url = _check_loopback(getattr(server, "url", server))
            targets.append((url, getattr(server, "name", url)))
        self.targets = tuple(targets)
        self.mix = tuple(mix or self.mix)

    def now(self):
        return time.monotonic() - self._t0

    def start(self):
        config.refuse_if_self_checks_only("load")
        self._t0 = time.monotonic()
        self._threads = [threading.Thread(target=self._client, args=(n,), daemon=True)
                         for n in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def _client(self, n):
        for sent in itertools.count(n):
            if self._stop.is_set() or self.now() > self.seconds:
                return
            with self._lock:  # take a slot first: clients never send more than the cap
                if self._sent >= self.max_requests:
                    return
                self._sent += 1
            targets = self.targets
            target, release = targets[sent % len(targets)]
            mix = self.mix
            method, path, body = mix[sent % len(mix)]
            start = self.now()
            status = self._send(method, target + path, body)
            with self._lock:
                self._requests.append(Request(start, self.now() - start, status, target, release))
            self._stop.wait(PAUSE)

    def _send(self, method, url, body):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code
        except (OSError, ValueError):  # refused, reset, timed out
            return 0

    def wait(self, seconds):
        """Let the traffic flow for `seconds` (less if every client has finished)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and any(t.is_alive() for t in self._threads):
            self._stop.wait(min(0.05, max(0, deadline - time.monotonic())))

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
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        seconds = self.now()
        with self._lock:
            requests = sorted(self._requests, key=lambda r: r.start)
        self.report = Report(requests, sorted(self._marks, key=lambda m: m[1]), seconds)
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
        import sqlalchemy as sa

        config.refuse_if_self_checks_only("long transaction")
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
