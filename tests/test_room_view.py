"""The instructor's live view keeps up with a room (labapp.room.progress): ONE checking
process runs every learner's checks (not one Python process per learner x lab), and
one learner's state never leaks into the next one's verdicts there; the table is
timestamped, lists every learner on the hub's roster, started or not, and shows
each learner's hint, not only --json. On the test server, with names unique to this
run, dropped afterwards. (The refresh time for 20 learners is `make bench-room`'s.)"""
import re
import time
from pathlib import Path


from helpers import flask_in, learner_at, postgres_only, rows
from labapp import create_app
from labapp.room import progress, roster
from labapp.runtime import lab, labs
from labapp.server import config, database, learners

pytestmark = postgres_only


def settled(names, notebooks):
    """Wait until the learners' fingerprints stop moving: PostgreSQL's statistics of their
    set-up (what a refresh compares) reach the view a second or so late, on a busy machine
    later; a change that arrives between two refreshes is a change, and is rechecked."""
    spec, _ = labs.get("lab01")
    marks = None
    for _ in range(30):
        now = [progress.fingerprint(spec, learners.clean(n), Path(notebooks.format(learner=n))) for n in names]
        if now == marks:
            return
        marks = now
        time.sleep(1)
    raise AssertionError("the learners' fingerprints kept changing with nobody working")


def test_one_process_checks_the_whole_room_and_nothing_leaks_between_learners(
        names, admin, tmp_path, chain, monkeypatch):
    halfway, idle, done = names = names[:3]
    learner_at(tmp_path, halfway, admin, chain, "0003")  # exercise 1 passed
    learner_at(tmp_path, idle, admin, chain, None)       # set up, nothing more
    learner_at(tmp_path, done, admin, chain, "0004")      # exercise 2 too
    started = []
    real_start = progress.Checker._start
    monkeypatch.setattr(progress.Checker, "_start", lambda self: started.append(1) or real_start(self))
    found = progress.survey(names, notebooks=str(tmp_path / "{learner}" / "notebooks"), only=["lab01"])
    assert len(started) == 1, "one checking process for the room"
    states = {name: [e["state"] for e in found[name]["lab01"]] for name in names}
    assert states == {halfway: ["passed", "hint", "hint"], idle: ["hint"] * 3,
                      done: ["hint", "passed", "hint"]}, found  # (exercise 1 wants 0003 applied alone)
    alone = {name: progress._check_in_child("lab01", learners.clean(name), tmp_path / name / "notebooks", None)
             for name in names}  # each in a process of its own: what one process must give too
    assert alone == {name: found[name]["lab01"] for name in names}
    # the same learners in the other order, in the same process: the same verdicts
    notebooks = str(tmp_path / "{learner}" / "notebooks")
    settled(names, notebooks)
    with progress.Checker() as checker:
        again = progress.survey(list(reversed(names)), checker=checker, only=["lab01"], notebooks=notebooks)
        pid, ran = checker.proc.pid, checker.ran
        assert ran == 3
        # a refresh (--watch) reuses the process, and rechecks only what changed
        assert progress.survey(names, checker=checker, only=["lab01"], notebooks=notebooks) == again
        assert checker.proc.pid == pid and checker.ran == ran  # nothing changed: nothing rechecked
        spec, _ = labs.get("lab01")
        workspace = lab.Lab(spec, notebooks=tmp_path / halfway / "notebooks", learner=learners.clean(halfway)).workspace
        upgrade = flask_in(workspace, "db", "upgrade", "0004", env={
            "LABAPP_DATABASE": learners.namespaced("lab01", learners.clean(halfway)), "DATABASE_URL": admin})
        assert upgrade.returncode == 0, upgrade.output
        for _ in range(20):  # PostgreSQL's statistics report the change within a second or so
            moved = progress.survey(names, checker=checker, only=["lab01"], notebooks=notebooks)
            if checker.ran > ran:
                break
            time.sleep(0.5)
        assert checker.ran == ran + 1, "the learner who moved on was not rechecked"
        assert [e["state"] for e in moved[halfway]["lab01"]] == ["hint", "passed", "hint"]
        assert moved[idle] == again[idle] and moved[done] == again[done]
    assert again == found


