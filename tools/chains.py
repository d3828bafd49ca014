"""Each lab's migration chain: what the lab writes to `migrations/` and
`models.py`, kept as one patch from the lab's start, tests/chains/<lab>.patch.

    python tools/chains.py refresh [lab02 ...]   # after running the solution notebooks
    python tools/chains.py check [lab02 ...]     # do the workspaces match the patches?

A chain is built (for the tests) by building the lab's starting workspace, as
its setup cell does (Flask-Migrate's own `init` output, revision 0001 for labs
that start from lab 01, the kit's models.py), then applying the patch with
`git apply`. So nothing Flask-Migrate generates is committed, and the patch
reads as the lab's whole change: new revisions, edited models, edited env.py.
"""
import difflib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from labapp.runtime import labs, workspace

ROOT = Path(__file__).resolve().parent.parent
CHAINS = ROOT / "tests" / "chains"
WORKSPACES = ROOT / "notebooks" / "workspaces"
# the one line of a revision that differs on every run (script.py.mako's clock)
CREATE_DATE = re.compile(r"^Create Date: .*$", re.M)


def chained():
    """The labs that write migrations (each has a patch)."""
    return [lab for lab in labs.LABS if lab.chain]


def patch_file(lab):
    return CHAINS / f"{lab.name}.patch"


def tracked(folder):
    """{relative path: text} of what a chain is made of: models.py and migrations/."""
    folder = Path(folder)
    files = [folder / "models.py", *sorted((folder / "migrations").rglob("*"))]
    return {p.relative_to(folder).as_posix(): CREATE_DATE.sub("Create Date: <date>", p.read_text())
            for p in files if p.is_file() and "__pycache__" not in p.parts}


def baseline(lab, folder):
    """What a chain is a change from: the lab's start, with `migrations/` as
    `flask db init` makes it (lab 01 runs that itself: generated, not kept)."""
    folder = workspace.build(folder, lab)
    if not (folder / "migrations").exists():
        workspace.init_migrations(folder / "migrations")
    return folder


def diff(lab, end):
    """The patch from `lab`'s baseline to the workspace `end` (Create Dates blanked)."""
    with tempfile.TemporaryDirectory() as tmp:
        start = tracked(baseline(lab, Path(tmp) / "start"))
    finish = tracked(end)
    parts = []
    for name in sorted(start.keys() | finish.keys()):
        old, new = start.get(name), finish.get(name)
        if old == new:
            continue
        parts.extend(difflib.unified_diff(
            (old or "").splitlines(keepends=True), (new or "").splitlines(keepends=True),
            "/dev/null" if old is None else f"a/{name}",
            "/dev/null" if new is None else f"b/{name}"))
    return "".join(parts)


def build(lab, folder):
    """The lab's end state in `folder`: its baseline, with its patch applied."""
    folder = baseline(lab, folder)
    proc = subprocess.run(["git", "apply", "--whitespace=nowarn", str(patch_file(lab))],
                          cwd=folder, capture_output=True, text=True,
                          env={**os.environ, "GIT_CEILING_DIRECTORIES": str(folder.parent)})
    if proc.returncode != 0:
        raise RuntimeError(f"{patch_file(lab).name} does not apply to {lab.name}'s start: "
                           f"{proc.stderr.strip()}")
    return folder


def end_workspace(lab):
    """Where the lab's notebook leaves its end state: the solved copy's workspace."""
    return WORKSPACES / lab.workspace(solutions=lab.exercises)


def main(argv):
    if not argv or argv[0] not in ("refresh", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    names = argv[1:] or [lab.name for lab in chained()]
    stale = 0
    for name in names:
        lab, _ = labs.get(name)
        end = end_workspace(lab)
        if not (end / "models.py").exists():
            print(f"{lab.name}: no workspace at {end.relative_to(ROOT)}: run its notebook first")
            stale += 1
            continue
        patch = diff(lab, end)
        if argv[0] == "refresh":
            patch_file(lab).write_text(patch)
            print(f"{lab.name}: wrote {patch_file(lab).relative_to(ROOT)} "
                  f"({patch.count(chr(10))} lines)")
        elif patch_file(lab).read_text() != patch:
            print(f"{lab.name}: {end.relative_to(ROOT)} differs from {patch_file(lab).name}")
            stale += 1
        else:
            print(f"{lab.name}: matches")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
