"""Each lab's nbval time against its floor, and the whole `make test`.

A lab's floor = its `!flask` subprocesses x the CLI floor + its SQL time, where
the SQL time is what its %sql / %%sql cells took in this very run (each is one
ipython-sql round trip on an open connection: nothing to save there). The ratio
nbval / floor then says how much the rest (Python cells, nbval's comparisons,
kernel start, `!` shells that are not flask) adds.
"""
import json
import re
import subprocess
import sys

from labapp.runtime import labs
from tools import scenarios
from tools.bench.measure import TARGET_LAB, TARGET_RATIO, TARGET_SUITE, child_env, timed

DURATION = re.compile(r"^\s*([\d.]+)s (setup|call|teardown)\s+(\S+\.ipynb)::Cell (\d+)", re.M)


def code_cells(path):
    return [("".join(c["source"])) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
            if c["cell_type"] == "code"]


def flask_calls(source):
    """`!flask ...` lines, also `!VAR=... flask ...` and `!flask ... && flask ...`."""
    return sum(len(re.findall(r"(?:^|&&|\|\||;)\s*(?:\w+=\S+\s+)*flask\s", line[1:]))
               for line in source.splitlines() if line.startswith("!"))


def bench_labs(table, floor):
    """Every notebook (learner copies, then solutions) in ONE pytest -p no:xdist run
    in a sandbox (so it never resets the labs you work in), with --durations: a
    lab's time is the sum of its cells' setup+call+teardown (the kernel start is in
    Cell 0's setup; pytest's own start-up is not counted). For each lab, whether
    it holds the targets."""
    with scenarios.sandbox("lbench-labs-") as (top, env):
        subprocess.run([sys.executable, "-c", "from labapp.server import pgserver; pgserver.server_uri()"],
                       env=env, cwd=top, check=True)  # warm: the labs find it running
        copies = [notebook for lab in labs.LABS for notebook, _ in lab.copies()]
        books = [top / "notebooks" / notebook for notebook in sorted(copies, key=lambda n: "/" in n)]
        wall, proc = timed([sys.executable, "-m", "pytest", "-p", "no:xdist", "-q", "--durations=0",
                            "--durations-min=0", *[str(b.relative_to(top)) for b in books]],
                           cwd=top, env=env)
        cells = {str(book.relative_to(top)): code_cells(book) for book in books}
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "no output"
    per_cell = {}
    for seconds, _, book, cell in DURATION.findall(proc.stdout):
        key = (book, int(cell))
        per_cell[key] = per_cell.get(key, 0.0) + float(seconds)
    verdicts = []
    for rel, sources in cells.items():
        total = sum(s for (b, _), s in per_cell.items() if b == rel)
        n_flask = sum(flask_calls(src) for src in sources)
        sql = sum(per_cell.get((rel, i), 0.0) for i, src in enumerate(sources)
                  if src.lstrip().startswith(("%sql", "%%sql")))
        lab_floor = n_flask * floor + sql
        ratio = total / lab_floor if lab_floor else float("nan")
        ok_time, ok_ratio = total <= TARGET_LAB, ratio <= TARGET_RATIO
        verdicts.append(ok_time and ok_ratio)
        table.row(f"lab {rel.removeprefix('notebooks/')}", total,
                  f"{n_flask} flask x {floor:.2f} + sql {sql:.2f} = floor {lab_floor:.1f} s; "
                  f"ratio {ratio:.2f}; <=20 s: {'yes' if ok_time else 'NO'}; "
                  f"<=1.5x: {'yes' if ok_ratio else 'NO'}")
    table.row("all labs, one sequential nbval run (wall)", wall, summary)
    return verdicts


def bench_suite(table):
    """`make test` without rebuilding .venv (-o: take the stamp as up to date)."""
    seconds, proc = timed(["make", "-o", ".venv/.installed", "test"], cwd=scenarios.ROOT, env=child_env())
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    ok = seconds <= TARGET_SUITE
    table.row("whole suite: make test", seconds, f"{summary[:70]}; <={TARGET_SUITE:.0f} s: {'yes' if ok else 'NO'}")
    return ok
