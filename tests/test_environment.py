"""environment.yml (conda, Binder, JupyterHub) installs what `make lab` installs."""
import re

import yaml

from conftest import ROOT


def pins(lines):
    """{normalized name: version} of `name==version` lines."""
    found = {}
    for line in lines:
        match = re.match(r"\s*([A-Za-z0-9._-]+)\s*==\s*([^\s;#]+)", line)
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return found


PYPROJECT = (ROOT / "pyproject.toml").read_text()


def pyproject_pins():
    """Every quoted `"name==version"` in pyproject.toml: dependencies and extras
    (read as text)."""
    return pins(re.findall(r'^\s*"([^"]+==[^"]+)"', PYPROJECT, flags=re.M))


def test_every_pyproject_pin_is_in_the_lock_file_at_the_same_version():
    locked = pins((ROOT / "requirements.lock").read_text().splitlines())
    wrong = {n: (v, locked.get(n)) for n, v in pyproject_pins().items() if locked.get(n) != v}
    assert wrong == {}, "pyproject pin vs requirements.lock: run `make lock`"


def test_environment_yml_is_conda_forge_python_311_and_the_same_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"][0] == "conda-forge"
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    if "-r requirements.lock" in pip:
        return  # the lock file itself, checked above against pyproject.toml
    listed = pins(pip)
    missing = {n: v for n, v in pyproject_pins().items() if listed.get(n) != v}
    assert missing == {}, "environment.yml's pip pins differ from pyproject.toml's"


def test_the_supported_pythons_agree():
    """pyproject.toml's requires-python, tools/bootstrap.py (which refuses any other
    Python in one line) and the README name the same versions."""
    from tools import bootstrap

    versions = [f"{major}.{minor}" for major, minor in bootstrap.SUPPORTED]
    (major, last) = bootstrap.SUPPORTED[-1]
    assert f'requires-python = ">={versions[0]},<{major}.{last + 1}"' in PYPROJECT
    assert f"Python {', '.join(versions[:-1])} or {versions[-1]}" in (ROOT / "README.md").read_text()
    assert bootstrap.SUPPORTED_TEXT == f"{versions[0]}\u2013{versions[-1]}"
