"""What starting costs: the embedded server (cold, warm, attaching to it) and the
CLI floor, one `flask` command, which every `!flask` of a lab pays."""
import subprocess
import sys

from tools import scenarios
from tools.bench.measure import child_env, timed

SERVER_START = ("import time; from labapp.server import pgserver; t = time.perf_counter(); "
                "pgserver.server_uri(); print(time.perf_counter() - t)")
SERVER_STOP = "from labapp.server import pgserver; pgserver.stop()"


def bench_server(table, tmp):
    """Cold: initdb + start on a fresh LABAPP_PGDATA. Warm: start after a clean stop.
    Attach: a second process finds it running. Times measured inside the process."""
    env = child_env(DATABASE_URL=None, LABAPP_PGDATA=tmp / "pg")
    results = {}
    for label in ("cold", "attach", "stop", "warm"):
        if label == "stop":
            subprocess.run([sys.executable, "-c", SERVER_STOP], env=env, check=True)
            continue
        proc = subprocess.run([sys.executable, "-c", SERVER_START], env=env, cwd=scenarios.ROOT,
                              capture_output=True, text=True, check=True)
        results[label] = float(proc.stdout.strip().splitlines()[-1])
    subprocess.run([sys.executable, "-c", SERVER_STOP], env=env)
    table.row("server cold start (initdb + start)", results["cold"])
    table.row("server warm start (stopped, pgdata kept)", results["warm"])
    table.row("server attach (already running)", results["attach"])


def cli_floor(table):
    """One `flask --help` (interpreter + imports + app factory): best of 3."""
    best = min(timed(["flask", "--app", "labapp", "--help"], cwd=scenarios.ROOT, env=child_env())[0]
               for _ in range(3))
    table.row("CLI floor: one `flask --app labapp --help`", best, "best of 3")
    return best
