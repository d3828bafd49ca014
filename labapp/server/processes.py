"""Background processes started from a workspace (a lab's app servers), found
again by their pidfiles, so that whoever resets the workspace ends them,
whichever process started them (this kernel, an earlier one, `make reset`).

    processes.record(workspace, "v1", pid)      # servers/v1.pid
    processes.end(workspace)                    # end each that still runs; the names
"""
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
        process.wait(10)
    except (ValueError, psutil.NoSuchProcess):
        return
    except psutil.TimeoutExpired:
        process.kill()
