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


def test_labs_07_and_08_have_rows_of_their_own():
    rows = troubleshooting_rows()
    for number in ("07", "08"):
        assert any(re.search(rf"\blabs? (\d\d-)?{number}\b|labs 07-{number}", row) for row in rows), number
