"""Build the kit's venv from requirements.lock (`make venv`, `make lab`):

    python3 tools/bootstrap.py [VENV] [--installer auto|uv|pip]

1. Refuse, in one line, a Python the lock cannot be installed on, naming one
   on this machine that can: 3.11.5 to 3.15 (soupsieve's pin needs 3.11.5;
   numpy and contourpy have cp315 wheels only in versions that need 3.12, so
   the lock pins those two by python_version; tests/test_pythons.py resolves
   the lock for each version on Linux and macOS arm64). Native Windows is
   refused in one line too: the kit runs in WSL or the zero-install path
   (Codespaces, Binder), README "Windows".
2. Install the lock, then the kit itself (editable, no dependencies), with
   uv when it can be had: `uv` on PATH, else uv pinned from PyPI into
   .venv-bootstrap/ (once per clone). Else, or if uv fails, with pip. One
   lock file for both.
3. Bytecode is compiled, so a lab's first cells are not slower: pip compiles
   everything (its default); after uv, the kit compiles what a lab runs
   (JupyterLab, the kernel, the app) and leaves a third of the files, which no
   lab imports, to compile on first use: installers, the suite's, the hub's
   and the site's tools, and packages' own tests (LATER).
4. The venv's kernels load labapp.runtime.lab's guard (tools/ipython_kernel_config.py,
   copied into the venv's etc/ipython/): a lab's cells wait for its setup cell.
One line says which installer it used. Written for any Python 3, so that an
old one gets the one-line refusal and not a SyntaxError.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import time

SUPPORTED = ((3, 11), (3, 12), (3, 13), (3, 14), (3, 15))
OLDEST = (3, 11, 5)  # soupsieve 4.1.3 (requirements.lock) needs 3.11.5; Debian 12 ships 3.11.2
SUPPORTED_TEXT = "3.11.5\u20133.15"
WINDOWS = ("labapp does not run on native Windows: use WSL (Ubuntu) or the zero-install path "
           "(GitHub Codespaces or Binder): see README.md, \"Windows\"")
UV = "uv==0.13.8"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCK = os.path.join(ROOT, "requirements.lock")
BOOTSTRAP = os.path.join(ROOT, ".venv-bootstrap")  # where uv is installed when not on PATH
# Import names under site-packages that no lab imports (tests/test_bootstrap.py checks that
# JupyterLab, the kernel and labapp import none of them).
LATER = ("pip", "setuptools", "wheel",  # installers (not _distutils_hack: every start imports it)
         "_pytest", "pytest", "xdist", "execnet", "nbval", "pytest_alembic", "coverage",  # suite
         "playwright", "check_jsonschema", "ruamel", "pymysql", "ruff",
         "jupyterhub", "certipy", "oauthlib", "pydantic", "pydantic_core", "cryptography",  # hub
         "cffi", "pycparser", "aiohttp", "aiohappyeyeballs", "aiosignal", "frozenlist",
         "multidict", "yarl", "propcache", "pycares", "aiodns",
         "nbconvert", "mistune", "bleach", "tinycss2", "bs4", "soupsieve", "defusedxml")  # site
QUIET = {"PIP_ROOT_USER_ACTION": "ignore", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def runs(command):
    """Does `command` start a Python this kit supports?"""
    check = ("import sys; sys.exit(sys.version_info[:2] not in %r or sys.version_info[:3] < %r)"
             % (SUPPORTED, OLDEST))
    try:
        return subprocess.call([command, "-c", check], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL) == 0
    except OSError:
        return False


def check_python():
    if os.name == "nt":
        sys.exit(WINDOWS)
    if sys.version_info[:2] in SUPPORTED and sys.version_info[:3] >= OLDEST:
        return
    found = "%d.%d" % sys.version_info[:2]
    if sys.version_info[:2] == OLDEST[:2]:
        found = "%d.%d.%d" % sys.version_info[:3]
    usable = [p for p in ("python%d.%d" % v for v in reversed(SUPPORTED)) if runs(p)]
    hint = (("run `make lab PYTHON=%s`" % usable[0]) if usable else
            "install one from python.org or your package manager, or use the zero-install path "
            "(README.md, \"No install\")")
    sys.exit("labapp needs Python %s; found %s (%s): %s"
             % (SUPPORTED_TEXT, found, sys.executable, hint))


def run(args, stderr=None):
    return subprocess.call(args, env=dict(os.environ, **QUIET), stderr=stderr) == 0


def find_uv():
    """(path to uv, how it was found), or (None, why not)."""
    on_path = shutil.which("uv")
    if on_path:
        return on_path, "uv on PATH"
    uv = os.path.join(BOOTSTRAP, "bin", "uv")
    if not os.path.exists(uv):
        # into a plain folder with this Python's pip (seconds), else (no pip: its error
        # is not shown) into a venv of its own
        run([sys.executable, "-m", "pip", "install", "--quiet", "--target", BOOTSTRAP, UV],
            stderr=subprocess.DEVNULL)
        if not os.path.exists(uv) and run([sys.executable, "-m", "venv", BOOTSTRAP]):
            run([os.path.join(BOOTSTRAP, "bin", "python"), "-m", "pip", "install", "--quiet", UV])
    if os.path.exists(uv):
        return uv, UV.replace("==", " ") + " in .venv-bootstrap"
    return None, "%s could not be installed from PyPI" % UV


def with_uv(uv, venv):
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python) and not run([uv, "venv", "--quiet", "--seed", "--python",
                                               sys.executable, venv]):
        return False
    install = [uv, "pip", "install", "--quiet", "--python", python]
    if not run(install + ["-r", LOCK]):
        return False
    site = subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                   text=True).strip()
    compiling = start_compiling(python, files_labs_run(site))
    # the kit itself meanwhile (its editable finder is a module every start imports)
    installed = run(install + ["--no-deps", "-e", ROOT])
    if installed:
        compiling += start_compiling(python, glob.glob(os.path.join(site, "__editable__*.py")))
    compiled = [worker.wait() == 0 for worker in compiling]  # all of them (pip may follow)
    return installed and all(compiled)


def files_labs_run(site):
    """The .py files under site-packages but LATER and tests/ folders (judged below
    site-packages: a clone may well sit in a folder named tests)."""
    later = re.compile(r"^(%s)[/\\]|(^|[/\\])tests[/\\]" % "|".join(LATER))
    files = [os.path.join(folder, name) for folder, _, names in os.walk(site)
             for name in names if name.endswith(".py")]
    return [path for path in files if not later.search(os.path.relpath(path, site))]


def start_compiling(python, files):
    """Compile loops, one per core (at most one per file), each given its share of
    the files up front (`compileall -j 0` hands them out one at a time: 9-10 s
    against 5-6.5 s here). Returns the running workers."""
    loop = ("import compileall, os, sys\n"
            "for path in sys.stdin.buffer.read().split(b'\\0'):\n"
            "    path and compileall.compile_file(os.fsdecode(path), quiet=2)")
    cores = max(1, min(os.cpu_count() or 1, len(files)))
    workers = [subprocess.Popen([python, "-c", loop], stdin=subprocess.PIPE) for _ in range(cores)]
    for share, worker in enumerate(workers):
        worker.stdin.write(b"\0".join(map(os.fsencode, files[share::cores])))
        worker.stdin.close()
    return workers


def with_pip(venv):
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python) and not run([sys.executable, "-m", "venv", venv]):
        return False
    install = [python, "-m", "pip", "install", "--quiet"]
    return run(install + ["-r", LOCK]) and run(install + ["--no-deps", "-e", ROOT])


def main():
    check_python()
    parser = argparse.ArgumentParser(description="Build the kit's venv from requirements.lock.")
    parser.add_argument("venv", nargs="?", default=".venv")
    parser.add_argument("--installer", choices=("auto", "uv", "pip"), default="auto")
    options = parser.parse_args()
    venv, name, start = options.venv, os.path.relpath(os.path.abspath(options.venv)), time.time()
    uv, how = find_uv() if options.installer != "pip" else (None, "pip asked for")
    if uv:
        print("%s: installing requirements.lock with %s" % (name, how), flush=True)
        if with_uv(uv, venv):
            kernel_config(venv)
            return print_done(name, start)
        if options.installer == "uv":
            sys.exit("%s: uv failed (see above)" % name)
        how = "uv failed"
    elif options.installer == "uv":
        sys.exit("%s: %s" % (name, how))
    print("%s: installing requirements.lock with pip (%s)" % (name, how), flush=True)
    if not with_pip(venv):
        sys.exit("%s: pip failed (see above)" % name)
    kernel_config(venv)
    return print_done(name, start)


def kernel_config(venv):
    """The venv's IPython kernels load the kit's guard (see tools/ipython_kernel_config.py)."""
    folder = os.path.join(venv, "etc", "ipython")
    if not os.path.isdir(folder):
        os.makedirs(folder)
    shutil.copyfile(os.path.join(ROOT, "tools", "ipython_kernel_config.py"),
                    os.path.join(folder, "ipython_kernel_config.py"))


def print_done(name, start):
    print("%s: ready in %.0f s" % (name, time.time() - start))


if __name__ == "__main__":
    main()
