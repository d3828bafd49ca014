"""The instructor's live view: every learner x every exercise, from their databases.

    flask --app labapp room progress --roster /etc/labapp/roster.txt \
        --notebooks '/home/jupyter-{learner}/notebooks' --watch 20

The checks are the labs' own: each lab's self-check cells (those that call
`labapp.runtime.selfcheck`'s `verdict`, in its solved notebook; not `traffic.verdict`,
which reports a measurement) run again, for each learner, in ONE checking
process for the whole room (Checker: not a Python per learner x lab), which
works in each learner's workspace in turn, with what the previous learner left
cleared, and sees the learners' databases READ-ONLY (PGOPTIONS
default_transaction_read_only, for every connection it opens; a lock it waits
for over 3 s is given up; git takes no optional locks).
What a check cell needs from earlier cells (an import, `replica =
lab03.sibling("_replay")`) is found with Python's own parser and run first;
the lab's setup cell and the exercises' solutions never run. A check that
judges what the learner's kernel measured while the lab's app servers ran (a
traffic report) cannot run here: nothing here starts a server or a load
(LABAPP_SELF_CHECKS_ONLY=1 makes labapp.live.appserver and labapp.live.traffic refuse).
For those, the verdict the learner's own kernel printed last is shown, as it
keeps it beside the workspace (labapp.runtime.selfcheck.record_file). A new lab's self-checks
appear here without a line of this module changing.

A learner's exercise is:
  passed       its verdict says done
  hint         its verdict gives a hint (shown under the table)
  not started  the learner has no database for that lab yet
  offline      their embedded server is not running (--pgdata)
  error        the check itself failed (the reason shown under the table)

The table is timestamped; with --roster every learner on the hub's roster has a
line, started or not.
"""
import ast
import builtins
import contextlib
import functools
import io
import json
import os
import select
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from labapp.runtime import lab as runtime
from labapp.runtime import labs, notebooks, selfcheck
from labapp.server import config, database, learners, pgserver, processes
from labapp.errors import LabError

READ_ONLY = "-c default_transaction_read_only=on"
WAIT_LITTLE = "-c lock_timeout=3s -c statement_timeout=20s"  # a learner mid-migration holds locks
# modules a check may keep loaded: the kit's and installed packages' (not a learner's models.py)
PACKAGES = (str(Path(__file__).resolve().parents[1]), sys.prefix, sys.base_prefix)


# -- which cells: the self-checks and what they need, by Python's parser -------------

def _python(source):
    from IPython.core.inputtransformer2 import TransformerManager  # IPython: only to plan the checks

    return TransformerManager().transform_cell(source)


def _calls(tree, attribute):
    return any(isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
               == attribute for node in ast.walk(tree))


SELFCHECK = ("labapp.selfcheck", "labapp.runtime.selfcheck")  # its public name, its module


def _selfcheck_names(tree):
    """What a cell's imports call the self-check module (`check` for `from labapp
    import selfcheck as check`) and its verdict function, if it imports them."""
    modules, functions = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "labapp":
            modules |= {a.asname or a.name for a in node.names if a.name == "selfcheck"}
        elif isinstance(node, ast.ImportFrom) and node.module in SELFCHECK:
            functions |= {a.asname or a.name for a in node.names if a.name == "verdict"}
        elif isinstance(node, ast.Import):
            modules |= {a.asname for a in node.names if a.name in SELFCHECK and a.asname}
    return modules, functions


def _self_check(tree, modules, functions):
    """Does the cell call the self-check module's verdict (not another `verdict`)?"""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "verdict" and (
                isinstance(func.value, ast.Name) and func.value.id in modules):
            return True
        if isinstance(func, ast.Name) and func.id in functions:
            return True
    return False


