"""`make site`: the labs as a static HTML site, from their stored outputs (nothing runs).

    python tools/build_site.py [OUT]      # default: site/

Pages: index.html (the labs in the registry's order, labapp/runtime/labs.py), each lab's
learner copy (NN-Title.html) and solved copy (solutions/NN-Title.html), with
previous/next links, the cheat sheet (notebooks/CHEATSHEET.md), "what we covered"
(every lab's "## Key points", gathered), the instructor guide and the README. nbconvert's `lab`
template draws them, extended by tools/site_templates/page.html.j2 so that no page loads
anything from another host: no require.js and no MathJax (nothing needs them), and
mermaid, which draws the revision graphs and ER diagrams, from its npm package:
pinned below, the tarball fetched once by `npm pack` and checked against npm's
integrity for it on every build.

A link to a repository file that is no page (the README's `labapp/__init__.py`)
points at the file on GitHub when the site is built by GitHub Actions, and is left
as plain text elsewhere.
"""
import base64
import hashlib
import html
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: labapp's registry from this clone
from labapp.runtime import labs  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"
TEMPLATE = Path(__file__).resolve().parent / "site_templates"
OUT = ROOT / "site"

MERMAID = "mermaid@11.12.1"  # nbconvert 7.17's renderer is written for mermaid 11
# `npm view mermaid@11.12.1 dist.integrity`: the tarball's digest, as npm locks record it
MERMAID_INTEGRITY = ("sha512-UlIZrRariB11TY1RtTgUWp65tphtBv4CSq7vyS2ZZ2TgoMjs2nloq+wFqxiwcxlhHU"
                     "vs7DPGgMjs2aeQxz5h9g==")
NPM_CACHE = ROOT / ".venv" / "npm"  # fetched once, next to the Python packages
TARBALL = NPM_CACHE / "{}-{}.tgz".format(*MERMAID.split("@"))  # what `npm pack` writes


@dataclass
class Page:
    source: Path          # the notebook or Markdown file it is drawn from
    out: str              # its path in the site: "solutions/01-First-Migration.html"
    title: str
    text: str = None      # Markdown of a generated page (the index)
    prev: "Page" = None
    next: "Page" = None
    other: "Page" = None  # a lab's solved copy, a solution's learner copy
    solutions: bool = False


def pages():
    """Every page of the site; the labs' prev/next follow the registry's order."""
    index = Page(ROOT / "index.md", "index.html", "Flask-Migrate on PostgreSQL: hands-on labs")
    guide = Page(NOTEBOOKS / "INSTRUCTOR-GUIDE.md", "instructor-guide.html", "Instructor guide")
    cheatsheet = Page(NOTEBOOKS / "CHEATSHEET.md", "cheatsheet.html", "Cheat sheet: the commands of the labs")
    covered = Page(ROOT / "covered.md", "covered.html", "What we covered", text=covered_markdown())
    readme = Page(ROOT / "README.md", "readme.html", "README")
    learner, solved = [], []
    for lab in labs.LABS:
        title = f"{lab.name.removeprefix('lab')} · {lab.title}"
        page = Page(NOTEBOOKS / lab.notebook, Path(lab.notebook).with_suffix(".html").name, title)
        learner.append(page)
        if lab.exercises:
            page.other = Page(NOTEBOOKS / labs.SOLUTIONS / lab.notebook,
                              f"{labs.SOLUTIONS}/{page.out}", f"{title} (solutions)", other=page,
                              solutions=True)
            solved.append(page.other)
    for chain in (learner, solved):
        for before, after in zip(chain, chain[1:], strict=False):
            before.next, after.prev = after, before
    index.next = learner[0]
    index.text = index_markdown(learner)
    return [index, *learner, *solved, cheatsheet, covered, guide, readme]


def index_markdown(learner):
    """The index page: the README's opening paragraph, the labs, where to go next."""
    intro = ROOT.joinpath("README.md").read_text(encoding="utf-8").split("\n\n")[1]
    rows = "\n".join(
        f"| [{page.title}](notebooks/{page.source.name}) | "
        + (f"[solutions](notebooks/{labs.SOLUTIONS}/{page.source.name})" if page.other else "")
        + " |"
        for page in learner)
    return (f"# Flask-Migrate on PostgreSQL: hands-on labs\n\n{intro}\n\n"
            "These pages show each lab as it is committed, outputs included. To run them, clone "
            "the kit and follow [the README](README.md) (two commands: `make lab`, `make test`).\n\n"
            f"| lab | worked solutions |\n|---|---|\n{rows}\n\n"
            "Keep [the cheat sheet](notebooks/CHEATSHEET.md) open beside the labs; "
            "[what we covered](covered.md) gathers every lab's key points.\n\n"
            "Running a workshop? [The instructor guide](notebooks/INSTRUCTOR-GUIDE.md).\n")


KEY_POINTS = re.compile(r"^## Key points\s*\n(.*?)(?=^#{1,2} |\Z)", re.M | re.S)


def key_points(lab):
    """The Markdown under a lab's "## Key points" heading (its solved copy's, where it has
    one), or None."""
    notebook = lab.copies()[-1][0]
    for cell in nbformat.read(NOTEBOOKS / notebook, as_version=4).cells:
        match = KEY_POINTS.search(cell.source) if cell.cell_type == "markdown" else None
        if match:
            return match.group(1).strip()
    return None


