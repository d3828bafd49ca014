"""The instructor guide's run of show, computed: two formats that add up.

    python tools/run_of_show.py           # both formats, as the guide's tables
    python tools/run_of_show.py --write   # ... written into notebooks/INSTRUCTOR-GUIDE.md

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
error: drop a lab from it. The full day runs labs 00-07 (labs 08 and 10 are self-study: with either the
day does not fit, even with every exercise at home); tests/test_run_of_show.py checks that
both formats add up and that the guide shows what this prints.
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


FORMATS = (
    # the kit's first migration, then its flagship (the enum swap, with the data-survival
    # proofs and the lock observatory); labs 02-06 at this length do not fit beside them
    Format("core", "Three-hour core session", 180,
           labs=("lab00", "lab01", "lab04"),
           breaks={"lab01": (10, "Break")}),
    Format("day", "Full day", 480,
           labs=("lab00", "lab01", "lab02", "lab03", "lab04", "lab05", "lab06", "lab07"),
           breaks={"lab02": (15, "Break"), "lab04": (45, "Lunch"), "lab06": (15, "Break")},
           opening=10, closing=10, reserve=20),
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
        return ceil5((walk + m.code_cells * ROOM_CELL_SECONDS / 60 + room) * (1 + SLACK))

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
        movable = [e for ex in work.values() for e in last_in_room(ex)]
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
    if others:
        lines += ["", "Self-study after the session: " + ", ".join(
            f"lab {s.name[3:]} ({s.title})" for s in others) + "."]
    return "\n".join(lines)


def document():
    return "\n\n".join([BEGIN, *(render(f) for f in FORMATS), END])


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    text = document()
    if args == ["--write"]:
        guide = GUIDE.read_text(encoding="utf-8")
        pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
        if not pattern.search(guide):
            print(f"no run-of-show markers in {GUIDE}", file=sys.stderr)
            return 1
        GUIDE.write_text(pattern.sub(lambda _: text, guide), encoding="utf-8")
        print(f"wrote the run of show into {GUIDE.relative_to(ROOT)}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
