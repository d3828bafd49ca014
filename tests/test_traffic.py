"""The load generator (labapp.live.traffic): bounded, loopback only, and honest
about failures, against the real app served by waitress."""
import http.server
import threading
import time
import types

import pytest

from helpers import SAMPLE, postgres_only
from labapp import db
from labapp.crm import data
from labapp.live import appserver, locktrace, timeline, traffic
from labapp.runtime import labs, workspace
from labapp.errors import LabError


@pytest.mark.parametrize("url", ["http://example.com:80", "http://10.0.0.1:5000",
                                 "https://127.0.0.1:5000", "http://localhost.evil:1"])
def test_traffic_goes_to_this_machine_only(url):
    with pytest.raises(LabError, match="127.0.0.1"):
        traffic.Load(url)


@pytest.mark.parametrize("clients", [0, 17, 100])
def test_the_number_of_clients_is_bounded(clients):
    with pytest.raises(LabError, match="between 1 and 16"):
        traffic.Load("http://127.0.0.1:1", clients=clients)


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert traffic.percentile(values, 0.5) == 50 and traffic.percentile(values, 0.99) == 99
    assert traffic.percentile([], 0.5) == 0


def test_a_server_that_is_not_there_fails_every_request():
    with traffic.Load("http://127.0.0.1:9", clients=2, max_requests=6, timeout=1) as load:
        load.wait(10)  # ends early: the request cap stops the clients
    report = load.report
    assert len(report.requests) == 6 and report.failures == 6
    assert {r.status for r in report.requests} == {0}


@postgres_only
def test_requests_to_the_live_app_are_recorded_with_their_status_and_marks(tmp_path, schema,
                                                                         db_url):
    with schema.app_context(), db.engine.begin() as conn:
        data.load(conn, SAMPLE)
    lab = types.SimpleNamespace(workspace=workspace.build(tmp_path / "ws", labs.LabSpec("t", "t", "t")))
    server = appserver.start(lab, appserver.release(lab, "v1").name)
    try:
        with traffic.Load(server.url, clients=3, max_requests=40,
                          mix=traffic.sales("BTC")) as load:  # v1 does not know BTC: a 400
            with load.mark("nothing"):
                load.wait(30)
    finally:
        server.stop()
    report = load.report
    assert len(report.requests) == 40 and report.failures == 0
    statuses = sorted({r.status for r in report.requests})
    assert statuses == [200, 400]
    assert report.mark("nothing")[0] == pytest.approx(0, abs=1)
    assert set(report.summary()) == {"requests", "failures", "p50_ms", "p99_ms", "max_ms"}
    report.plot("test", path=tmp_path / "timeline.png")
    assert (tmp_path / "timeline.png").read_bytes()[:4] == b"\x89PNG"


def test_the_timeline_shows_each_releases_failures_and_each_traces_statements(tmp_path):
    """Failed requests keep their release's colour and name ("v2 failed"), so who
    failed when reads at a glance; a list of saved traces (one per migration) gives
    a lane per statement of each, named after its file."""
    report = traffic.Report([traffic.Request(0.1, 0.01, 500, "u", "v2", "/api/deals"),
                             traffic.Request(0.2, 0.01, 200, "u", "v1", "/api/deals"),
                             traffic.Request(0.3, 0.01, 0, "u", "v1", "/api/deals"),
                             traffic.Request(0.4, 0.01, 200, "u", "v2", traffic.HEALTH)],
                            seconds=1, t0=100.0)
    sets = {label: (marker, colour) for label, marker, _, colour, _ in timeline.point_sets(report)}
    assert list(sets) == ["v1", "v1 failed", "v2 health check", "v2 failed"]
    assert sets["v1"][1] == sets["v1 failed"][1] != sets["v2 failed"][1] == sets["v2 health check"][1]
    assert sets["v1 failed"][0] == sets["v2 failed"][0] == "x"

    def saved(name, sql):
        step = locktrace.Step(0, sql, 100.2, 100.3, transaction=0,
                              locks=[locktrace.Lock("table", "deals", "ACCESS EXCLUSIVE", 100.2, 100.4)])
        trace = locktrace.Trace("upgrade head", 100.1, 100.5, steps=[step],
                                transactions=[locktrace.Transaction(0, 100.2, 100.4, "COMMIT")])
        trace.save(tmp_path / name)
        return tmp_path / name

    first = saved("0002.json", "ALTER TABLE deals ADD COLUMN name VARCHAR(200)")
    second = saved("0004.json", "ALTER TABLE deals DROP COLUMN title")
    assert [label for label, _, _ in timeline.lanes(report, first)] == [
        "#1 ALTER TABLE deals ADD COLUMN name VARCHAR(200)"]
    assert [label for label, _, _ in timeline.lanes(report, [first, second])] == [
        "0002 #1 ALTER TABLE deals ADD COLUMN name VARCHAR…", "0004 #1 ALTER TABLE deals DROP COLUMN title"]
    report.plot("two migrations", trace=[first, second], path=tmp_path / "timeline.png")
    assert (tmp_path / "timeline.png").read_bytes()[:4] == b"\x89PNG"


class _Slow(http.server.BaseHTTPRequestHandler):
    """Answers every GET after 20 ms: one client serves at most 50 users a second."""

    def do_GET(self):
        time.sleep(0.02)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):  # a write: answered, or refused with a 500 where the path says so
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(500 if self.server.fail_writes else 201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _tiny_server(fail_writes=False):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    server.fail_writes = fail_writes
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.mark.parametrize("drained", [False, True])
def test_a_server_taken_out_of_the_route_still_gets_its_backlog_until_drained(drained):
    """A user picks a server when they arrive (as a balancer's queue does): after
    route() without it, the users already waiting for it still go there. Stopped
    at once, it fails them; after drain(), it fails none (lab 09's Exercise 3)."""
    old, old_url = _tiny_server()
    new, new_url = _tiny_server()
    try:
        # 200 users a second, one client: about 50 answered, so a backlog builds for `old`
        with traffic.Load(old_url, rate=200, clients=1, max_requests=300, timeout=2) as load:
            load.wait(0.3)
            load.route(new_url)
            if drained:
                assert load.drain(old_url)
            old.shutdown()
            old.server_close()  # stopped: its port now refuses
            load.wait(0.5)
    finally:
        old.server_close()
        new.shutdown()
        new.server_close()
    failed = [r for r in load.report.requests if r.failed]
    assert {r.release for r in load.report.requests} == {old_url, new_url}
    if drained:
        assert failed == []
    else:
        assert failed and {r.release for r in failed} == {old_url}


@pytest.mark.parametrize("fail_writes", [False, True])
def test_waiting_for_writes_waits_until_that_many_more_are_answered(fail_writes):
    """Lab 09 lets its CHF sales flow until some are answered, not for a fixed time (too
    short on a busy machine): a write that failed is not an answered one."""
    server, url = _tiny_server(fail_writes)
    try:
        with traffic.Load(url, mix=traffic.sales("CHF"), timeout=2) as load:
            assert load.wait_for_writes(3, timeout=1 if fail_writes else 30) is not fail_writes
    finally:
        server.shutdown()
        server.server_close()
    answered = sum(r.method == "POST" and not r.failed for r in load.report.requests)
    assert answered == 0 if fail_writes else answered >= 3