def covered_markdown():
    """The "what we covered" page: each lab's key points, in the registry's order."""
    parts = ["# What we covered\n\nEach lab's key points, as its last section states them. "
             "The lab itself shows each one happen."]
    for lab in labs.LABS:
        points = key_points(lab)
        if points:
            parts.append(f"## [{lab.name.removeprefix('lab')} · {lab.title}](notebooks/{lab.notebook})"
                         f"\n\n{points}")
    return "\n\n".join(parts) + "\n"


def notebook(page, by_source, source):
    """The page as a notebook (a Markdown file is one Markdown cell), links fixed."""
    if page.source.suffix == ".ipynb":
        nb = nbformat.read(page.source, as_version=4)
    else:
        text = page.text if page.text is not None else page.source.read_text(encoding="utf-8")
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)])
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = fix_links(cell.source, page, by_source, source)
    return nb


def nav(page, index):
    """The links above and below a page: previous, index (and the other copy), next."""
    def link(target, text):
        return f'<a href="{html.escape(relative(page, target.out))}">{html.escape(text)}</a>'

    middle = [link(index, "index")] if page is not index else []
    if page.other:
        middle.append(link(page.other, "learner copy" if page.solutions else "solutions"))
    return (f'<span class="prev">{link(page.prev, "← " + page.prev.title) if page.prev else ""}</span>'
            f'<span class="up">{" · ".join(middle)}</span>'
            f'<span class="next">{link(page.next, page.next.title + " →") if page.next else ""}</span>')


def relative(page, out):
    """`out` (a path in the site) as a link from `page`."""
    return os.path.relpath(out, os.path.dirname(page.out) or ".").replace(os.sep, "/")


def source_url():
    """Where a repository file is on GitHub, when GitHub Actions builds the site."""
    if os.environ.get("GITHUB_REPOSITORY") and os.environ.get("GITHUB_SHA"):
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{os.environ['GITHUB_REPOSITORY']}/blob/{os.environ['GITHUB_SHA']}"
    return None


LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")  # a Markdown link: [label](href)


def fix_links(markdown, page, by_source, source):
    """Links between the kit's files (in Markdown) become links between their pages."""
    def fix(match):
        label, href = match.groups()
        if href.startswith("#") or re.match(r"[a-zA-Z][\w+.-]*:", href):
            return match.group(0)  # an anchor, or another site's page
        path, hash_, anchor = href.partition("#")
        target = (page.source.parent / path).resolve()
        if target in by_source:
            return f"[{label}]({relative(page, by_source[target].out)}{hash_}{anchor})"
        if source and target.is_relative_to(ROOT) and target.exists():
            return f"[{label}]({source}/{target.relative_to(ROOT).as_posix()}{hash_}{anchor})"
        return label  # a repository file that is no page, and no GitHub to show it

    return LINK.sub(fix, markdown)


def mermaid_js():
    """mermaid.min.js from the pinned npm tarball, checked against MERMAID_INTEGRITY."""
    if not TARBALL.exists():
        if not shutil.which("npm"):
            sys.exit(f"make site needs npm once, to fetch {MERMAID} (it draws the diagrams)")
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=NPM_CACHE) as tmp:  # no half-written tarball
            subprocess.run(["npm", "pack", MERMAID, "--silent", "--pack-destination", tmp],
                           check=True, stdout=subprocess.DEVNULL)
            os.replace(Path(tmp) / TARBALL.name, TARBALL)
    digest = "sha512-" + base64.b64encode(hashlib.sha512(TARBALL.read_bytes()).digest()).decode()
    if digest != MERMAID_INTEGRITY:
        sys.exit(f"{TARBALL} is not npm's {MERMAID} (its digest is {digest}): delete it and "
                 "build again")
    with tarfile.open(TARBALL) as tar:
        return tar.extractfile("package/dist/mermaid.min.js").read()


def build(out=OUT):
    """Write the site to `out` (emptied first); returns its pages."""
    out = Path(out)
    mermaid = mermaid_js()
    site = pages()
    by_source = {page.source: page for page in site}
    source = source_url()
    exporter = HTMLExporter(template_name="lab", extra_template_paths=[str(TEMPLATE)],
                            template_file="page.html.j2")
    if out.exists() and any(out.iterdir()) and not (out / "assets" / "mermaid.mjs").exists():
        sys.exit(f"{out} is not empty and holds no site: give a new or empty folder")
    shutil.rmtree(out, ignore_errors=True)  # no page of an earlier build survives
    (out / "assets").mkdir(parents=True)
    (out / "assets" / "mermaid.min.js").write_bytes(mermaid)
    shutil.copy(TEMPLATE / "mermaid.mjs", out / "assets" / "mermaid.mjs")
    for page in site:
        resources = {"metadata": {"name": page.title},
                     "site": {"root": relative(page, ".") + "/", "nav": nav(page, site[0])}}
        body, _ = exporter.from_notebook_node(notebook(page, by_source, source),
                                              resources=resources)
        target = out / page.out
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
    return site


if __name__ == "__main__":
    start = time.monotonic()
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    site = build(out)
    print(f"{out}/: {len(site)} pages in {time.monotonic() - start:.1f} s "
          f"(open {out / 'index.html'})")