def _bound(node):
    """Names a statement binds at top level."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return set()


def _free(nodes):
    """Names the statements read that they do not bind themselves (nor builtins)."""
    stored, loaded = set(), set()
    for node in nodes:
        stored |= _bound(node)
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                (loaded if isinstance(sub.ctx, ast.Load) else stored).add(sub.id)
            elif isinstance(sub, ast.arg):
                stored.add(sub.arg)
            elif isinstance(sub, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
                stored |= _bound(sub)
    return loaded - stored - set(dir(builtins))


# what a check may call of the live app's modules: the rest starts servers or loads
LIVE_MODULES = ("appserver", "traffic")
PURE = {"Report", "Request", "verdict", "percentile", "sales", "READS"}


def _live(statement):
    """Does `statement` start or drive an app server or a load, or run a shell command
    (a `!` line)? Then it cannot run here, and nor can a check that needs it."""
    for node in ast.walk(statement):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and (
                func.value.id in LIVE_MODULES and func.attr not in PURE
                or func.value.id == "get_ipython"):
            return True
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call) and (
                getattr(func.value.func, "id", None) == "get_ipython"):
            return True
    return False


@dataclass
class Planned:
    """One self-check of a lab, as the room's view runs it."""
    title: str    # "Exercise 2", the verdict's first argument
    needed: str   # the earlier statements it needs, run first
    source: str   # the self-check cell
    live: bool    # it needs what the kernel measured live: show the kernel's own verdict


def _title(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "verdict":
            if node.args and isinstance(node.args[0], ast.Constant):
                return str(node.args[0].value)
    return None


@functools.lru_cache(maxsize=None)  # a solved notebook does not change while a room runs
def plan(spec):
    """(lab variable name, [Planned]) for lab `spec`: its self-checks, in order."""
    notebook, _ = spec.copies()[-1]  # the solved copy where there is one
    # the JSON itself: nbformat's import (jsonschema's format checkers) would add about
    # a second to every start of the checking process, for a file written in version 4
    cells = json.loads((notebooks.source() / notebook).read_text(encoding="utf-8"))["cells"]
    variable, earlier, checks, have = None, [], [], set()
    modules, functions = set(), set()
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])  # a string, or a list of lines as nbformat writes it
        try:
            tree = ast.parse(_python(source))
        except SyntaxError:
            continue
        found = _selfcheck_names(tree)
        modules, functions = modules | found[0], functions | found[1]
        if _calls(tree, "setup") and variable is None:
            variable = next(iter(_bound(next(s for s in tree.body if _calls(s, "setup")))))
        if _self_check(tree, modules, functions):
            needed = _needed(_free(tree.body) - have - {variable}, earlier)
            live = any(_live(s) for s in needed + tree.body)
            checks.append(Planned(_title(tree), "\n".join(ast.unparse(s) for s in needed),
                                  source, live))
            if not live:  # a live check never runs here: what it would bind, a later one runs itself
                have |= {n for s in needed + tree.body for n in _bound(s)}
        elif "solution" not in cell.get("metadata", {}).get("tags", []):
            earlier += [s for s in tree.body if not _calls(s, "setup")]
    return variable, checks


def _needed(names, earlier):
    """The latest earlier statements that bind `names`, and what those need, in order."""
    chosen, todo = [], set(names)
    while todo:
        name = todo.pop()
        for statement in reversed(earlier):
            if name in _bound(statement):
                if statement not in chosen:
                    chosen.append(statement)
                    todo |= _free([statement]) - {n for s in chosen for n in _bound(s)}
                break
    return sorted(chosen, key=earlier.index)


# -- running them for one learner, in a process of its own ---------------------------

