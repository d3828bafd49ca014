"""The benchmark: where the kit's time goes (`make bench`), and how many learners
one machine serves (`make bench-room`). Figures, not assertions.

    python -m tools.bench [--only-setup | --only-live | --skip-venv --skip-suite]
    python -m tools.bench.room [--learners 1,3 --think 2 --notebook 00-Welcome.ipynb]

    __main__.py     the command line of `make bench`: every part in turn, then the table
                    and whether the kit's targets hold
    measure.py      what the parts share: the Table, a timed command, their environment,
                    a scratch database
    clone.py        a fresh clone to JupyterLab serving, with uv and with pip
    startup.py      the embedded server's cold, warm and attach starts; one `flask` command
    labs.py         each lab's nbval time against its floor; the whole `make test`
    migrations.py   the replay command; lab 04's enum swap at a million rows
    live.py         labs 07-08's scenarios under live traffic, naive and safe
    room.py         a room driven through the real hub (tools/hub/driver.py)

What it builds (a sandbox, lab 03's project, the enum swap's SQL) comes from
tools/scenarios.py, as the tests' does.
"""
