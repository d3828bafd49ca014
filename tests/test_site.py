"""`make site` (tools/build_site.py): every lab copy, the cheat sheet, what we covered (every lab's
key points), the guide and the README as pages, linked in
the registry's order, diagrams on the page, nothing loaded from another host, no broken
link; then the built site in Debian's Chromium (slow): every page loads, every diagram is
drawn as an SVG, every request stays on 127.0.0.1. Screenshots: artifacts/site-*.png."""
import functools
import html.parser
import json
import re
import shutil
import threading
import urllib.parse
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers import ROOT
from labapp.runtime import labs
from tools import build_site

NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FENCE = "```mermaid"
# what makes a browser fetch something: <script src>, <link href>, <img src>, ...
LOADS = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src",
         "video": "src", "audio": "src", "embed": "src", "object": "data", "track": "src"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The site, built once into a temporary folder (fetches mermaid once: needs npm)."""
    if not build_site.TARBALL.exists() and not shutil.which("npm"):
        pytest.skip("building the site fetches mermaid with npm once")
    out = tmp_path_factory.mktemp("site")
    build_site.build(out)
    return out


def html_pages(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.html"))


class Tags(html.parser.HTMLParser):
    """Every start tag of a page, with its attributes, and the text of its <script>s."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.scripts, self._in_script = [], [], False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def off_site(text):
    """What a page would fetch from another host: URLs in its loading tags, its
    module imports and its CSS."""
    tags = Tags(text)
    found = [attrs.get(LOADS[tag]) for tag, attrs in tags.tags if tag in LOADS]
    found += re.findall(r"""\bimport\s*\(\s*["'`]([^"'`]+)""", "\n".join(tags.scripts))
    found += re.findall(r"""@import\s+(?:url\()?["']?([^"')\s;]+)""", text)
    found += re.findall(r"""url\(\s*["']?([^"')\s]+)""", text)
    return sorted({url for url in found if url and re.match(r"([a-z][\w+.-]*:)?//", url, re.I)
                   and not url.startswith("data:")})


def local_links(text):
    return [a["href"] for tag, a in Tags(text).tags
            if tag == "a" and a.get("href") and not re.match(r"[a-z][\w+.-]*:|#", a["href"], re.I)]


def nav_links(text):
    """(previous, next) of a page's navigation bar, as hrefs (None where there is none)."""
    bar = re.search(r'<nav class="site top">(.*?)</nav>', text, re.S).group(1)
    prev = re.search(r'<span class="prev"><a href="([^"]+)"', bar)
    nxt = re.search(r'<span class="next"><a href="([^"]+)"', bar)
    return (prev and prev.group(1)), (nxt and nxt.group(1))


def mermaid_blocks(notebook):
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    count = 0
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            count += "".join(cell["source"]).count(FENCE)
        for output in cell.get("outputs", []):
            count += "".join(output.get("data", {}).get("text/markdown", "")).count(FENCE)
    return count


def test_every_lab_copy_the_guide_the_readme_and_the_handouts_have_a_page(built):
    expected = {"index.html", "instructor-guide.html", "readme.html", "cheatsheet.html", "covered.html"}
    expected |= {p.with_suffix(".html").name for p in NOTEBOOKS.glob("*.ipynb")}
    expected |= {f"solutions/{p.with_suffix('.html').name}"
                 for p in (NOTEBOOKS / "solutions").glob("*.ipynb")}
    assert set(html_pages(built)) == expected
    assert (built / "assets" / "mermaid.min.js").stat().st_size > 1_000_000


def test_what_we_covered_gathers_every_labs_key_points_in_order(built):
    text = (built / "covered.html").read_text(encoding="utf-8")
    positions = []
    for lab in labs.LABS:
        points = build_site.key_points(lab)
        if lab.exercises:
            assert points, f"{lab.notebook}: no '## Key points' section"
        if points:
            first = re.sub(r"[`*]", "", points.splitlines()[0]).lstrip("- ").split(":")[0][:30]
            assert first in html.unescape(re.sub(r"<[^>]+>", "", text)), (lab.name, first)
            positions.append(text.index(f"{lab.name.removeprefix('lab')} · "))
    assert positions == sorted(positions) and len(positions) >= len(labs.LABS) - 1


# a command a lab's code cell runs: !flask [--app X] [db] NAME, !git NAME
RUNS = re.compile(r"!(?:cd [^&]+&& )?(flask(?: --app \S+)?(?: db)? [a-z][a-z-]*|git [a-z]+)")


