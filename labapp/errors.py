"""One kind of expected mistake, and the two places that show it as one line.

Domain code (config, data, the embedded server, the replay, the notebook
runtime) raises `LabError` with a message a learner can act on. Only the edges
format it: the `flask` process prints `Error: <message>` and exits 1
(`install_cli_boundary`, from `labapp.commands.cli.init_app`), and a lab's kernel shows
the same line instead of a traceback (`labapp.runtime.lab.setup`). LABAPP_DEBUG=1
shows the full traceback in both.
"""
import sys


class LabError(Exception):
    """An error the user can fix; its message is the whole story, in one line."""


def debugging():
    """LABAPP_DEBUG=1: show tracebacks instead of one-line errors (labapp.settings)."""
    from labapp import settings  # settings imports this module: read it when asked

    return settings.debug()


def one_line(exc):
    return f"Error: {exc}"


def _excepthook(kind, exc, tb):
    if issubclass(kind, LabError) and not debugging():
        print(one_line(exc), file=sys.stderr)
        return
    sys.__excepthook__(kind, exc, tb)


def install_cli_boundary():
    """A LabError that reaches the top of this process (a `flask` command, or
    the app failing to load before any command runs) prints as one line and
    exits 1. Python's own hook for uncaught exceptions: nothing else changes."""
    sys.excepthook = _excepthook
