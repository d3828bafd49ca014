"""A cell's new outputs against the ones its notebook stores, judged as nbval
judges them: the same sanitize file (tests/sanitize.cfg, its paths filled in
by tools/sanitize.py for the notebooks folder that ran), the same stream
merging and the same skipped keys (nbval's own functions where it has them).

For tests that execute notebooks some other way than nbval, e.g. through a
JupyterHub's kernel websockets (tests/test_hub.py).
"""
import functools
import re
from collections import defaultdict

import nbformat
from nbval.plugin import coalesce_streams, get_sanitize_patterns, transform_streams_for_comparison

from tools import sanitize as sanitize_cfg

# nbval's skip_compare without --nbdime
SKIPPED = ("metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
           "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg")


@functools.lru_cache
def patterns(notebooks):
    return get_sanitize_patterns(sanitize_cfg.text(notebooks))


def sanitize(text, notebooks=sanitize_cfg.NOTEBOOKS):
    """`text` as nbval compares it, for notebooks that ran in the folder `notebooks`."""
    if not isinstance(text, str):
        return text
    for regex, replace in patterns(notebooks):
        text = re.sub(regex, replace, text)
    return text


def _keyed(outputs, notebooks):
    outputs = transform_streams_for_comparison(coalesce_streams(
        [nbformat.from_dict(o) for o in outputs]))
    found = defaultdict(list)
    for output in outputs:
        for key, value in output.items():
            if key in SKIPPED:
                continue
            if key == "data":
                for mime, data in value.items():
                    if mime not in SKIPPED:
                        found[mime].append(sanitize(data, notebooks))
            else:
                found[key].append(sanitize(value, notebooks))
    return dict(found)


def difference(stored, new, notebooks=sanitize_cfg.NOTEBOOKS):
    """None when `new` outputs (of a notebook that ran in the folder `notebooks`)
    match the `stored` ones as nbval would say, else a short description of the
    first difference."""
    want, got = _keyed(stored, notebooks), _keyed(new, notebooks)
    if want == got:
        return None
    for key in sorted(set(want) | set(got)):
        if want.get(key) != got.get(key):
            return f"{key}: stored {want.get(key)!r}, got {got.get(key)!r}"
    return "outputs differ"


def code_cells(path):
    """(index, source, stored outputs, tags) of each code cell nbval would run."""
    notebook = nbformat.read(str(path), as_version=4)
    for index, cell in enumerate(notebook.cells):
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell.cell_type == "code" and "nbval-skip" not in tags:
            yield index, cell.source, cell.get("outputs", []), tags


def joined(text):
    return "".join(text) if isinstance(text, list) else text
