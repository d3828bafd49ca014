"""`flask ARGS` for the tests, in a process forked from one that has imported the app.

A `flask` process spends ~0.6 s of CPU importing SQLAlchemy, Alembic and the kit
before it runs a command, and the suite runs hundreds. Here one server process per
pytest worker imports them once (nothing else: no thread, no connection, no
server), then forks a child for each command (labapp.server.processes.flask_forked:
a `flask` process in all a test can see, tests/test_flask_fork.py).

Tests about the process itself (what `flask` imports, how it starts, a signal)
start the real executable (helpers.run_flask(..., fresh=True), or their own Popen).
"""
import atexit
import json
import subprocess
import sys

SERVER = r'''
import json, subprocess, sys

import flask.cli                     # noqa: F401  (what every `flask` command imports: once)
import flask_migrate.cli             # noqa: F401  (Flask-Migrate's `db` group, and Alembic)
import labapp.app                    # noqa: F401  (the kit's app, commands and models)
import alembic.command               # noqa: F401
from labapp.server import processes

print("ready", flush=True)
for line in sys.stdin:
    ask = json.loads(line)
    try:
        proc = processes.flask_forked(ask["args"], ask["cwd"], ask["env"], ask["input"], ask["timeout"])
        reply = {"returncode": proc.returncode, "output": proc.output}
    except subprocess.TimeoutExpired as exc:
        reply = {"timeout": True, "output": exc.output}
    print(json.dumps(reply), flush=True)
'''

_server = None


def _start(env):
    global _server
    _server = subprocess.Popen([sys.executable, "-c", SERVER], env=env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, start_new_session=True)
    if _server.stdout.readline().strip() != "ready":
        raise RuntimeError("the flask fork server did not start")
    atexit.register(stop)


def stop():
    """Stop this worker's server (at exit)."""
    global _server
    if _server and _server.poll() is None:
        _server.stdin.close()
        try:
            _server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _server.kill()
    _server = None


def run(args, cwd, env, input=None, timeout=120):
    """`flask ARGS` in `cwd` with exactly `env`: a CompletedProcess whose `.output` (and
    `.stdout`) holds stdout and stderr merged; raises subprocess.TimeoutExpired as
    subprocess.run would."""
    if _server is None or _server.poll() is not None:
        _start(env)
    _server.stdin.write(json.dumps({"args": [str(a) for a in args], "cwd": str(cwd), "env": dict(env),
                                    "input": input or "", "timeout": timeout}) + "\n")
    _server.stdin.flush()
    reply = json.loads(_server.stdout.readline())
    if reply.get("timeout"):
        raise subprocess.TimeoutExpired(["flask", *args], timeout, output=reply["output"])
    proc = subprocess.CompletedProcess(["flask", *args], reply["returncode"], stdout=reply["output"])
    proc.output = reply["output"]
    return proc