def test_the_cheat_sheet_lists_every_command_a_lab_runs():
    sheet = (NOTEBOOKS / "CHEATSHEET.md").read_text(encoding="utf-8")
    listed = {re.sub(r" --app \S+", "", m) for m in re.findall(r"`((?:flask|git)(?: db)? [a-z][a-z-]*)", sheet)}
    used = set()
    for notebook in (NOTEBOOKS / "solutions").glob("*.ipynb"):
        for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "code":
                used |= {re.sub(r" --app \S+", "", m) for m in RUNS.findall("".join(cell["source"]))}
    assert used and not used - listed, f"not on notebooks/CHEATSHEET.md: {sorted(used - listed)}"


def test_every_flask_command_on_the_cheat_sheet_exists():
    from click.testing import CliRunner
    from flask.cli import FlaskGroup

    from labapp.app import create_app

    sheet = (NOTEBOOKS / "CHEATSHEET.md").read_text(encoding="utf-8")
    commands = set(re.findall(r"`flask ((?:db )?[a-z][a-z-]*)", sheet))
    cli = FlaskGroup(create_app=create_app)
    for command in sorted(commands):
        result = CliRunner().invoke(cli, [*command.split(), "--help"], catch_exceptions=False)
        assert result.exit_code == 0 and "Usage:" in result.output, (command, result.output)


def test_pages_are_titled_and_drawn_from_the_stored_outputs(built):
    for lab in labs.LABS:
        text = (built / Path(lab.notebook).with_suffix(".html")).read_text(encoding="utf-8")
        assert f"<title>{lab.name[3:]} · {lab.title}</title>" in text.replace("&#39;", "'")
    lab01 = (built / "01-First-Migration.html").read_text(encoding="utf-8")
    assert "Running upgrade  -&gt; 0001" in lab01  # an output, as stored
    lab04 = (built / "04-Enum-Swap-DealCurrency.html").read_text(encoding="utf-8")
    assert re.search(r'<img [^>]*src="data:image/png;base64,', lab04)  # the plot, inline
    assert "<table" in lab01  # a %sql result


def test_labs_link_to_each_other_in_the_registry_order(built):
    def walk(start):
        order, page = [], start
        while page:
            order.append(page)
            text = (built / page).read_text(encoding="utf-8")
            _, nxt = nav_links(text)
            page = nxt and (Path(page).parent / nxt).as_posix().removeprefix("./")
        return order

    learner = [Path(lab.notebook).with_suffix(".html").name for lab in labs.LABS]
    solved = [f"solutions/{name}" for lab, name in zip(labs.LABS, learner, strict=True) if lab.exercises]
    assert walk("index.html") == ["index.html", *learner]
    assert walk(solved[0]) == solved
    for name in learner[1:] + solved:  # each copy links to the other
        other = name.removeprefix("solutions/") if "/" in name else f"solutions/{name}"
        links = {(Path(name).parent / h).as_posix().removeprefix("./").replace("solutions/../", "")
                 for h in local_links((built / name).read_text(encoding="utf-8"))}
        assert other in links, name


def test_every_local_link_resolves_to_a_file(built):
    broken = []
    for page in html_pages(built):
        for href in local_links((built / page).read_text(encoding="utf-8")):
            target = (built / page).parent / urllib.parse.unquote(href.split("#")[0])
            if not target.resolve().is_file() or built.resolve() not in target.resolve().parents:
                broken.append((page, href))
    assert broken == []


def test_no_page_loads_anything_from_another_host(built):
    for page in html_pages(built):
        assert off_site((built / page).read_text(encoding="utf-8")) == [], page