def check(lab_name, learner, notebooks_folder):
    """Run lab `lab_name`'s self-checks for `learner` (in this process): [{title, state, hint}]."""
    from IPython.core.interactiveshell import InteractiveShell  # only in a check's own process
    from traitlets.config import Config  # (IPython's)

    spec, _ = labs.get(lab_name)
    copy = runtime.Lab(spec, False, notebooks_folder, learner=learner)
    variable, checks = plan(spec)
    found = []
    selfcheck.listen(lambda title, hint: found.append(
        {"title": title, "state": "hint" if hint else "passed", "hint": hint}))
    runtime._prepare_shell(copy)
    os.chdir(copy.workspace)
    kept = selfcheck.recorded(selfcheck.record_file(copy.workspace))
    # no history: nobody reads it, and its saving thread would be copied half by a fork
    # (selfcheck.flask forks this process)
    shell = InteractiveShell.instance(config=Config({"HistoryManager": {"enabled": False}}))
    # a failing statement's error is read from the result: formatting its traceback (most
    # of a check's time, as a just-started lab's checks fail on purpose) is for nobody
    shell.showtraceback = lambda *args, **kwargs: None
    # the previous learner's names are gone (as shell.reset() would do, without its
    # gc.collect(): a third of a check's time)
    clean = shell.__dict__.setdefault("_labapp_clean_names", set(shell.user_ns))
    for name in set(shell.user_ns) - clean:
        del shell.user_ns[name]
    shell.user_ns.update({variable: copy})
    for planned in checks:
        if planned.live:
            found.append({"title": planned.title, **kept.get(planned.title, {
                "state": "hint", "hint": "run this exercise's self-check cell in the lab"})})
            continue
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            ready = shell.run_cell(planned.needed, silent=True)
        if not ready.success:  # what the check needs (rows, a file) is not there yet
            found.append({"title": planned.title, "state": "hint",
                          "hint": "not reached yet: run the lab's cells before this exercise"})
            continue
        before = len(found)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            result = shell.run_cell(planned.source, silent=True)
        if len(found) == before:  # the check did not get to its verdict
            error = result.error_in_exec or result.error_before_exec
            found.append({"title": planned.title, "state": "error", "hint": f"{type(error).__name__}: {error}"})
    return found


