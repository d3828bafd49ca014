"""The instructor guide's run of show, computed: two formats that add up.

    python tools/run_of_show.py           # both formats, as the guide's tables
    python tools/run_of_show.py --write   # ... written into notebooks/INSTRUCTOR-GUIDE.md,
                                          # with each lab's minutes (the registry's) into the
                                          # guide's lab table and each notebook's first cell

Where the minutes come from:
* each lab's person-paced estimate (tools/lab_times.py: reading, code cells,
  exercises), split into its walkthrough and its exercises (4 min + 0.25 min
  per solution line each, lab_times' own figures);
* the room: every code cell also costs its latency on the room's server,
  ROOM_CELL_SECONDS (the p95 that `make bench-room` sizes a room for);
* slack: each lab slot gets SLACK more (people run at different speeds),
  rounded up to 5 minutes, and each format keeps RESERVE minutes free at the end.

An exercise runs "in the room" unless the format does not fit: then the
longest exercises go home first (never those in KEEP: the later labs assume
them). A format that does not fit with all its exercises at home is an
error: drop a lab from it. The hands-on day sends nothing home: every exercise is done in
the room, and each lab slot also gives the instructor TALK minutes to introduce it and take
questions, so it runs fewer labs (the others are self-study). tests/test_run_of_show.py
checks that both formats add up and that the guide shows what this prints.
"""
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labapp.runtime import labs  # noqa: E402
from tools import lab_times  # noqa: E402

GUIDE = ROOT / "notebooks" / "INSTRUCTOR-GUIDE.md"
ROOM_CELL_SECONDS = 2.0
SLACK = 0.15
KEEP = {("lab01", 2)}  # every later lab assumes a learner has typed migrate + upgrade once
BEGIN, END = "<!-- run-of-show: begin (python tools/run_of_show.py --write) -->", "<!-- run-of-show: end -->"


@dataclass
class Format:
    name: str
    title: str
    minutes: int
    labs: tuple = None               # None: every registered lab
    breaks: dict = field(default_factory=dict)  # after lab: (minutes, what)
    opening: int = 5
    closing: int = 5
    reserve: int = 10
    talk: int = 0                    # per lab: the instructor introduces it, takes questions
    homework: bool = True            # may exercises go home when the format does not fit?


FORMATS = (
    # the kit's first migration, then its flagship (the enum swap, with the data-survival
    # proofs and the lock observatory); labs 02-06 at this length do not fit beside them
    Format("core", "Three-hour core session", 180,
           labs=("lab00", "lab01", "lab04"),
           breaks={"lab01": (10, "Break")}),
    # a hands-on day: every exercise in the room and time to talk, so fewer labs: the first
    # migration, the enum swap, then the app kept serving through a migration and a rename
    Format("day", "Hands-on day", 480,
           labs=("lab00", "lab01", "lab04", "lab07", "lab08"),
           breaks={"lab01": (15, "Break"), "lab04": (45, "Lunch"), "lab07": (15, "Break")},
           opening=10, closing=10, reserve=20, talk=10, homework=False),
)


@dataclass
class Exercise:
    lab: str
    number: int
    minutes: float


def exercises(spec):
    """Each exercise of a lab and its minutes (lab_times' figures, per exercise)."""
    notebook, _ = spec.copies()[-1]
    cells = json.loads((ROOT / "notebooks" / notebook).read_text(encoding="utf-8"))["cells"]
    found, current = [], None
    for cell in cells:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            for match in lab_times.EXERCISE.finditer(text):
                current = Exercise(spec.name, int(match.group(1)), lab_times.EXERCISE_BASE)
                found.append(current)
        elif current and "solution" in cell.get("metadata", {}).get("tags", []):
            current.minutes += lab_times.SOLUTION_LINE * len(text.splitlines())
    return found


@dataclass
class Slot:
    what: str
    minutes: int
    room: list = field(default_factory=list)
    homework: list = field(default_factory=list)


def ceil5(minutes):
    return 5 * math.ceil(minutes / 5 - 1e-9)


class DoesNotFit(Exception):
    pass


