"""The load generator (labapp.live.traffic): bounded, loopback only, and honest
about failures, against the real app served by waitress."""
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
