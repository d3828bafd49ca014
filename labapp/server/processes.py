"""Background processes started from a workspace (a lab's app servers), found
again by their pidfiles, so that whoever resets the workspace ends them,
whichever process started them (this kernel, an earlier one, `make reset`).

    processes.record(workspace, "v1", pid)      # servers/v1.pid
    processes.end(workspace)                    # end each that still runs; the names

And `flask ARGS` forked from this process (flask_forked), for a process that runs
many commands and has imported the app already: a room's checking process, the tests.
"""
import atexit
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FOLDER = "servers"  # in the workspace: <name>.pid, <name>.port, <name>.log
KIT_PROCESS = "-m labapp."  # in the command line of every process the kit starts this way


def folder(workspace):
    """Where a workspace's background processes keep their pidfiles, port files and logs."""
    return Path(workspace) / FOLDER


def record(workspace, name, pid):
    run = folder(workspace)
    run.mkdir(exist_ok=True)
    (run / f"{name}.pid").write_text(str(pid))


def forget(workspace, name):
    for suffix in (".pid", ".port"):
        (folder(workspace) / f"{name}{suffix}").unlink(missing_ok=True)


def end(workspace, only=None):
    """End every recorded process of `workspace` (or only the one called `only`)
    that still runs as one of the kit's; forget them all. The names ended."""
    run = folder(workspace)
    ended = []
    for pidfile in sorted(run.glob("*.pid")) if run.exists() else []:
        if only not in (None, pidfile.stem):
            continue
        _end(pidfile)
        forget(workspace, pidfile.stem)
        ended.append(pidfile.stem)
    return ended


def _end(pidfile):
    """End the process a pidfile names, if that pid is still one of the kit's."""
    import psutil  # only when there is something to end: not on every reset's import

    try:
        process = psutil.Process(int(pidfile.read_text()))
        if KIT_PROCESS not in " ".join(process.cmdline()):
            return  # the pid was reused by another program
        process.terminate()
        if not _ended(process, timeout=10):
            process.kill()
    except (ValueError, psutil.NoSuchProcess):
        return


def _ended(process, timeout):
    """Has psutil's `process` ended within `timeout` s? A zombie has: the live kernel that
    started it reaps it when it likes, and psutil's wait() would wait out the whole timeout."""
    import psutil  # imported already by _end, its one caller
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def close(proc, timeout=10):
    """End a child we talk to over its stdin: close that (its end-of-input), give it
    `timeout` seconds to finish, then kill it."""
    if proc.stdin and not proc.stdin.closed:
        proc.stdin.close()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- `flask ARGS`, forked from a process that has imported the app --------------------

def flask_forked(args, cwd=None, env=None, input="", timeout=120):
    """`flask ARGS` run by a child forked from this process: a `flask` process in all but
    its start-up (~0.6 s of CPU importing SQLAlchemy, Alembic and the app, which this
    process has done): its own pid and process group, folder `cwd`, exactly `env`,
    stdin `input`, stdout and stderr merged into one file as a pipe would (stdout
    block-buffered, stderr not), Flask's own main(), the excepthook (the kit's prints a
    LabError in one line) and exit code. This process must be single-threaded (a fork
    copies only the calling thread). Returns a CompletedProcess whose .stdout (and
    .output) holds the merged output; raises subprocess.TimeoutExpired after `timeout`."""
    command = ["flask", *map(str, args)]
    with tempfile.TemporaryDirectory(prefix="labapp-flask-") as tmp:
        given, merged = Path(tmp) / "input", Path(tmp) / "output"
        given.write_text(input or "")
        merged.write_text("")
        pid = os.fork()
        if pid == 0:
            try:
                fd_in, fd_out = os.open(given, os.O_RDONLY), os.open(merged, os.O_WRONLY | os.O_APPEND)
            except OSError:
                os._exit(1)
            flask_child(command, cwd, env, (fd_in, fd_out, fd_out))  # never returns
        deadline = time.monotonic() + timeout
        while not (done := os.waitpid(pid, os.WNOHANG))[0]:
            if time.monotonic() > deadline:
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise subprocess.TimeoutExpired(command, timeout, output=merged.read_text(errors="replace"))
            time.sleep(0.005)
        text = merged.read_text(encoding="utf-8", errors="replace")
    proc = subprocess.CompletedProcess(command, os.waitstatus_to_exitcode(done[1]), stdout=text)
    proc.output = text
    return proc


def flask_child(command, cwd, env, fds, on_exit=None):
    """Run `command` (["flask", ARGS]) as a `flask` process would, in this freshly forked
    child, with stdin, stdout and stderr `fds`; then `on_exit(code)`, and exit with it.
    Never returns."""
    code = 1
    try:
        import flask.cli  # what `flask` runs (imported already where this is worth using)

        atexit._clear()  # the forking process's exit handlers are its own, not the command's
        os.setpgid(0, 0)
        if cwd is not None:
            os.chdir(cwd)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        # as the interpreter sets them up: a terminal's stdout is line-buffered, a pipe's not
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=os.isatty(1))
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True,
                                      errors="backslashreplace")
        sys.argv = command
        sys.path[0] = os.path.join(sys.prefix, "bin")  # as for the `flask` console script
        try:
            flask.cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, (int, type(None))):
                print(exc.code, file=sys.stderr)
        except BaseException:  # what the interpreter does with it: the excepthook, exit code 1
            sys.excepthook(*sys.exc_info())
            code = 1
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        if on_exit:
            on_exit(code)
    finally:
        os._exit(code)