def plan(fmt):
    """The format's slots: every exercise of its labs in the room or at home."""
    specs = [s for s in labs.LABS if fmt.labs is None or s.name in fmt.labs]
    measured = {s.name: lab_times.measure(s) for s in specs}
    work = {s.name: exercises(s) for s in specs}
    home = set()

    def lab_minutes(spec):
        m = measured[spec.name]
        walk = m.minutes - sum(e.minutes for e in work[spec.name])
        room = sum(e.minutes for e in work[spec.name] if (e.lab, e.number) not in home)
        return (ceil5((walk + m.code_cells * ROOM_CELL_SECONDS / 60 + room) * (1 + SLACK))
                + fmt.talk)

    def slots():
        found = [Slot("Welcome, goals, how the room works", fmt.opening)]
        for spec in specs:
            found.append(Slot(f"**Lab {spec.name[3:]}** {spec.title}", lab_minutes(spec),
                              [e for e in work[spec.name] if (e.lab, e.number) not in home],
                              [e for e in work[spec.name] if (e.lab, e.number) in home]))
            if spec.name in fmt.breaks:
                found.append(Slot(fmt.breaks[spec.name][1], fmt.breaks[spec.name][0]))
        found.append(Slot("Wrap-up: what each lab showed, where to go next", fmt.closing))
        return found

    def total():
        return sum(slot.minutes for slot in slots())

    def last_in_room(ex):  # exercises build on each other: the later ones go home first
        left = [e for e in ex if (e.lab, e.number) not in home]
        return left[-1:] if left and (left[-1].lab, left[-1].number) not in KEEP else []

    while total() > fmt.minutes - fmt.reserve:
        movable = [e for ex in work.values() for e in last_in_room(ex)] if fmt.homework else []
        if not movable and not fmt.homework:
            raise DoesNotFit(f"{fmt.title}: {total()} minutes with every exercise in the room, "
                             f"over {fmt.minutes - fmt.reserve}: drop a lab from it")
        if not movable:
            raise DoesNotFit(f"{fmt.title}: {total()} minutes with every exercise at home, "
                             f"over {fmt.minutes - fmt.reserve}: drop a lab from it")
        longest = max(movable, key=lambda e: (e.minutes, e.lab, e.number))
        home.add((longest.lab, longest.number))
    for ex in work.values():  # bring back what fits after all, in order
        for e in ex:
            if (e.lab, e.number) in home:
                home.discard((e.lab, e.number))
                if total() > fmt.minutes - fmt.reserve:
                    home.add((e.lab, e.number))
                    break
    return slots()


def render(fmt):
    rows, clock = [], 0
    for slot in plan(fmt):
        room = ", ".join(f"ex. {e.number}" for e in slot.room) or ("–" if slot.homework else "")
        home = ", ".join(f"ex. {e.number}" for e in slot.homework) or ("–" if slot.room else "")
        rows.append(f"| {clock // 60}:{clock % 60:02d} | {slot.minutes} | {slot.what} | {room} | {home} |")
        clock += slot.minutes
    spare = fmt.minutes - clock
    others = [s for s in labs.LABS if fmt.labs is not None and s.name not in fmt.labs]
    lines = [f"### {fmt.title} ({fmt.minutes} minutes{', e.g. 9:00-17:00' if fmt.minutes == 480 else ''})", "",
             "| clock | minutes | what | in the room | homework |", "|---|---|---|---|---|", *rows,
             f"| {clock // 60}:{clock % 60:02d} | {spare} | Reserve: questions, the room's slowest "
             "machine, a late start | | |"]
    if fmt.talk:
        lines += ["", f"Each lab's slot includes {fmt.talk} minutes for you: introduce the lab, "
                  "take questions, and walk through an exercise on the projector."]
    if others:
        lines += ["", "Self-study after the session: " + ", ".join(
            f"lab {s.name[3:]} ({s.title})" for s in others) + "."]
    return "\n".join(lines)


def document():
    return "\n\n".join([BEGIN, *(render(f) for f in FORMATS), END])


# -- each lab's time, from the registry (LabSpec.minutes), where people read it -------------

GUIDE_ROW = re.compile(r"^\| (\d\d) \| `[^`|]+` \| [^|]+ \| (\d*) \|", re.M)


def guide_minutes(guide_text):
    """{"lab01": 60, ...}: the minutes column of the guide's lab table."""
    return {f"lab{m.group(1)}": int(m.group(2) or 0) for m in GUIDE_ROW.finditer(guide_text)}


def with_guide_minutes(guide_text):
    def row(match):
        spec, _ = labs.get(f"lab{match.group(1)}")
        start, end = match.span(2)
        line = match.group(0)
        return line[: start - match.start()] + str(spec.minutes) + line[end - match.start():]
    return GUIDE_ROW.sub(row, guide_text)


def first_cell(path):
    """The notebook's first cell's text (where a lab says how long it takes)."""
    return "".join(json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"])


def stated_minutes(path):
    """The minutes a notebook's first cell states (*About N minutes.*), or None."""
    match = lab_times.STATED.search(first_cell(path))
    return int(match.group(1)) if match else None


def write_notebook_minutes(spec):
    """Render the registry's minutes into the first cell of each copy of the lab (a Markdown
    cell: no output changes). Returns the copies it changed."""
    import nbformat  # only --write needs it

    changed = []
    for notebook, _ in spec.copies():
        path = ROOT / "notebooks" / notebook
        nb = nbformat.read(path, as_version=4)
        cell = nb.cells[0]
        text = f"*About {spec.minutes} minutes.*"
        if not lab_times.STATED.search(cell.source):
            raise SystemExit(f"{notebook}: its first cell states no time: add *About N minutes.* to it")
        new = lab_times.STATED.sub(text, cell.source, count=1)
        if new != cell.source:
            cell.source = new
            nbformat.write(nb, path)
            changed.append(notebook)
    return changed


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    text = document()
    if args == ["--write"]:
        guide = GUIDE.read_text(encoding="utf-8")
        pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
        if not pattern.search(guide):
            print(f"no run-of-show markers in {GUIDE}", file=sys.stderr)
            return 1
        GUIDE.write_text(with_guide_minutes(pattern.sub(lambda _: text, guide)), encoding="utf-8")
        print(f"wrote the run of show and each lab's minutes into {GUIDE.relative_to(ROOT)}")
        for spec in labs.LABS:
            for notebook in write_notebook_minutes(spec):
                print(f"wrote {spec.minutes} minutes into notebooks/{notebook}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
