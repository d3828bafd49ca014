"""The lab registry: every lab, what it starts from, and how its things are named.

Adding a lab is one entry here, its notebook in notebooks/ (and its solved copy
in notebooks/solutions/), and, if it writes migrations, its chain
(tests/chains/<name>.patch, made by `tools/chains.py refresh <name>`).

A lab's setup cell says only `lab.setup("lab02")`: everything else about the
lab's start is written below, and `make reset`, the tests and the benchmark
read it from here.
"""
from dataclasses import dataclass
from pathlib import Path

from labapp.errors import LabError
from labapp.server import learners

SOLUTIONS = "solutions"  # the folder of the solved copies, beside the labs


@dataclass(frozen=True)
class LabSpec:
    name: str                  # "lab02": its database and workspace are named after it
    notebook: str              # its file in notebooks/ (and notebooks/solutions/)
    title: str
    minutes: int = 0           # how long it takes a person: its notebooks' first cell and the
                               # instructor guide say so (tools/run_of_show.py --write renders
                               # both; tools/lab_times.py's estimate must round to it)
    createdb: bool = True      # start with its database created (False: the lab creates it)
    migrations: bool = False   # start with lab 01's migrations/ (revision 0001, not applied)
    data: bool = False         # start with the sample DATA/ folder (for `flask loaddata`)
    git: bool = False          # the lab commits with git: a fixed author and clock
    more_databases: tuple = ()  # suffixes of other databases it makes (dropped on reset)
    chain: bool = True         # it writes migrations: tests/chains/<name>.patch holds them
    exercises: bool = True     # it has a solved copy in notebooks/solutions/
    brownfield: bool = False   # start as a production made by db.create_all() long ago: an
                               # older models.py, rows, a hand-made index, no migrations
                               # (runtime/brownfield.py)

    def database(self, solutions=False, suffix="", learner=None):
        """The database's name: lab02, lab02_solutions, lab03_replay, ...; for a
        named learner (labapp.server.learners) in their namespace: alice__lab02."""
        return learners.namespaced(f"{self.name}{'_' + SOLUTIONS if solutions else ''}{suffix}",
                                   learner)

    def workspace(self, solutions=False):
        """The workspace folder's name, under the labs' workspaces/ folder (beside
        the learner's own notebooks, so it needs no learner's name: the labs link to it)."""
        return self.database(solutions)

    def copies(self):
        """(notebook path relative to notebooks/, solutions?) of each copy."""
        found = [(self.notebook, False)]
        if self.exercises:
            found.append((f"{SOLUTIONS}/{self.notebook}", True))
        return found


LABS = (
    LabSpec("lab00", "00-Welcome.ipynb", "Welcome: why database migrations?", minutes=5,
        chain=False, exercises=False),
    LabSpec("lab01", "01-First-Migration.ipynb", "Your first migration", minutes=60,
        createdb=False),
    LabSpec("lab02", "02-Evolve-A-Live-Schema.ipynb", "Evolve a live schema", minutes=65,
        migrations=True, data=True),
    LabSpec("lab03", "03-Production-Branch-Replay.ipynb", "The production-branch replay", minutes=65,
        createdb=False, migrations=True, data=True, git=True,
        more_databases=("_dev", "_replay")),
    LabSpec("lab04", "04-Enum-Swap-DealCurrency.ipynb", "Enum swap: DealCurrency gains BTC", minutes=70,
        migrations=True, data=True),
    LabSpec("lab05", "05-Duplicate-Enum-ContactEventStatus.ipynb",
        "Duplicate enum: ContactEventStatus", minutes=70, migrations=True, data=True,
        more_databases=("_fresh",)),
    LabSpec("lab06", "06-Migrations-In-A-Team.ipynb", "Migrations in a team", minutes=75,
        migrations=True, data=True, git=True),
    LabSpec("lab07", "07-Migrate-While-The-App-Serves.ipynb", "Migrate while the app serves", minutes=70,
        migrations=True, data=True),
    LabSpec("lab08", "08-Rename-Without-Downtime.ipynb", "Rename without downtime", minutes=45,
        migrations=True, data=True),
    LabSpec("lab09", "09-Many-App-Servers.ipynb", "Deploy day: many app servers, one database",
        minutes=65, migrations=True, data=True),
    LabSpec("lab10", "10-Constraints-Types-Backfills.ipynb",
        "Constraints, type changes and backfills without downtime", minutes=85,
        migrations=True, data=True),
    LabSpec("lab11", "11-Adopt-An-Existing-Database.ipynb", "Adopt an existing database", minutes=70,
        brownfield=True, more_databases=("_new", "_staging", "_old")),
)


def get(name):
    """The lab called `name` ("lab02"); also accepts a solved copy's "lab02_solutions".
    Returns (lab, solutions?)."""
    base, solutions = name, False
    if name.endswith("_" + SOLUTIONS):
        base, solutions = name[: -len(SOLUTIONS) - 1], True
    for lab in LABS:
        if lab.name == base and (lab.exercises or not solutions):
            return lab, solutions
    known = ", ".join(lab.name for lab in LABS)
    raise LabError(f"no lab called {name!r} (the labs: {known})")


def for_notebook(path):
    """(lab, solutions?) of a notebook file, from its name and folder (a copy
    named NN-Title-something.ipynb counts as NN-Title.ipynb)."""
    path = Path(path)
    for lab in LABS:
        stem = Path(lab.notebook).stem
        if path.stem == stem or path.stem.startswith(stem + "-"):
            return lab, path.parent.name == SOLUTIONS and lab.exercises
    return None, False
