"""The instructor guide's two formats add up, from the labs' own time estimates
(tools/run_of_show.py over tools/lab_times.py), and the guide shows them. Each lab's
time comes from one place, the registry, and every page that states it agrees."""
import re

import pytest

from labapp.runtime import labs
from tools import lab_times, run_of_show

FORMATS = {f.name: f for f in run_of_show.FORMATS}


@pytest.mark.parametrize("fmt", run_of_show.FORMATS, ids=lambda f: f.name)
def test_the_format_fits_with_its_reserve_and_every_slot_has_slack(fmt):
    slots = run_of_show.plan(fmt)
    used = sum(slot.minutes for slot in slots)
    assert used + fmt.reserve <= fmt.minutes, (used, fmt.reserve, fmt.minutes)
    for spec in labs.LABS:
        if fmt.labs is not None and spec.name not in fmt.labs:
            continue
        [slot] = [s for s in slots if s.what.startswith(f"**Lab {spec.name[3:]}**")]
        measured = lab_times.measure(spec)
        walk = measured.minutes - sum(e.minutes for e in run_of_show.exercises(spec))
        in_room = walk + sum(e.minutes for e in slot.room)
        assert slot.minutes >= in_room * (1 + run_of_show.SLACK), (spec.name, slot.minutes, in_room)


@pytest.mark.parametrize("fmt", run_of_show.FORMATS, ids=lambda f: f.name)
def test_every_exercise_is_in_the_room_or_homework_and_later_ones_go_home_first(fmt):
    for slot in run_of_show.plan(fmt):
        if not slot.what.startswith("**Lab"):
            continue
        lab = slot.what.split()[1].rstrip("*")
        spec, _ = labs.get(f"lab{lab}")
        numbers = [e.number for e in run_of_show.exercises(spec)]
        assert [e.number for e in slot.room + slot.homework] == numbers
        assert [e.number for e in slot.homework] == numbers[len(slot.room):]  # a suffix
        for keep in run_of_show.KEEP:
            if keep[0] == spec.name:
                assert keep[1] in [e.number for e in slot.room]


def test_exercise_minutes_are_lab_times_own():
    for spec in labs.LABS:
        found, measured = run_of_show.exercises(spec), lab_times.measure(spec)
        assert len(found) == measured.exercises
        assert sum(e.minutes for e in found) == pytest.approx(
            measured.exercises * lab_times.EXERCISE_BASE + measured.solution_lines * lab_times.SOLUTION_LINE)


def test_every_registered_lab_is_in_the_day_or_its_self_study():
    slots = run_of_show.plan(FORMATS["day"])
    shown = [s.what.split()[1].rstrip("*") for s in slots if s.what.startswith("**Lab")]
    rendered = run_of_show.render(FORMATS["day"])
    later = [spec.name[3:] for spec in labs.LABS if spec.name[3:] not in shown]
    assert sorted(shown + later) == [spec.name[3:] for spec in labs.LABS]
    assert all(f"lab {number} (" in rendered.split("Self-study")[-1] for number in later), rendered


def test_the_guide_shows_what_the_tool_computes():
    assert run_of_show.document() in run_of_show.GUIDE.read_text(encoding="utf-8"), (
        "the instructor guide's run of show is stale: python tools/run_of_show.py --write")


def test_the_hands_on_day_does_every_exercise_in_the_room_with_time_to_talk():
    day = FORMATS["day"]
    slots = [s for s in run_of_show.plan(day) if s.what.startswith("**Lab")]
    assert not [e for s in slots for e in s.homework], "the hands-on day sends no exercise home"
    assert sum(len(s.room) for s in slots) >= 9, "the day is mostly doing, not watching"
    for slot in slots:
        spec, _ = labs.get("lab" + slot.what.split()[1].rstrip("*"))
        without_talk = run_of_show.Format("x", "x", day.minutes, labs=day.labs)
        [alone] = [s for s in run_of_show.plan(without_talk) if s.what == slot.what]
        assert slot.minutes >= alone.minutes + day.talk, (slot.what, slot.minutes, alone.minutes)


def test_a_format_that_may_not_send_exercises_home_says_so_when_it_does_not_fit():
    tight = run_of_show.Format("tight", "Tight", 120, labs=("lab01", "lab04"), homework=False)
    with pytest.raises(run_of_show.DoesNotFit, match="every exercise in the room"):
        run_of_show.plan(tight)


@pytest.mark.parametrize("spec", labs.LABS, ids=lambda spec: spec.name)
def test_a_labs_time_is_the_registrys_in_its_notebooks_and_the_guide(spec):
    assert spec.minutes == lab_times.measure(spec).rounded, (
        f"{spec.name}: the registry says {spec.minutes} minutes, the estimate rounds to "
        f"{lab_times.measure(spec).rounded} (python tools/lab_times.py): update LabSpec.minutes")
    for notebook, _ in spec.copies():
        assert run_of_show.stated_minutes(run_of_show.ROOT / "notebooks" / notebook) == spec.minutes, (
            f"{notebook}'s first cell disagrees with the registry: python tools/run_of_show.py --write")
    guide = run_of_show.guide_minutes(run_of_show.GUIDE.read_text(encoding="utf-8"))
    assert guide.get(spec.name) == spec.minutes, (
        "the guide's lab table disagrees with the registry: python tools/run_of_show.py --write")


def test_write_renders_the_registrys_minutes_where_they_were_wrong():
    guide = run_of_show.GUIDE.read_text(encoding="utf-8")
    wrong = guide.replace("| Your first migration | 60 |", "| Your first migration | 45 |")
    assert run_of_show.guide_minutes(wrong)["lab01"] == 45
    assert run_of_show.guide_minutes(run_of_show.with_guide_minutes(wrong))["lab01"] == 60


@pytest.mark.parametrize("spec", labs.LABS, ids=lambda spec: spec.name)
def test_the_guide_covers_every_lab_in_its_table_and_its_teaching_notes(spec):
    guide = run_of_show.GUIDE.read_text(encoding="utf-8")
    number = spec.name.removeprefix("lab")
    assert f"| {number} | `{spec.notebook.removesuffix('.ipynb')}` |" in guide, "no row in the lab table"
    notes = guide.split("## Teaching notes", 1)[1].split("\n## ", 1)[0]
    assert re.search(rf"^\*\*Labs? (\d\d and )?{number}\b", notes, re.M), (
        f"no teaching note for lab {number} (a paragraph starting **Lab {number}, ...**)")
