"""One kind of expected mistake, and one way to show it.

Domain code (config, data, the embedded server, the replay, the notebook
runtime) raises `LabError` with a message a person can act on. Only the edges
show it, and all of them through `LabError.show()` (one line, `Error: ...`;
LABAPP_DEBUG=1: the traceback instead), as click's ClickException is shown
once, where the process ends:

* a `flask` process: `install_cli_boundary()` (from labapp.commands.cli.init_app);
* a command that runs in any Flask app (`flask trace`) and a `python -m`
  entry point (`make reset`, the hub's notebook copy): the `boundary` decorator;
* a lab's kernel: labapp.runtime.lab puts `LabError.lines()` where IPython's
  traceback would be.
"""
import functools
import sys


class LabError(Exception):
    """An error the user can fix; its message is the whole story, in one line."""
    exit_code = 1

    def lines(self):
        """What a person sees instead of a traceback."""
        return [f"Error: {self}"]

    def show(self, file=None):
        print(*self.lines(), sep="\n", file=file or sys.stderr)


def debugging():
    """LABAPP_DEBUG=1: show tracebacks instead of one-line errors (labapp.settings)."""
    from labapp import settings  # settings imports this module: read it when asked

    return settings.debug()


def boundary(function):
    """Run `function`; a LabError from it is shown (one line) and ends the process
    with its exit code, unless LABAPP_DEBUG=1 wants the traceback."""
    @functools.wraps(function)
    def edge(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except LabError as exc:
            if debugging():
                raise
            exc.show()
            sys.exit(exc.exit_code)
    return edge


def _excepthook(kind, exc, tb):
    if issubclass(kind, LabError) and not debugging():
        exc.show()
        return
    sys.__excepthook__(kind, exc, tb)


def install_cli_boundary():
    """A LabError that reaches the top of this process (a `flask` command, or
    the app failing to load before any command runs) is shown in one line and
    exits 1. Python's own hook for uncaught exceptions: nothing else changes."""
    sys.excepthook = _excepthook
