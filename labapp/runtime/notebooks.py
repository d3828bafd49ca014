"""The labs' notebooks, wherever the kit is: a learner's own copy of them.

A clone has them in notebooks/; an installed kit (a hub image) has them in
<prefix>/share/labapp/notebooks (pyproject.toml's data-files). A learner
works in a copy of their own, and each lab's workspace is made beside it:

    python -m labapp.runtime.notebooks copy ~/labs     # what the hub's pre-spawn hook runs

Files already in DEST are kept: a learner's work is never overwritten.
"""
import shutil
import sys
from pathlib import Path

from labapp import errors
from labapp.errors import LabError

CLONE = Path(__file__).resolve().parents[2]  # a clone of the kit (site-packages when installed)
PATTERNS = ("*.ipynb", "*.md", "solutions/*.ipynb")


def source():
    """The folder the kit's notebooks come from."""
    for folder in (CLONE / "notebooks", Path(sys.prefix) / "share" / "labapp" / "notebooks"):
        if (folder / "00-Welcome.ipynb").exists():
            return folder
    raise LabError("the kit's notebooks are not installed here (a clone has notebooks/; "
                   "an installed kit has <prefix>/share/labapp/notebooks)")


def copy(dest):
    """Copy the notebooks into `dest`, keeping files already there. Returns the new ones."""
    origin, dest = source(), Path(dest).expanduser()
    copied = []
    for pattern in PATTERNS:
        for path in sorted(origin.glob(pattern)):
            target = dest / path.relative_to(origin)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                copied.append(target)
    return copied


@errors.boundary
def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "copy":
        print("usage: python -m labapp.runtime.notebooks copy DEST", file=sys.stderr)
        return 2
    try:
        copied = copy(args[1])
    except OSError as exc:  # a folder it may not write: the learner's home, say
        raise LabError(f"could not copy the notebooks to {args[1]}: {exc}") from None
    print(f"{len(copied)} notebooks copied to {args[1]} (files already there were kept)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