def test_databases_and_roles_made_elsewhere_on_the_server_recheck_nobody(names, admin, tmp_path, chain):
    """Every database lists the server-wide catalogs (pg_database, pg_authid, ...) in
    pg_stat_all_tables, with the server's counts: another learner starting a lab or
    joining the hub moves them, and would have rechecked the whole room at each refresh.
    So does autovacuum's ANALYZE of those busy catalogs, which writes their statistics
    into whichever database it visits (pg_statistic). A learner's fingerprint leaves
    both out; their own database dropped and made again (the same counts, maybe not
    the same rows) still moves it."""
    idle, other = names[:2]
    learner_at(tmp_path, idle, admin, chain, None)
    spec, _ = labs.get("lab01")
    folder = tmp_path / idle / "notebooks"
    url = config.database_url(learners.namespaced("lab01", learners.clean(idle)))
    server_wide = ("SELECT sum(n_tup_ins + n_tup_del) FROM pg_stat_all_tables "
                   "WHERE relname IN ('pg_database', 'pg_authid')")
    settled([idle], str(tmp_path / "{learner}" / "notebooks"))
    mark, counts = progress.fingerprint(spec, learners.clean(idle), folder), rows(url, server_wide)
    elsewhere = config.database_url(learners.namespaced("lab02", learners.clean(other)))
    engine = database.server_engine(admin)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{learners.clean(other)}"')
        database.create_database(elsewhere)
        database.drop_database(elsewhere)
        conn.exec_driver_sql(f'DROP ROLE "{learners.clean(other)}"')
    engine.dispose()
    for _ in range(50):  # until the learner's database lists those counts (at once, as a rule)
        if rows(url, server_wide) != counts:
            break
        time.sleep(0.2)
    assert rows(url, server_wide) != counts, "the server-wide counts never moved"
    assert progress.fingerprint(spec, learners.clean(idle), folder) == mark
    analyzed = "SELECT n_tup_ins + n_tup_upd FROM pg_stat_all_tables WHERE relname = 'pg_statistic'"
    counts = rows(url, analyzed)
    rows(url, "ANALYZE pg_database")  # what autovacuum does there, when it likes
    for _ in range(50):
        if rows(url, analyzed) != counts:
            break
        time.sleep(0.2)
    assert rows(url, analyzed) != counts, "ANALYZE wrote no statistics"
    assert progress.fingerprint(spec, learners.clean(idle), folder) == mark
    database.drop_database(url)
    database.create_database(url)
    assert progress.fingerprint(spec, learners.clean(idle), folder) != mark


def test_the_table_is_timestamped_lists_the_whole_roster_and_shows_hints(names, admin, tmp_path, chain):
    halfway, idle, absent = names = names[:3]
    learner_at(tmp_path, halfway, admin, chain, "0003")
    learner_at(tmp_path, idle, admin, chain, None)
    room_roster = roster.write(roster.new(names), tmp_path / "roster.txt")
    runner = create_app({"SQLALCHEMY_DATABASE_URI": admin}).test_cli_runner()
    shown = runner.invoke(args=["room", "progress", "--labs", "lab01", "--roster", str(room_roster),
                                "--notebooks", str(tmp_path / "{learner}" / "notebooks")])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert re.fullmatch(r"Room progress at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: 3 learners, "
                        r"checked in \d+\.\d s", lines[0]), lines[0]
    table = {line.split()[0]: line.split()[1:] for line in lines[3:6]}
    assert table == {halfway: ["✅", "❌", "❌"], idle: ["❌"] * 3, absent: ["·"] * 3}, shown.output
    assert "instructor" not in shown.output  # the roster's admin is no learner
    hints = lines[lines.index("Where each one is (their first exercise not passed):") + 1:]
    assert len(hints) == 2, hints  # not started: nothing to hint
    hints = {line.split()[0]: line for line in hints}
    assert hints[halfway].split()[1:3] == ["01.2", "hint:"]
    assert "revision 0004 is written but not applied" in hints[halfway]
    assert hints[idle].split()[1:3] == ["01.1", "hint:"] and "run the three cells above" in hints[idle]


def test_a_learner_holding_a_lock_or_a_dead_checker_costs_one_check_only(names, admin, tmp_path, chain):
    """A learner mid-migration holds ACCESS EXCLUSIVE on alembic_version: their check
    gives up after the lock timeout with `?` and the reason, instead of stalling the
    room; the next learner is checked as usual. A checking process that died is
    started again for the next check."""
    halfway, idle, _ = names[:3]
    learner_at(tmp_path, halfway, admin, chain, "0003")
    learner_at(tmp_path, idle, admin, chain, None)
    url = config.database_url(learners.namespaced("lab01", learners.clean(halfway)))
    engine = database.quick_engine(url)
    with engine.begin() as holder:  # held until the block ends
        holder.exec_driver_sql("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
        found = progress.survey([halfway, idle], only=["lab01"],
                                notebooks=str(tmp_path / "{learner}" / "notebooks"))
    engine.dispose()
    locked = found[halfway]["lab01"]
    assert {e["state"] for e in locked} <= {"error", "hint"} and "passed" not in str(locked), locked
    assert any("lock timeout" in (e["hint"] or "") for e in locked), locked
    assert [e["state"] for e in found[idle]["lab01"]] == ["hint"] * 3

    with progress.Checker() as checker:
        checker._start()
        checker.proc.kill()  # as a check that crashed the process would
        checker.proc.wait()
        again = checker.run("lab01", learners.clean(halfway), tmp_path / halfway / "notebooks")
    assert [e["state"] for e in again] == ["passed", "hint", "hint"]
