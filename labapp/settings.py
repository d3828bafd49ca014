"""Every environment variable the kit reads, read here and nowhere else.

    DATABASE_URL            the server to use (unset: the kit's embedded PostgreSQL)
    LABAPP_DATABASE         the database on it a `flask` command uses (a lab's setup cell sets it)
    LABAPP_PGDATA           where the embedded server keeps its data (unset: labapp.server.pgserver decides)
    LABAPP_LEARNER          a learner's name: their databases carry it (JUPYTERHUB_USER, set by a hub, too)
    LABAPP_DEBUG            1: tracebacks instead of one-line errors
    LABAPP_SELF_CHECKS_ONLY 1: this process runs a room's self-checks, and starts no server and no load
    LABAPP_FRESH            1: every lab's setup cell starts the lab over, even where a learner's
                            work from an earlier kernel is there (test runners: nbval, build_labs)
    JPY_SESSION_NAME        (JupyterLab's) the notebook a kernel serves
    JPY_PARENT_PID          (jupyter_client's) set in a kernel and in the commands its cells run:
                            their `!` runs them on a pseudo-terminal, which is no terminal to draw on
"""
import os

from labapp.errors import LabError


def _get(name):
    """The variable's value, stripped; None if unset or empty."""
    return os.environ.get(name, "").strip() or None


def in_a_kernel():
    """Does this process run in a Jupyter kernel, or under one (a cell's `!flask`)?"""
    return _get("JPY_PARENT_PID") is not None


def database_url():
    return _get("DATABASE_URL")


def lab_database():
    return _get("LABAPP_DATABASE")


def pgdata():
    return _get("LABAPP_PGDATA")


def learner():
    """The learner's name as given (labapp.server.learners cleans it), or None."""
    return _get("LABAPP_LEARNER") or _get("JUPYTERHUB_USER")


def debug():
    return _get("LABAPP_DEBUG") not in (None, "0")


def self_checks_only():
    return _get("LABAPP_SELF_CHECKS_ONLY") == "1"


def refuse_in_self_checks(what):
    """A room's self-check run (labapp.room.progress) may start no `what`."""
    if self_checks_only():
        raise LabError(f"a self-check run by `flask room progress` starts no {what}")


def fresh_labs():
    return _get("LABAPP_FRESH") == "1"


def notebook_session():
    return _get("JPY_SESSION_NAME")
