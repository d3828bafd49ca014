"""What maintainers run, beside the kit (labapp/) and its checks (tests/).

    bootstrap.py        builds .venv from requirements.lock (`make lab`, `make venv`)
    build_labs.py       the learner copies of the labs, from their solutions
    build_site.py       the labs as a static site (`make site`; its templates: site_templates/)
    chains.py           tests/chains/<lab>.patch: what each lab writes to migrations/
    check.py            `make check`: a learner's pre-workshop check, in one line
    lab_times.py        how long each lab takes (read from its notebook)
    notebook_kernel.py  the kernel nbval starts: its `!flask` forked (kernel_bin/flask)
    run_of_show.py      the instructor guide's timed formats
    sanitize.py         tests/sanitize.cfg with this clone's paths filled in (nbval)
    scenarios.py        what tests and tools both build: a child's environment, free ports,
                        a sandbox (the kit copied, a server of its own), lab 03's replay
                        project, lab 04's enum swap as SQL
    hub/                a room's JupyterHub: its config, its roster login (auth.py), its
                        pinned proxy, and driver.py,
                        which drives it as a room of learners would
    z2jh/               Zero to JupyterHub values (50-500 learners) and the singleuser image
    bench/              `make bench` and `make bench-room`: where the time goes
    jupyter_server_config.py, ipython_kernel_config.py   JupyterLab's and the kernel's config

The tests import only the modules in FOR_TESTS: the tools they test, and scenarios
(tests/test_suite_layout.py holds them to it). Nothing here imports from tests/.
Importing `tools` loads nothing else.
"""

# the modules of tools/ a test may import (dotted below tools)
FOR_TESTS = ("bootstrap", "build_labs", "build_site", "chains", "lab_times", "run_of_show",
             "notebook_kernel", "sanitize", "scenarios", "hub.driver", "hub.auth")
