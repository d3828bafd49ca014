"""The instructor guide's two formats add up, from the labs' own time estimates
(tools/run_of_show.py over tools/lab_times.py), and the guide shows them."""
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


def test_every_registered_lab_is_in_the_full_day_or_its_self_study():
    slots = run_of_show.plan(FORMATS["day"])
    shown = [s.what.split()[1].rstrip("*") for s in slots if s.what.startswith("**Lab")]
    rendered = run_of_show.render(FORMATS["day"])
    later = [spec.name[3:] for spec in labs.LABS if spec.name[3:] not in shown]
    assert shown + later == [spec.name[3:] for spec in labs.LABS]
    assert all(f"lab {number} (" in rendered.split("Self-study")[-1] for number in later), rendered


def test_the_guide_shows_what_the_tool_computes():
    assert run_of_show.document() in run_of_show.GUIDE.read_text(encoding="utf-8"), (
        "the instructor guide's run of show is stale: python tools/run_of_show.py --write")
