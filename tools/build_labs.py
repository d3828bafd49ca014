"""Make the learner copy of each lab from its solution notebook, and run both.

    python tools/build_labs.py                                # every lab
    python tools/build_labs.py 02-Evolve-A-Live-Schema.ipynb  # one

The solution notebook (notebooks/solutions/NN-Title.ipynb) is the source. Its
cells tagged `solution` become, in the learner copy (notebooks/NN-Title.ipynb),
an `exercise` cell holding only the solution's leading comment lines: write
them to say what goes where ("# 1. edit models.py: ..."); a solution cell
without them gets STUB. Everything else is copied as it is. Both are then
executed top to bottom in a fresh kernel (nbclient), so
both are committed with outputs and nbval checks both: the self-checks print
"done" in the solutions and a hint in the labs.

A re-run keeps each stored output that nbval would count as the same (equal
under tests/sanitize.cfg), so a commit shows only the outputs that changed.
"""
import copy
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tools import sanitize  # noqa: E402

os.environ["LABAPP_FRESH"] = "1"  # the stored outputs are a fresh lab's (labapp.runtime.lab.setup)

NOTEBOOKS = ROOT / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"
# sanitize.cfg sections that hide where the notebook ran (the workspace, the venv):
# applied to the stored outputs too, so no committed notebook shows this machine's paths
MACHINE_PATHS = ("workspace-paths", "python-warning-location")
STUB = "# Your turn: solve the exercise above here, then run the self-check below."


def stub(solution_source):
    """The learner's cell for a solution cell: its leading comments, or STUB."""
    lines = solution_source.splitlines()
    comments = []
    for line in lines:
        if not line.startswith("#"):
            break
        comments.append(line)
    return "\n".join(comments) or STUB


def learner_copy(solution_path):
    nb = nbformat.read(solution_path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "solution" in tags:
            cell.source = stub(cell.source)
            cell.metadata["tags"] = [t for t in tags if t != "solution"] + ["exercise"]
            cell.outputs, cell.execution_count = [], None
    return nb


def _text(output):
    """What nbval compares of an output, as one string."""
    if output.get("output_type") == "stream":
        return f"{output.name}:{output.text}"
    if output.get("output_type") == "error":
        return f"{output.ename}:{output.evalue}"
    data = output.get("data", {})
    return repr(sorted((k, v) for k, v in data.items() if not k.startswith("image/")))


def _same(old, new, rules):
    """Would nbval count these outputs as the same? (It merges each stream's
    pieces, then compares under the sanitize rules.)"""
    from nbval.plugin import coalesce_streams

    def clean(text):
        for regex, replace in rules:
            text = regex.sub(replace, text)
        return text
    old, new = coalesce_streams(copy.deepcopy(old)), coalesce_streams(copy.deepcopy(new))
    return len(old) == len(new) and all(
        a.get("output_type") == b.get("output_type") and clean(_text(a)) == clean(_text(b))
        for a, b in zip(old, new, strict=False))


def execute(nb, path):
    """Run `nb` top to bottom in a fresh kernel started in `path`'s folder, and write it
    to `path`, keeping stored outputs nbval would count as unchanged."""
    previous = nbformat.read(path, as_version=4) if path.exists() else None
    NotebookClient(nb, timeout=900, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    rules = sanitize.rules()
    machine = sanitize.rules(sections=MACHINE_PATHS)
    old_cells = {c.get("id"): c for c in previous.cells} if previous else {}
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                for regex, replace in machine:
                    output.text = regex.sub(replace, output.text)
        old = old_cells.get(cell.get("id"))
        if old is not None and cell.cell_type == "code" and old.source == cell.source \
                and _same(old.get("outputs", []), cell.outputs, rules):
            cell.outputs = old.outputs
    nbformat.write(nb, path)


def main(names):
    if {"-h", "--help"} & set(names):
        print(__doc__)
        return
    unknown = [n for n in names if not (SOLUTIONS / n).exists() and not (NOTEBOOKS / n).exists()]
    if unknown:  # before any kernel starts: nothing is built
        sys.exit(f"build_labs: no lab {', '.join(unknown)} in notebooks/ or notebooks/solutions/"
                 " (a name like 02-Evolve-A-Live-Schema.ipynb); nothing was built")
    names = names or sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    for name in names:
        solution = SOLUTIONS / name
        if not solution.exists():  # a lab without exercises (00): run it as it is
            execute(nbformat.read(NOTEBOOKS / name, as_version=4), NOTEBOOKS / name)
            print(f"built {name}: executed")
            continue
        execute(nbformat.read(solution, as_version=4), solution)
        execute(learner_copy(solution), NOTEBOOKS / name)
        print(f"built {name}: solution and learner copy executed")


if __name__ == "__main__":
    main(sys.argv[1:])
