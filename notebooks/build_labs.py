"""Make the learner copy of each lab from its solution notebook, and run both.

    python notebooks/build_labs.py                 # every lab
    python notebooks/build_labs.py 02-Evolve-A-Live-Schema.ipynb

The solution notebook (notebooks/solutions/NN-Title.ipynb) is the source.
Its cells tagged `solution` become, in the learner copy (notebooks/NN-Title.ipynb),
a blank `exercise` cell; everything else is copied as it is. Both are then
executed top to bottom, so both are committed with outputs and nbval checks
both: the self-checks print "done" in the solutions and a hint in the labs.
"""
import configparser
import re
import subprocess
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOLUTIONS = HERE / "solutions"
# sanitize.cfg sections that hide where the notebook ran (the workspace, the venv):
# applied to the stored outputs too, so no committed notebook shows this machine's
# paths; nbval applies them to both sides before comparing, so nothing else changes
MACHINE_PATHS = ("workspace-paths", "python-warning-location")
STUB = "# Your turn: solve the exercise above here, then run the self-check below."


def learner_copy(solution_path):
    nb = nbformat.read(solution_path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "solution" in tags:
            cell.source = STUB
            cell.metadata["tags"] = [t for t in tags if t != "solution"] + ["exercise"]
            cell.outputs, cell.execution_count = [], None
    target = HERE / solution_path.name
    nbformat.write(nb, target)
    return target


def execute(path):
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
         "--inplace", "--log-level=WARN", str(path)],
        check=True,
    )
    scrub(path)


def scrub(path):
    """Drop what only says where and when the notebook ran: nbconvert's per-cell
    clock stamps and the machine paths in stream outputs."""
    sanitize = configparser.ConfigParser(interpolation=None)
    sanitize.read(HERE / "sanitize.cfg")
    rules = [(re.compile(sanitize[s]["regex"]), sanitize[s]["replace"]) for s in MACHINE_PATHS]
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                for regex, replace in rules:
                    output.text = regex.sub(replace, output.text)
    nbformat.write(nb, path)


def main(names):
    names = names or sorted(p.name for p in HERE.glob("[0-9][0-9]-*.ipynb"))
    for name in names:
        solution = SOLUTIONS / name
        if not solution.exists():  # a lab without exercises (00): run it as it is
            execute(HERE / name)
            print(f"built {name}: executed")
            continue
        execute(solution)
        execute(learner_copy(solution))
        print(f"built {name}: solution and learner copy executed")


if __name__ == "__main__":
    main(sys.argv[1:])
