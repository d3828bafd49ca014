"""A room on one PostgreSQL server (labapp.room.roles) and the instructor's live view
(labapp.room.progress), on the test server with role and learner names unique to
this run, dropped afterwards."""
import json
import re

import nbformat
import psycopg2
import pytest
from sqlalchemy.engine import make_url

from helpers import flask_in, learner_at, postgres_only, rows, run_flask
from labapp import create_app
from labapp.live import appserver, traffic
from labapp.room import progress, roles as room
from labapp.runtime import lab, labs, notebooks
from labapp.server import config, database, learners
from labapp.runtime import workspace
from labapp.errors import LabError

pytestmark = postgres_only


def as_learner(monkeypatch, name, url):
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("LABAPP_LEARNER", name)


def test_a_learner_cannot_open_or_drop_anothers_database(names, admin, monkeypatch, tmp_path):
    alice, bob = names[:2]
    prepared = room.prepare([alice, bob], out=tmp_path / "room.json")
    assert json.loads((tmp_path / "room.json").read_text())["learners"][alice]["url"] == prepared[alice]["url"]
    assert oct((tmp_path / "room.json").stat().st_mode & 0o777) == "0o600"
    spec, _ = labs.get("lab02")

    as_learner(monkeypatch, alice, prepared[alice]["url"])
    alices = lab.Lab(spec, notebooks=tmp_path / "alice").reset()
    alices.sql("CREATE TABLE mine (who text); INSERT INTO mine VALUES ('alice')")
    assert alices.database == f"{alice}__lab02"

    as_learner(monkeypatch, bob, prepared[bob]["url"])
    into_alices = make_url(prepared[bob]["url"]).set(database=alices.database)
    with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
        psycopg2.connect(into_alices.set(drivername="postgresql").render_as_string(False),
                         connect_timeout=5).close()
    with pytest.raises(LabError, match="must be owner"):
        database.drop_database(into_alices.render_as_string(False))
    bobs = lab.Lab(spec, notebooks=tmp_path / "bob").reset()  # drops and re-creates bob's only
    bobs.reset()
    assert bobs.database == f"{bob}__lab02"

    owners = dict(rows(admin, "SELECT datname, pg_get_userbyid(datdba) FROM pg_database"
                              " WHERE datname IN (:a, :b)", a=alices.database, b=bobs.database))
    assert owners == {alices.database: learners.clean(alice), bobs.database: learners.clean(bob)}
    monkeypatch.setenv("DATABASE_URL", admin)
    assert rows(config.database_url(alices.database), "SELECT who FROM mine") == [("alice",)]

    assert room.drop([alice, bob]) == {alice: [alices.database], bob: [bobs.database]}
    assert rows(admin, "SELECT rolname FROM pg_roles WHERE rolname IN (:a, :b)", a=alice, b=bob) == []


def test_a_learner_name_that_is_an_administrator_changes_nothing(admin, names):
    whoami = make_url(admin).username or "postgres"
    with pytest.raises(LabError, match="administer this server"):
        room.prepare([names[0], whoami])
    assert rows(admin, "SELECT 1 FROM pg_roles WHERE rolname = :r", r=names[0]) == []


def test_flask_room_prepare_prints_urls_without_passwords_when_it_writes_them(names, admin, tmp_path):
    """(`flask --app labapp room`: the kit's own app has the instructor's commands, a lab's has not.)"""
    proc = run_flask("room", "prepare", names[0], "--out", str(tmp_path / "room.json"),
                     env={"DATABASE_URL": admin})
    assert proc.returncode == 0, proc.output
    password = json.loads((tmp_path / "room.json").read_text())["learners"][names[0]]["password"]
    assert password not in proc.output and f"role {names[0]}" in proc.output
    again = room.prepare([names[0]], out=tmp_path / "room.json")  # the handed-out URL stays valid
    assert again[names[0]]["password"] == password
    workspace.build(tmp_path / "lab02", labs.get("lab02")[0])
    in_a_lab = flask_in(tmp_path / "lab02", "--help")
    assert in_a_lab.returncode == 0 and "  db " in in_a_lab.output, in_a_lab.output
    assert "  room " not in in_a_lab.output and "  room " in run_flask("--help", env={"DATABASE_URL": admin}).output


# -- the instructor's live view ------------------------------------------------------

