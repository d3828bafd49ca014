"""The kernel nbval starts for the labs (conftest.py): IPython's, whose `!` commands
find kernel_bin/flask first. That `flask` has a server of this pytest process fork
the command from a process that has imported the app already (~0.6 s of CPU saved
each, some 270 times a `make test`), with the client's own stdin, stdout, stderr,
folder and environment; the client passes on the signals it gets and exits with the
command's exit code (tests/test_notebook_kernel.py).

LABAPP_TEST_REAL_FLASK=1 runs the `flask` executable instead: in pytest's environment,
a plain kernel; in a kernel's, this kernel without the forking. The slow checks'
nested runs (tests/test_notebook_independence.py) set it for each solved lab's
first run: under CI=true every stored output is compared with what the executable
prints too.

    python tools/notebook_kernel.py -f CONNECTION_FILE    # the kernel (its spec's argv)
"""
import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

NAME = "labapp-tests"  # the kernel spec's name
REAL = "LABAPP_TEST_REAL_FLASK"  # set: the `flask` executable
SOCKET = "LABAPP_TEST_FLASK_SOCKET"  # where kernel_bin/flask finds the server
FORKED = str(Path(__file__).resolve().parent / "kernel_bin")

SERVER = r'''
import json, os, select, socket, sys

import flask.cli                     # noqa: F401  (what every `flask` command imports: once,
import flask_migrate.cli             # noqa: F401   as tests/flask_fork.py's server does)
import labapp.app                    # noqa: F401
import alembic.command               # noqa: F401
from labapp.server import processes


def read(conn, size, data=b""):
    while len(data) < size:
        more = conn.recv(size - len(data))
        if not more:
            raise EOFError
        data += more
    return data


listener = socket.socket(socket.AF_UNIX)
listener.bind(sys.argv[1])
listener.listen(16)
print("ready", flush=True)
while True:
    ready = select.select([listener, sys.stdin], [], [], 1)[0]
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:  # the commands that ended
            pass
    except ChildProcessError:
        pass
    if sys.stdin in ready and not sys.stdin.readline():
        break  # the pytest process has gone
    if listener not in ready:
        continue
    conn, fds = listener.accept()[0], []
    try:  # the client's stdin, stdout and stderr with a length; then what to run, as JSON
        head, fds, _, _ = socket.recv_fds(conn, 8, 3)
        ask = json.loads(read(conn, int.from_bytes(read(conn, 8, head), "big")))
    except (OSError, EOFError, ValueError):
        ask = None
    if ask and len(fds) == 3 and os.fork() == 0:
        listener.close()
        os.setpgid(0, 0)  # a group of its own before the client learns it: signals go there
        conn.sendall(f"{os.getpid()}\n".encode())
        processes.flask_child(["flask", *ask["args"]], ask["cwd"], ask["env"], fds,
                              on_exit=lambda code: conn.sendall(f"{code}\n".encode()))
    for fd in fds:
        os.close(fd)
    conn.close()
'''

_server = None  # (process, its folder, its socket's path)


def available():
    """Can this system fork and pass a file descriptor (not Windows)? And not told not to."""
    return (hasattr(os, "fork") and hasattr(socket, "send_fds")
            and not os.environ.get(REAL))


def serve():
    """Start this process's server for its kernels' `!flask`, once, and the kernel spec
    that uses it (in a folder put first on JUPYTER_PATH)."""
    global _server
    if _server is not None:
        return
    folder = tempfile.mkdtemp(prefix="labapp-kernel-")  # short: a socket's path is limited
    address = os.path.join(folder, "flask.sock")
    process = subprocess.Popen([sys.executable, "-c", SERVER, address], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, start_new_session=True)
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError("the kernels' flask fork server did not start")
    _server = process, folder, address
    atexit.register(stop)
    spec = Path(folder, "kernels", NAME)
    spec.mkdir(parents=True)
    spec.joinpath("kernel.json").write_text(json.dumps({
        "argv": [sys.executable, __file__, "-f", "{connection_file}"],
        "display_name": "Python 3 (forked flask)", "language": "python",
        "env": {SOCKET: address}}))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [folder, os.environ.get("JUPYTER_PATH")]))


def address():
    """The socket of this process's server (serve() first)."""
    return _server[2]


def stop():
    """Stop the server (at exit; a command it started ends on its own) and remove its folder."""
    global _server
    if _server:
        process, folder, _ = _server
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(folder, ignore_errors=True)
    _server = None


def main():
    del sys.path[0]  # this folder: a cell imports what it would in a learner's kernel
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize()
    system = app.shell.system

    def forked_flask_first(command):
        # before each: a lab's setup cell puts its venv first (labapp.runtime.lab)
        path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p != FORKED]
        os.environ["PATH"] = os.pathsep.join([FORKED, *path])
        return system(command)

    if not os.environ.get(REAL):
        app.shell.system = forked_flask_first
    app.start()


if __name__ == "__main__":
    main()
