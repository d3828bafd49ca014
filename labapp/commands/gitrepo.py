"""Read-only git plumbing for `flask replay-production`: never switches a branch,
never touches the index or the working tree."""
import io
import subprocess
import tarfile
from pathlib import Path

from labapp.errors import LabError


def git(*args, cwd):
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=60)
    except FileNotFoundError:
        raise LabError("git is not installed (or not on PATH)") from None


def _text(*args, cwd):
    proc = git(*args, cwd=cwd)
    return proc.returncode, proc.stdout.decode("utf-8", "replace").strip()


def clean_checkout(cwd, branch):
    """(top-level folder, path of cwd inside the repository), once it is sure that
    cwd is in a repository that has `branch`, and that nothing is uncommitted."""
    code, top = _text("rev-parse", "--show-toplevel", cwd=cwd)
    if code != 0 or not top:
        raise LabError("not a git repository: run `flask replay-production` in your project's checkout")
    _, prefix = _text("rev-parse", "--show-prefix", cwd=cwd)
    code, _ = _text("rev-parse", "--verify", "--quiet", f"{branch}^{{commit}}", cwd=cwd)
    if code != 0:
        raise LabError(f"no branch {branch!r} in this repository (production's history "
                       "lives there; pass --branch to name another)")
    # not _text: its strip() would eat the first line's leading " M"
    status = git("status", "--porcelain", "--untracked-files=normal", cwd=cwd).stdout.decode(
        "utf-8", "replace")
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    if changed:
        raise LabError(f"the working tree has uncommitted changes ({len(changed)}: "
                       f"{', '.join(changed[:3])}{', ...' if len(changed) > 3 else ''}): "
                       "commit or stash them first")
    return Path(top), prefix


def extract_folder(top, prefix, branch, directory, into):
    """Write `branch`'s <prefix><directory>/ under `into` (git archive); return its path."""
    path = f"{prefix}{directory}".rstrip("/")
    proc = git("archive", "--format=tar", branch, "--", path, cwd=top)
    if proc.returncode != 0:
        raise LabError(f"branch {branch!r} has no {path}/ folder: nothing to replay")
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.10.12+, 3.11.4+
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)
    return Path(into) / path
