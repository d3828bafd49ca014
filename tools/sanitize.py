"""tests/sanitize.cfg with this machine's real paths filled in: what nbval,
tools/build_labs.py and tests/notebook_outputs.py compare notebooks under.

Two of its rules name a place that differs from clone to clone:
{notebooks}, the notebooks/ folder the labs ran in (`flask db init` and
`migrate` print the absolute paths of its workspaces), and {site_packages},
the venv's (a library's warning starts with its file's path). Each is filled
in with that exact path, escaped, so a clone in `My Projects/kit` is matched
as a whole rather than guessed at by a pattern.

The kit's conftest.py hands nbval the filled-in file; a pytest run on a copy
of the notebooks elsewhere (a learner's home) writes its own with write().
"""
import configparser
import re
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CFG = ROOT / "tests" / "sanitize.cfg"
NOTEBOOKS = ROOT / "notebooks"


def _exactly(*paths):
    """A regex matching any of `paths`, as given or with symlinks resolved."""
    forms = []
    for path in paths:
        for form in (str(path), str(Path(path).resolve())):
            if form not in forms:
                forms.append(form)
    return "(?:" + "|".join(re.escape(form) for form in forms) + ")"


def text(notebooks=NOTEBOOKS):
    """tests/sanitize.cfg's text with {notebooks} and {site_packages} filled in."""
    paths = sysconfig.get_paths()
    places = {"{notebooks}": _exactly(notebooks),  # noqa: RUF027 (the placeholder itself)
              "{site_packages}": _exactly(paths["purelib"], paths["platlib"])}
    filled = CFG.read_text(encoding="utf-8")
    for place, regex in places.items():
        filled = filled.replace(place, regex)
    return filled


def rules(notebooks=NOTEBOOKS, sections=None):
    """[(compiled regex, replacement)] in the file's order (or of `sections` only)."""
    config = configparser.ConfigParser(interpolation=None)
    config.read_string(text(notebooks))
    return [(re.compile(config[s]["regex"]), config[s]["replace"])
            for s in (sections or config.sections())]


def write(dest, notebooks=NOTEBOOKS):
    """A sanitize file for nbval (--nbval-sanitize-with) at `dest`; returns `dest`."""
    Path(dest).write_text(text(notebooks), encoding="utf-8")
    return dest