class Checker:
    """The room's ONE checking process (`python -m labapp.room.progress --worker`): it
    runs every learner's checks, one after another, each in the learner's workspace
    with their name and server, with what the previous check left behind cleared
    (cwd, environment, the learner's modules, the shell's namespace). Its connections
    are read-only and give up on a lock after a few seconds (a learner mid-migration
    holds ACCESS EXCLUSIVE). A check that hangs or kills it costs that check: the
    process is started again for the next one.

        with Checker() as checker:
            found = checker.run("lab02", "alice", Path("/home/jupyter-alice/notebooks"))
    """

    def __init__(self, timeout=60):
        self.timeout, self.proc = timeout, None
        self.seen = {}  # (learner, lab) -> (fingerprint, results): a refresh rechecks what changed
        self.ran = 0    # checks run by the process (not answered from `seen`)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _start(self):
        env = {**os.environ, "PGOPTIONS": READ_ONLY + " " + WAIT_LITTLE, "GIT_OPTIONAL_LOCKS": "0",
               "PYTHONDONTWRITEBYTECODE": "1", "LABAPP_SELF_CHECKS_ONLY": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "labapp.room.progress", "--worker"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def close(self, kill=False):
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        processes.close(self.proc)
        self.proc.stdout.close()
        self.proc = None

    def run_if_changed(self, spec, learner, notebooks_folder, pgdata=None):
        """run(), unless the learner's workspace and databases are as they were when
        this Checker last checked them (a --watch refresh): then the same results."""
        key = (learner, spec.name)
        mark = fingerprint(spec, learner, notebooks_folder, pgdata)
        if key in self.seen and self.seen[key][0] == mark:
            return self.seen[key][1]
        found = self.run(spec.name, learner, notebooks_folder, pgdata)
        if not any(e["state"] == "error" for e in found):
            self.seen[key] = (mark, found)
        return found

    def run(self, lab_name, learner, notebooks_folder, pgdata=None):
        """[{title, state, hint}] for one learner's lab."""
        self.ran += 1
        if self.proc is not None and self.proc.poll() is not None:
            self.close()
        if self.proc is None:
            self._start()
        job = {"lab": lab_name, "learner": learner, "notebooks": str(notebooks_folder), "pgdata": pgdata}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            why = f"the check took over {self.timeout:g} s" if not ready else "the checking process stopped"
            self.close(kill=True)
            return [{"title": None, "state": "error", "hint": why}]
        return json.loads(line)


# The database's own tables, its catalogs included (so DDL counts too), but not:
# - the server-wide catalogs every database lists (pg_database, pg_authid, pg_shdepend,
#   ...): their counters move whenever ANYONE on the server makes or drops a database
#   or a role (another learner starting a lab), which would recheck the whole room;
# - the planner's statistics (pg_statistic, pg_statistic_ext_data): autovacuum's
#   ANALYZE rewrites them when it likes, of the learner's tables or of those busy
#   server-wide catalogs (their statistics go to the database it was visiting), and
#   no check reads them.
# The database's oid stands for what pg_database told about it: made again is a change.
CHANGES = ("SELECT (SELECT oid FROM pg_database WHERE datname = current_database()), "
           "coalesce(sum(s.n_tup_ins + s.n_tup_upd + s.n_tup_del), 0), count(*) "
           "FROM pg_stat_all_tables s JOIN pg_class c ON c.oid = s.relid WHERE NOT c.relisshared "
           "AND s.relid NOT IN ('pg_statistic'::regclass, 'pg_statistic_ext_data'::regclass)")


def fingerprint(spec, learner, notebooks_folder, pgdata=None):
    """What a check reads, summed up cheaply: the workspace's files (names, sizes,
    times), the kernel's recorded verdicts, and each of the lab's databases' row
    changes (PostgreSQL's statistics of its own tables, catalogs included, so DDL
    counts: CHANGES). A writer's counts reach them when its transaction ends, or,
    if it reported less than a second before, at a later transaction's end, after
    some 10 s idle or when it disconnects (PostgreSQL's PGSTAT_MIN_INTERVAL and
    PGSTAT_IDLE_INTERVAL): a change shows at that refresh or a later one."""
    copy = runtime.Lab(spec, False, Path(notebooks_folder), learner=learner)
    files = []
    for root, folders, names in os.walk(copy.workspace):
        folders[:] = [f for f in folders if f != "__pycache__"]
        for name in names:
            try:
                info = os.stat(os.path.join(root, name))
            except OSError:
                continue
            files.append((root, name, info.st_mtime_ns, info.st_size))
    record = selfcheck.record_file(copy.workspace)
    marks = [sorted(files), record.stat().st_mtime_ns if record.exists() else None]
    with _environ(**({"LABAPP_PGDATA": pgdata} if pgdata else {})):
        for url in [copy.url] + [copy.sibling(s).url for s in spec.more_databases]:
            try:
                engine = database.quick_engine(url)
                with engine.connect() as conn:
                    marks.append(tuple(conn.exec_driver_sql(CHANGES).one()))
                engine.dispose()
            except Exception:  # no such database (yet): that is its state
                marks.append(None)
    return hash(repr(marks))


def _check_in_child(lab_name, learner, notebooks_folder, pgdata, timeout=120):
    """One learner's lab in a checking process of its own (a test, a one-off)."""
    with Checker(timeout) as checker:
        return checker.run(lab_name, learner, notebooks_folder, pgdata)


def _worker(jobs, out):
    """The checking process's loop: a job (JSON) a line in, its results a line out."""
    base_env, base_cwd, base_path = dict(os.environ), os.getcwd(), list(sys.path)
    base_modules = set(sys.modules)
    for line in jobs:
        job = json.loads(line)
        os.environ.clear()
        os.environ.update(base_env, LABAPP_LEARNER=job["learner"])
        if job["pgdata"]:
            os.environ["LABAPP_PGDATA"] = job["pgdata"]
            os.environ.pop("DATABASE_URL", None)
        folder = Path(job["notebooks"])
        if folder.is_dir():
            os.chdir(folder)
        try:
            found = check(job["lab"], job["learner"], folder)
        except LabError as exc:
            found = [{"title": None, "state": "error", "hint": str(exc)}]
        except Exception as exc:  # one learner's broken check is that learner's error, not the room's
            found = [{"title": None, "state": "error", "hint": f"{type(exc).__name__}: {exc}"}]
        finally:
            selfcheck._listeners.clear()
            os.chdir(base_cwd)
            sys.path[:] = base_path
            for name in set(sys.modules) - base_modules:  # the learner's models.py, app.py, ...
                if not str(getattr(sys.modules[name], "__file__", "") or "").startswith(PACKAGES):
                    del sys.modules[name]
        out.write(json.dumps(found) + "\n")
        out.flush()


# -- the room: every learner, every lab ------------------------------------------------

def discover():
    """The learners with a database on the server DATABASE_URL names."""
    return sorted({learners.owner(n) for n in _databases() if learners.owner(n)})


@contextlib.contextmanager
def _environ(**values):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def _databases():
    """The names of the databases on the server DATABASE_URL names."""
    engine = database.server_engine(config.database_url("postgres"))
    with database.friendly_errors(engine.url), engine.connect() as conn:
        return {n for (n,) in conn.exec_driver_sql("SELECT datname FROM pg_database")}


def survey(names=None, notebooks=None, pgdata=None, only=None, checker=None):
    """{learner: {lab: [{title, state, hint}]}} for every learner and lab with self-checks,
    every check run by ONE process (`checker`, a Checker: pass one to keep it across
    refreshes)."""
    specs = [s for s in labs.LABS if s.exercises and (not only or s.name in only)]
    if names is None:
        if pgdata:
            raise LabError("with --pgdata, name the learners (--learners a,b,c or --roster)")
        names = discover()
    counts = {spec.name: len(plan(spec)[1]) for spec in specs}
    results = {name: {} for name in names}
    existing = None if pgdata else _databases()  # one query for the room, not one per learner x lab
    own = checker is None
    checker = checker or Checker()
    try:
        for name in names:
            learner = learners.clean(name)
            folder = Path((notebooks or "~{learner}/notebooks").format(learner=name)).expanduser()
            data = pgdata.format(learner=name) if pgdata else None
            for spec in specs:
                if data:
                    with _environ(LABAPP_PGDATA=data):  # a look only: no server is started
                        running = pgserver.is_running()
                    state = None if running else "offline"
                else:
                    state = None if spec.database(False, learner=learner) in existing else "not started"
                if state:
                    results[name][spec.name] = [{"title": None, "state": state, "hint": None}] * counts[spec.name]
                else:
                    results[name][spec.name] = checker.run_if_changed(spec, learner, folder, data)
    finally:
        if own:
            checker.close()
    return results


SYMBOLS = {"passed": "✅", "hint": "❌", "not started": "·", "offline": "off", "error": "?"}


def table(results, at=None, seconds=None):
    """learner x exercise, one line per learner, one column per lab exercise; then each
    learner's first exercise not passed, with its hint (or the check's error). `at`: the
    time of the survey, shown on top."""
    columns = []
    for lab_results in results.values():
        for lab_name, found in lab_results.items():
            for i, _ in enumerate(found):
                if (lab_name, i) not in columns:
                    columns.append((lab_name, i))
    columns.sort()
    header = ["learner"] + [f"{lab_name[3:]}.{i + 1}" for lab_name, i in columns]
    lines = [header]
    stuck = []
    for name, lab_results in sorted(results.items()):
        cells = []
        for lab_name, i in columns:
            found = lab_results.get(lab_name, [])
            cells.append(SYMBOLS[found[i]["state"]] if i < len(found) else "")
        lines.append([name] + cells)
        first = next(((lab_name, i, found[i]) for lab_name, i in columns
                      for found in [lab_results.get(lab_name, [])]
                      if i < len(found) and found[i]["state"] in ("hint", "error") and found[i]["hint"]), None)
        if first:
            lab_name, i, entry = first
            mark = "?" if entry["state"] == "error" else "hint"
            stuck.append(f"  {name}  {lab_name[3:]}.{i + 1} {mark}: {entry['hint']}")
    width = max(len(line[0]) for line in lines)
    rendered = [f"{line[0]:<{width}}  " + " ".join(f"{c:^5}" for c in line[1:]) for line in lines]
    legend = "✅ passed  ❌ still the hint  · not started  off server offline  ? check failed"
    top = []
    if at is not None:
        took = f", checked in {seconds:.1f} s" if seconds is not None else ""
        top = [f"Room progress at {at:%Y-%m-%d %H:%M:%S %Z}: {len(results)} learners{took}", ""]
    bottom = ["", "Where each one is (their first exercise not passed):", *stuck] if stuck else []
    return "\n".join(top + rendered + ["", legend] + bottom)


def main(argv=None):
    """python -m labapp.room.progress --worker: the room's checking process (Checker);
    python -m labapp.room.progress LAB LEARNER NOTEBOOKS: one learner's checks, as JSON."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--worker"]:
        out = os.fdopen(os.dup(1), "w")  # results only: what checks print goes to stderr
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        _worker(sys.stdin, out)
        return 0
    lab_name, learner, folder = args
    try:
        found = check(lab_name, learner, Path(folder))
    except LabError as exc:
        found = [{"title": None, "state": "error", "hint": str(exc)}]
    sys.stdout.write(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
