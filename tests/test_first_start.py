"""The embedded server's first start is safe when several processes race for it:
a learner opening two labs at once, `make test -n 3` on a machine that never ran
the kit, a hub starting servers. One process starts it (as root, the wheel also
creates its OS user first), the others wait and attach to that one server.

On a machine that ran the kit before, the wheel's OS user exists, and the race on
`useradd` cannot show. Under CI=true, as root, `make test` runs this file alone
and first, with LABAPP_FRESH_MACHINE=1: the test then deletes that user (nothing
runs as it at that moment) and proves the fresh-machine path on every CI run.
"""
import os
import pwd
import subprocess
import sys

import psutil

from helpers import ROOT
from labapp.server import pgserver
from tools import scenarios

RACERS = 6
# import everything first, say so, then start the server when told to: the start
# itself is what races, not the imports
RACER = """
import sys
from labapp.server import pgserver
import psycopg2
print("ready", flush=True)
sys.stdin.readline()
conn = psycopg2.connect(pgserver.server_uri(), connect_timeout=10)
cursor = conn.cursor()
cursor.execute("SELECT pg_postmaster_start_time()")
print("answers", cursor.fetchone()[0], flush=True)
"""


def fresh_os_user():
    """With LABAPP_FRESH_MACHINE=1, as root: delete the wheel's OS user, so that the
    start below is a fresh machine's. Returns whether the user is now missing."""
    if os.environ.get("LABAPP_FRESH_MACHINE") != "1":
        return False
    try:
        pwd.getpwnam(pgserver.OS_USER)
    except KeyError:
        return True  # a machine that never ran the kit
    running = [p.pid for p in psutil.process_iter(["username"]) if p.info["username"] == pgserver.OS_USER]
    assert not running, (f"processes run as {pgserver.OS_USER} ({running}): stop those servers "
                         "(`make stop` in each clone) to test the fresh-machine path")
    subprocess.run(["userdel", pgserver.OS_USER], check=True, capture_output=True)
    return True


def test_processes_racing_to_start_a_fresh_server_all_attach_to_one(open_tmp):
    fresh = fresh_os_user()
    env = scenarios.environment("DATABASE_URL", LABAPP_PGDATA=open_tmp / "pg")
    racers = [subprocess.Popen([sys.executable, "-c", RACER], cwd=ROOT, env=env, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT) for _ in range(RACERS)]
    try:
        for racer in racers:
            assert racer.stdout.readline().strip() == "ready"
        for racer in racers:  # as close to one instant as processes get
            racer.stdin.write("go\n")
            racer.stdin.flush()
        outputs = [racer.communicate(timeout=120)[0].strip() for racer in racers]
        answered = [line for out in outputs for line in out.splitlines() if line.startswith("answers ")]
        assert len(answered) == RACERS, outputs
        assert len(set(answered)) == 1, answered  # one postmaster, started once
        if fresh:
            pwd.getpwnam(pgserver.OS_USER)  # the wheel made its user again, once
    finally:
        for racer in racers:
            racer.kill()
        subprocess.run([sys.executable, "-c", "from labapp.server import pgserver; pgserver.stop()"],
                       cwd=ROOT, env=env, capture_output=True, timeout=60)
