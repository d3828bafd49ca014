"""The linter `make test` runs first (ruff, configured in pyproject.toml) is
clean, and its rules catch the kind of slip that once printed a literal
`{pgdata}/log` in an error message: a string meant to be an f-string."""
import json
import subprocess

from helpers import BIN, ROOT


def ruff(*args, cwd=ROOT):
    return subprocess.run([str(BIN / "ruff"), "check", "--no-cache", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_the_kit_is_clean():
    proc = ruff()
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_missing_f_prefix_is_caught(tmp_path):
    slip = tmp_path / "slip.py"
    slip.write_text('def message(pgdata):\n'
                    '    return (f"the server at {pgdata} does not answer "\n'
                    '            "(log: {pgdata}/log)")\n')
    proc = ruff("--config", str(ROOT / "pyproject.toml"), "--output-format", "json", str(slip))
    assert [f["code"] for f in json.loads(proc.stdout)] == ["RUF027"], proc.stdout + proc.stderr
    slip.write_text(slip.read_text().replace('"(log:', 'f"(log:'))
    assert ruff("--config", str(ROOT / "pyproject.toml"), str(slip)).returncode == 0
