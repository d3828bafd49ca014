"""`make bench`: where the kit's time goes, measured in one run, printed as a table.

    .venv/bin/python -m tools.bench [--skip-venv] [--skip-suite] [--only-live] [--only-setup]

Rows: a fresh clone to JupyterLab serving (`make lab`: .venv built with uv,
then with pip, and their ratio; target <= 20 s with uv); the embedded server's cold and
warm start; the CLI floor (one `flask --help`); each lab's nbval time against
its floor; the whole `make test`; the replay command; an enum swap against
`ALTER TYPE ... ADD VALUE` at 1M rows; and labs 07, 08 and 10's scenarios under live
traffic (the app on waitress, the load generator), each the naive way and the
safe way: failed requests, the slowest request, and their ratio; and lab 09's
replica storm (three copies that each upgrade at boot: naive, with an advisory
lock, with a release step): failed boots, duplicate work, time to serve. It checks the kit's targets
(whole test command <= 300 s, each lab <= 20 s and <= 1.5x its floor) and prints
whether each holds. Nothing here fails on a time: it reports.

Labs run in a sandbox (tools/scenarios.py: a copy of the kit first on PYTHONPATH,
an embedded server of its own), so this never resets the labs you work in.
"""
import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from tools.bench import clone, fleet, labs, live, migrations, startup
from tools.bench.measure import TARGET_LAB, TARGET_RATIO, TARGET_SETUP, TARGET_SUITE, Table


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--skip-venv", action="store_true",
                        help="no fresh clone -> JupyterLab rows (uv, pip)")
    parser.add_argument("--skip-suite", action="store_true", help="no `make test` row")
    parser.add_argument("--only-live", action="store_true",
                        help="only the live-traffic rows of labs 07, 08 and 10")
    parser.add_argument("--only-fleet", action="store_true",
                        help="only lab 09's replica storm (naive, advisory lock, release step)")
    parser.add_argument("--only-setup", action="store_true",
                        help="only the fresh clone -> JupyterLab rows (uv, pip)")
    options = parser.parse_args(argv)
    table = Table()
    tmp = Path(tempfile.mkdtemp(prefix="lbench-", dir="/tmp"))
    tmp.chmod(0o755)  # the servers' data folders are in it (as root, a private one is refused)
    print("measuring (rows appear as they finish)...", file=sys.stderr)
    try:
        if options.only_live:
            live.bench_live(table, tmp)
            fleet.bench_fleet(table, tmp)
        elif options.only_fleet:
            fleet.bench_fleet(table, tmp)
        elif options.only_setup:
            clone.bench_setup(table, tmp)
        if options.only_live or options.only_setup or options.only_fleet:
            table.print()
            return
        if options.skip_venv:
            table.row("fresh clone -> JupyterLab serving", "skipped")
            setup = None
        else:
            setup = clone.bench_setup(table, tmp)
        startup.bench_server(table, tmp)
        floor = startup.cli_floor(table)
        labs_ok = labs.bench_labs(table, floor)
        suite_ok = None if options.skip_suite else labs.bench_suite(table)
        migrations.bench_replay(table, tmp)
        migrations.bench_enum(table)
        live.bench_live(table, tmp)
        fleet.bench_fleet(table, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table.print()
    print_targets(setup, suite_ok, labs_ok)


def print_targets(setup, suite_ok, labs_ok):
    """Whether each target holds: `setup` the uv set-up's seconds, `suite_ok` and
    `labs_ok` the verdicts (None: not measured)."""
    def verdict(ok):
        return "not measured" if ok is None else "holds" if ok else "DOES NOT hold"

    print(f"\ntargets: fresh clone -> JupyterLab (uv) <= {TARGET_SETUP:.0f} s: "
          f"{verdict(None if setup is None else setup <= TARGET_SETUP)}; "
          f"whole test command <= {TARGET_SUITE:.0f} s: {verdict(suite_ok)}; "
          f"every lab <= {TARGET_LAB:.0f} s and <= {TARGET_RATIO}x its floor: "
          f"{verdict(all(labs_ok))} ({sum(labs_ok)}/{len(labs_ok)} labs)")


if __name__ == "__main__":
    main()