def test_nbconvert_alone_would_load_from_cdns():
    """The check above does see a CDN: nbconvert's own lab page loads require.js and mermaid."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_filename(str(NOTEBOOKS / "00-Welcome.ipynb"))
    assert any("cdnjs.cloudflare.com" in url for url in off_site(body))


def test_every_diagram_is_on_its_page(built):
    total = 0
    for notebook in [*NOTEBOOKS.glob("*.ipynb"), *(NOTEBOOKS / "solutions").glob("*.ipynb")]:
        page = notebook.relative_to(NOTEBOOKS).with_suffix(".html")
        blocks = mermaid_blocks(notebook)
        assert (built / page).read_text(encoding="utf-8").count('<pre class="mermaid">') == blocks, page
        total += blocks
    assert total >= 6  # lab 06's revision graphs and ER diagram, in both copies


def test_no_lab_uses_math():
    """The site ships no MathJax: a lab that starts writing $x$ or \\(x\\) needs it."""
    math = re.compile(r"\$\$|\\\(|\\\[|(?<![\w$])\$[^\s$][^$\n]*[^\s$\\]\$(?![\w$])")
    for notebook in [*NOTEBOOKS.glob("*.ipynb"), *(NOTEBOOKS / "solutions").glob("*.ipynb")]:
        for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "markdown":
                prose = re.sub(r"```.*?```|`[^`]*`", "", "".join(cell["source"]), flags=re.S)
                assert not math.search(prose), (notebook.name, math.search(prose).group(0))


def test_links_to_repository_files_point_at_github_only_when_built_there():
    readme = build_site.Page(ROOT / "README.md", "readme.html", "README")
    guide = build_site.Page(NOTEBOOKS / "INSTRUCTOR-GUIDE.md", "instructor-guide.html", "guide")
    by_source = {guide.source: guide}
    text = "See [the guide](notebooks/INSTRUCTOR-GUIDE.md#run-of-show), [the factory](labapp/__init__.py)."
    github = "https://github.com/o/kit/blob/abc123"
    assert build_site.fix_links(text, readme, by_source, github) == (
        "See [the guide](instructor-guide.html#run-of-show), "
        f"[the factory]({github}/labapp/__init__.py).")
    assert build_site.fix_links(text, readme, by_source, None) == (
        "See [the guide](instructor-guide.html#run-of-show), the factory.")


def test_a_mermaid_tarball_that_is_not_npms_stops_the_build(monkeypatch, tmp_path, built):
    monkeypatch.setattr(build_site, "MERMAID_INTEGRITY", "sha512-" + "A" * 86 + "==")
    with pytest.raises(SystemExit, match="is not npm's mermaid@11.12.1"):
        build_site.build(tmp_path / "site")


def test_the_build_empties_only_a_folder_that_holds_a_site(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match="holds no site"):
        build_site.build(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.fixture
def served(built):
    """The built site on a free 127.0.0.1 port."""
    handler = functools.partial(QuietHandler, directory=str(built))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)")
def test_the_site_in_chromium(served, built):
    sync_api = pytest.importorskip("playwright.sync_api")
    base = served
    requests, errors, broken = [], [], []
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 900})
            context.on("request", lambda request: requests.append(request.url))
            # anything for another host is recorded above and never leaves the machine
            context.route(re.compile(r"^(?!http://127\.0\.0\.1:)"), lambda route: route.abort())
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
            page.on("response", lambda r: r.status >= 400 and broken.append((r.url, r.status)))
            drawn = {}
            for name in html_pages(built):
                response = page.goto(f"{base}/{name}")
                assert response.status == 200, name
                assert page.locator("nav.site.top").count() == 1, name
                diagrams = page.locator(".jp-Mermaid").count()
                if diagrams:
                    page.wait_for_function(
                        "n => document.querySelectorAll('.jp-RenderedMermaid').length === n",
                        arg=diagrams)
                    drawn[name] = page.evaluate("""() => [...document.querySelectorAll('.jp-Mermaid')]
                        .map(d => ({source: d.querySelector('pre.mermaid').textContent,
                                    warning: d.classList.contains('jp-mod-warning'),
                                    width: d.querySelector('figure img')?.naturalWidth || 0,
                                    svg: decodeURIComponent(
                                        (d.querySelector('figure img')?.src || '').split(',')[1] || '')}))""")
                for href in page.evaluate("() => [...document.links].map(a => a.href)"):
                    url = href.split("#")[0]
                    if url.startswith(base) and not (built / urllib.parse.unquote(
                            url[len(base) + 1:])).is_file():
                        broken.append((name, href))
                if name == "06-Migrations-In-A-Team.html":
                    page.locator(".jp-RenderedMermaid").first.scroll_into_view_if_needed()
                    page.screenshot(path=str(ARTIFACTS / "site-lab06-diagram.png"))
                if name == "index.html":
                    page.screenshot(path=str(ARTIFACTS / "site-index.png"))
        finally:
            browser.close()
    assert [url for url in requests if not url.startswith(base + "/") and not url.startswith("data:")] == []
    assert errors == [] and broken == []
    assert set(drawn) == {"06-Migrations-In-A-Team.html", "solutions/06-Migrations-In-A-Team.html"}
    for name, diagrams in drawn.items():
        for diagram in diagrams:
            assert not diagram["warning"] and diagram["width"] > 0, (name, diagram["source"][:200])
            assert "<svg" in diagram["svg"] and "Syntax error" not in diagram["svg"], name
            # every node of the source is in the drawing: revisions (r_0001) or tables
            names = re.findall(r"^\s+(r_\w+)[\[{]", diagram["source"], re.M) or \
                re.findall(r"^\s+(\w+) \{$", diagram["source"], re.M)
            assert names and all(n in diagram["svg"] for n in names), (name, names)
