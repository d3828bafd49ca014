"""The guide's troubleshooting table (notebooks/INSTRUCTOR-GUIDE.md, "The usual
mistakes") has no row twice and covers labs 07 and 08 by name: a helper in the room
looks a symptom up there."""
import collections
import re

from helpers import ROOT

GUIDE = ROOT / "notebooks" / "INSTRUCTOR-GUIDE.md"


def troubleshooting_rows():
    text = GUIDE.read_text()
    section = text[text.index("## The usual mistakes"):]
    section = section[:section.index("\n## ", 1)]
    return [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| symptom")]


def test_no_troubleshooting_row_twice():
    rows = troubleshooting_rows()
    symptoms = collections.Counter(row.split(" | ")[0] for row in rows)
    assert rows and [s for s, n in symptoms.items() if n > 1] == []


def labs_named(row):
    """The lab numbers a row names: `lab 07`, `labs 07-09` (a range), `labs 07 and 08`."""
    found = set()
    for first, last in re.findall(r"\blabs? (\d\d)(?:-(\d\d))?", row):
        found |= {f"{n:02d}" for n in range(int(first), int(last or first) + 1)}
    found |= set(re.findall(r"\blabs \d\d and (\d\d)", row))
    return found


def test_labs_07_and_08_have_rows_of_their_own():
    rows = troubleshooting_rows()
    for number in ("07", "08"):
        assert any(number in labs_named(row) for row in rows), number


def test_a_range_of_labs_names_each_lab_in_it():
    assert labs_named("| labs 07-09: a plot |") == {"07", "08", "09"}
    assert labs_named("| lab 07 ex. 1: |") == {"07"}
