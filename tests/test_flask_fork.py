"""The tests' forked `flask` (tests/flask_fork.py) is the `flask` executable in all a
test can see: the same output, exit code and one-line errors, its own folder,
environment and stdin, and a timeout that ends it."""
import os
import subprocess

import pytest

from helpers import ROOT, run_flask, unique_name

CASES = {
    "help": (["--help"], {}, None),
    "a LabError": (["dropdb", "--yes"], {"LABAPP_DATABASE": "no_such_database_here"}, None),
    "a click usage error": (["loaddata", "--no-such-option"], {}, None),
    "input, answered no": (["dropdb"], {"LABAPP_DATABASE": "no_such_database_here"}, "n\n"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_forked_flask_prints_and_exits_as_the_executable_does(case):
    args, env, given = CASES[case]
    real = run_flask(*args, env=env, input=given, fresh=True)
    forked = run_flask(*args, env=env, input=given)
    assert (forked.returncode, forked.output) == (real.returncode, real.output)


def test_forked_flask_runs_in_its_folder_with_its_environment(tmp_path):
    name = unique_name("fork")
    (tmp_path / "app.py").write_text(
        "import os\nimport click\nfrom flask import Flask\n\napp = Flask(__name__)\n\n\n"
        "@app.cli.command()\ndef where():\n"
        "    click.echo(f'{os.getcwd()} {os.environ.get(\"PROBE\")} {os.getpid()}')\n")
    proc = run_flask("where", cwd=tmp_path, app=None, env={"PROBE": name})
    folder, probe, pid = proc.output.split()
    assert (folder, probe, proc.returncode) == (str(tmp_path), name, 0), proc.output
    assert int(pid) != os.getpid()
    assert os.environ.get("PROBE") is None and os.getcwd() != str(tmp_path)


def test_forked_flask_that_runs_too_long_is_ended(tmp_path):
    (tmp_path / "app.py").write_text(
        "import time\nfrom flask import Flask\n\napp = Flask(__name__)\n\n\n"
        "@app.cli.command()\ndef hang():\n    print('started', flush=True)\n    time.sleep(600)\n")
    with pytest.raises(subprocess.TimeoutExpired) as ended:
        run_flask("hang", cwd=tmp_path, app=None, timeout=2)
    assert "started" in ended.value.output
    assert run_flask("--help", cwd=ROOT).returncode == 0  # the server goes on serving
