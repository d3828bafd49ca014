"""How long each lab takes a person, estimated from what the notebook holds.

    python tools/lab_times.py        # a table, one row per lab (the solved copy)

A person-paced model, not a stopwatch on people: reading the prose at 130 words
a minute (technical text, read closely), 0.4 min per code cell (read it, run
it, read its output), and for each exercise 4 min plus 0.25 min per line of
its solution (work out what to do, type it, run the self-check), and 1 min per
"predict, then run" question. Each lab states the rounded estimate ("*About N
minutes.*"), and tests/test_exercises.py checks that it still does; the
instructor guide's run of show is built from these rows.

The conventions it counts (the learner copies follow them too):
* an exercise is a markdown cell that starts `**Exercise N.**` (or
  `**Exercise N (diagnose).**` for one that asks to find and fix a fault);
* its solution is the code cells tagged `solution` after it;
* a prediction is a markdown cell that starts `**Predict.**` and hides its
  answer in a `<details>` block.
"""
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labapp.runtime import labs  # noqa: E402

EXERCISE = re.compile(r"^\*\*Exercise (\d+)( \(diagnose\))?\.\*\*", re.M)
PREDICTION = re.compile(r"^\*\*Predict\.\*\*", re.M)
STATED = re.compile(r"\*About (\d+) minutes\.\*")
WORDS_PER_MINUTE, CELL, EXERCISE_BASE, SOLUTION_LINE, PREDICT = 130, 0.4, 4.0, 0.25, 1.0


@dataclass
class Estimate:
    name: str
    words: int
    code_cells: int
    exercises: int
    diagnose: int
    predictions: int
    solution_lines: int
    stated: int  # minutes the lab says it takes (0: it does not say)

    @property
    def minutes(self):
        return (self.words / WORDS_PER_MINUTE + self.code_cells * CELL
                + self.exercises * EXERCISE_BASE + self.solution_lines * SOLUTION_LINE
                + self.predictions * PREDICT)

    @property
    def rounded(self):
        """The estimate to the nearest 5 minutes (at least 5)."""
        return max(5, 5 * round(self.minutes / 5))


def measure(spec, notebooks=ROOT / "notebooks"):
    notebook, _ = spec.copies()[-1]  # the solved copy where there is one
    cells = json.loads((notebooks / notebook).read_text(encoding="utf-8"))["cells"]
    prose = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    code = [c for c in cells if c["cell_type"] == "code"]
    solutions = [c for c in code if "solution" in c.get("metadata", {}).get("tags", [])]
    exercises = [m for text in prose for m in EXERCISE.finditer(text)]
    stated = next((int(m.group(1)) for text in prose for m in STATED.finditer(text)), 0)
    return Estimate(spec.name,
               words=sum(len(re.findall(r"[A-Za-z0-9_`'-]+", text)) for text in prose),
               code_cells=len(code) - len(solutions),
               exercises=len(exercises),
               diagnose=sum(1 for m in exercises if m.group(2)),
               predictions=sum(1 for text in prose if PREDICTION.match(text) and "<details>" in text),
               solution_lines=sum(len("".join(c["source"]).splitlines()) for c in solutions),
               stated=stated)


def main():
    rows = [measure(spec) for spec in labs.LABS]
    print(f"{'lab':<6} {'words':>6} {'cells':>6} {'exercises':>9} {'diagnose':>8} "
          f"{'predict':>7} {'sol. lines':>10} {'estimate':>9} {'stated':>6}")
    for r in rows:
        print(f"{r.name:<6} {r.words:>6} {r.code_cells:>6} {r.exercises:>9} {r.diagnose:>8} "
              f"{r.predictions:>7} {r.solution_lines:>10} {r.minutes:>7.1f} m {r.stated:>4} m")
    print(f"{'all':<6} {'':>57} {sum(r.minutes for r in rows):>7.1f} m")


if __name__ == "__main__":
    main()