def test_progress_shows_each_learner_where_they_are(names, admin, monkeypatch, tmp_path, chain):
    """Three learners of lab 01: not started; set up, no exercise done; exercise 1
    done (its revision 0003 applied). The table comes from lab 01's own self-check cells."""
    absent, idle, halfway = names = names[:3]
    learner_at(tmp_path, idle, admin, chain, None)
    learner_at(tmp_path, halfway, admin, chain, "0003")  # lab 01's end state, upgraded
    ours = "SELECT datname FROM pg_database WHERE datname ~ :p ORDER BY 1"
    before = rows(admin, ours, p="^(" + "|".join(names) + ")")

    runner = create_app({"SQLALCHEMY_DATABASE_URI": admin}).test_cli_runner()
    shown = runner.invoke(args=["room", "progress", "--json", "--labs", "lab01", "--learners",
                                ",".join(names), "--notebooks", str(tmp_path / "{learner}" / "notebooks")])
    assert shown.exit_code == 0, shown.output
    found = json.loads(shown.output)
    states = {name: [e["state"] for e in found[name]["lab01"]] for name in names}
    assert states == {absent: ["not started"] * 3, idle: ["hint"] * 3,
                      halfway: ["passed", "hint", "hint"]}, found
    assert found[idle]["lab01"][0]["hint"].startswith("run the three cells above")
    # lab 01's end state in the files, the database at 0003: 0004 is written, not applied
    assert found[halfway]["lab01"][1]["hint"].startswith("revision 0004 is written but not applied")
    assert rows(admin, ours, p="^(" + "|".join(names) + ")") == before  # the checks made none

    shown = progress.table(found).splitlines()
    assert shown[0].split() == ["learner", "01.1", "01.2", "01.3"]
    assert {line.split()[0]: line.split()[1:] for line in shown[1:4]} == {
        absent: ["·"] * 3, idle: ["❌"] * 3, halfway: ["✅", "❌", "❌"]}


def test_progress_reads_and_never_writes(names, admin, tmp_path):
    """The checks' connections are read-only: a check that tried to write would fail."""
    spec, _ = labs.get("lab02")
    copy = lab.Lab(spec, notebooks=tmp_path / names[0] / "notebooks", learner=learners.clean(names[0])).reset()
    proc = flask_in(copy.workspace, "createdb", env={"PGOPTIONS": progress.READ_ONLY,
                                                     "LABAPP_DATABASE": copy.database + "_x",
                                                     "DATABASE_URL": admin})
    assert proc.returncode == 1 and "read-only transaction" in proc.output, proc.output


WITH_EXERCISES = [spec for spec in labs.LABS if spec.exercises]


@pytest.mark.parametrize("spec", WITH_EXERCISES, ids=lambda spec: spec.name)
def test_progress_plans_exactly_the_labs_self_checks(spec):
    """One column per exercise, in order: the labs' `traffic.verdict(...)` lines report
    measurements and are no self-checks (lab 07 once planned 8 checks for 3 exercises)."""
    solved = nbformat.read(notebooks.source() / spec.copies()[-1][0], as_version=4)
    exercises = [int(n) for cell in solved.cells if cell.cell_type == "markdown"
                 for n in re.findall(r"\*\*Exercise (\d+)", cell.source)]
    _, planned = progress.plan(spec)
    assert [p.title for p in planned] == [f"Exercise {n}" for n in exercises]
    assert all("check.verdict(" in p.source for p in planned)


@pytest.fixture(scope="module")
def room_checker():
    """One checking process for every lab's check, as a room has it."""
    with progress.Checker(timeout=120) as checker:
        yield checker


@pytest.mark.parametrize("name", [s.name for s in WITH_EXERCISES if s.createdb])
def test_progress_of_a_lab_just_set_up_gives_hints_and_starts_nothing(names, admin, tmp_path, name,
                                                                      room_checker):
    """A learner who has run a lab's setup cell and nothing more: each check gives a
    hint, not an error, and no app server or load starts (labs 07-08's checks that
    judge live measurements show the kernel's own recorded verdict instead)."""
    spec, _ = labs.get(name)
    learner = learners.clean(names[0])
    copy = lab.Lab(spec, notebooks=tmp_path / "notebooks", learner=learner).reset()
    found = room_checker.run(name, learner, tmp_path / "notebooks")
    # (other tests' app servers may come and go meanwhile: ours would serve from tmp_path)
    assert not (copy.workspace / "servers").exists() and not (copy.workspace / "releases").exists()
    assert [entry["state"] for entry in found] == ["hint"] * 3, found
    live = [p.title for p in progress.plan(spec)[1] if p.live]
    assert [e["hint"] for e in found if e["title"] in live] == [
        "run this exercise's self-check cell in the lab"] * len(live)
    database.drop_database(copy.url, missing_ok=True)


def test_a_self_check_run_starts_no_server_and_no_load(monkeypatch, tmp_path):
    monkeypatch.setenv("LABAPP_SELF_CHECKS_ONLY", "1")
    with pytest.raises(LabError, match="starts no app server"):
        appserver.start(lab.Lab(labs.get("lab07")[0], notebooks=tmp_path), "v1")
    with pytest.raises(LabError, match="starts no load"):
        traffic.Load("http://127.0.0.1:1").start()
