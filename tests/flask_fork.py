"""`flask ARGS` for the tests, in a process forked from one that has imported the app.

A `flask` process spends ~0.6 s of CPU importing SQLAlchemy, Alembic and the kit
before it runs a command, and the suite runs hundreds. Here one server process per
pytest worker imports them once (nothing else: no thread, no connection, no
server), then forks a child for each command. The child is a `flask` process in
everything a test can see: its own pid and process group, the given folder and
environment (settings are read from os.environ when used, labapp.settings), stdin
from the test's input, stdout and stderr merged into one file as a pipe would
(stdout block-buffered, stderr not), flask's own `main()` parsing the arguments,
and its exit code. What it shares is only what was imported before the fork.

Tests about the process itself (what `flask` imports, how it starts, a signal)
start the real executable (helpers.run_flask(..., fresh=True), or their own Popen).
"""
import atexit
import json
import os
import subprocess
import sys
import tempfile

SERVER = r'''
import io, json, os, signal, sys, time

import flask.cli                     # what every `flask` command imports: do it once
import flask_migrate.cli             # noqa: F401  (Flask-Migrate's `db` group, and Alembic)
import labapp.app                    # noqa: F401  (the kit's app, commands and models)
import alembic.command               # noqa: F401

requests, replies = sys.stdin.buffer, sys.stdout.buffer
print("ready", flush=True)
for line in requests:
    ask = json.loads(line)
    pid = os.fork()
    if pid == 0:  # the command's process
        os.setpgid(0, 0)
        os.chdir(ask["cwd"])
        os.environ.clear()
        os.environ.update(ask["env"])
        fd_in = os.open(ask["input"], os.O_RDONLY)
        fd_out = os.open(ask["output"], os.O_WRONLY | os.O_APPEND)
        os.dup2(fd_in, 0)
        os.dup2(fd_out, 1)
        os.dup2(fd_out, 2)
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False))
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True)
        sys.argv = ["flask", *ask["args"]]
        sys.path[0] = os.path.join(sys.prefix, "bin")  # as for the `flask` console script
        code = 0
        try:
            flask.cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, (int, type(None))):
                print(exc.code, file=sys.stderr)
        except BaseException:  # what the interpreter does with it: the excepthook (the kit's
            sys.excepthook(*sys.exc_info())  # prints a LabError in one line), exit code 1
            code = 1
        try:
            import atexit
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    deadline = time.monotonic() + ask["timeout"]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            reply = {"returncode": os.waitstatus_to_exitcode(status)}
            break
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            reply = {"timeout": True}
            break
        time.sleep(0.005)
    replies.write((json.dumps(reply) + "\n").encode())
    replies.flush()
'''

_server = None


def _start(env):
    global _server
    _server = subprocess.Popen([sys.executable, "-c", SERVER], env=env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, start_new_session=True)
    if _server.stdout.readline().strip() != "ready":
        raise RuntimeError("the flask fork server did not start")
    atexit.register(_stop)


def _stop():
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
    with tempfile.TemporaryDirectory(prefix="labapp-flask-") as tmp:
        given, output = os.path.join(tmp, "input"), os.path.join(tmp, "output")
        with open(given, "w") as f:
            f.write(input or "")
        open(output, "w").close()
        _server.stdin.write(json.dumps({"args": [str(a) for a in args], "cwd": str(cwd),
                                        "env": dict(env), "input": given, "output": output,
                                        "timeout": timeout}) + "\n")
        _server.stdin.flush()
        reply = json.loads(_server.stdout.readline())
        with open(output, encoding="utf-8", errors="replace") as f:
            text = f.read()
    if reply.get("timeout"):
        raise subprocess.TimeoutExpired(["flask", *args], timeout, output=text)
    proc = subprocess.CompletedProcess(["flask", *args], reply["returncode"], stdout=text)
    proc.output = text
    return proc


def stop():
    """Stop this worker's server (pytest's session end does, and so does exit)."""
    _stop()

