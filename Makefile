# The README's two commands: `make lab` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# A git lab's `!git commit` cells belong in the lab's own repo (its setup cell makes it).
# Run before setup (say, after a kernel restart) they would find this clone's repo from
# notebooks/: git looks no further up than the kit's top folder.
export GIT_CEILING_DIRECTORIES := $(CURDIR)

.PHONY: lab test test-ci check bench bench-room hub site stop reset lock clean

# Build .venv from the pinned lock file (uv when it can be had, else pip: INSTALLER=pip
# to insist); redone when the pins change. A Python outside 3.11.5-3.15 is refused in one line.
# With pyenv, a `python3.12` shim runs only if pyenv has selected 3.12: ask pyenv which of
# its versions has that command and select it for this one call.
INSTALLER ?= auto
$(STAMP): requirements.lock pyproject.toml tools/ipython_kernel_config.py
	@$(PYTHON) -c pass 2>/dev/null || ! command -v pyenv >/dev/null \
		|| export PYENV_VERSION=$$(pyenv whence $(PYTHON) | tail -n 1); \
		$(PYTHON) tools/bootstrap.py $(VENV) --installer $(INSTALLER)
	@touch $(STAMP)

venv: $(STAMP)

## Open the labs in JupyterLab (bound to 127.0.0.1, token kept).
# (as root, e.g. in a container, JupyterLab refuses to start without --allow-root)
lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks --config=tools/jupyter_server_config.py \
		--ServerApp.ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root) $(JUPYTER_ARGS)

# Playwright's own browser download is blocked on our CI: use Debian's package.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo -n)

## Run every test: the linter, the app, the CLI, compose, and strict nbval of every lab.
# CI (CI=true) also runs the slow checks: every lab re-run in other orders and
# after a killed kernel, lab 01 in a real browser (Debian's chromium), a smoke subset
# on the other Pythons (tests/test_pythons.py), a clone at a path with a space. They
# bring their own embedded server, so a DATABASE_URL run would only repeat them.
# -rs: each skipped test's reason is printed (e.g. a Python this machine lacks).
# Under CI=true, as root, the embedded server's first start is tested first and alone, on
# a fresh machine: tests/test_first_start.py deletes the wheel's OS user, then races for it.
# -n 3 on two cores: labs 07-08 and the app-server tests spend seconds waiting on traffic
# and timeouts, which a third worker fills (5:40 against 7:11 with -n 2, here).
# Without CI=true, a lab's learner copy is not run under nbval (tests/test_exercises.py checks it is
# its solution with the solutions taken out, hints stored): half the notebooks' time.
# With the slow checks, every notebook (learner copies too) runs under strict nbval inside
# tests/test_notebook_independence.py's nested runs (in reverse, twice, after a killed
# kernel), so the outer run leaves them out instead of running each once more. Against a
# DATABASE_URL, CI runs what `make test` runs: the solutions, on that server.
SLOW_TOO := $(and $(filter true,$(CI)),$(if $(DATABASE_URL),,yes))
SLOW := $(if $(SLOW_TOO),-m "not notebook",-m "not slow and not learner_copy")
FRESH_MACHINE := $(and $(SLOW_TOO),$(filter 0,$(shell id -u)))
test: $(STAMP) $(if $(SLOW_TOO),$(CHROMIUM))
	$(BIN)/ruff check --quiet
	$(if $(FRESH_MACHINE),LABAPP_FRESH_MACHINE=1 $(BIN)/pytest -p no:xdist -q tests/test_first_start.py)
	$(BIN)/pytest -n 3 --dist loadfile -rs $(SLOW) $(PYTEST_ARGS)

$(CHROMIUM):
	$(SUDO) apt-get install -y --no-install-recommends chromium \
		|| ($(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium)

## Before the workshop: does this laptop run the labs? ONE line to paste to the instructor
## (tools/check.py: the venv, the database server, JupyterLab, lab 01's first cells).
check:
	@log=$$(mktemp); if $(MAKE) -s venv >$$log 2>&1; then rm -f $$log; else \
		echo "labapp check: FAILED at the venv: $$(grep -v '^make' $$log | tail -n 1)"; rm -f $$log; exit 1; fi
	@$(BIN)/python tools/check.py

## Reset one lab's database and workspace to its start: make reset LAB=lab02
## (LAB=lab02_solutions for the solved copy)
reset: $(STAMP)
	$(BIN)/python -m labapp.runtime.lab $(LAB)

## Where the time goes, as a table (set-up, server, CLI floor, each lab, the suite): minutes.
bench: $(STAMP)
	$(BIN)/python -m tools.bench $(BENCH_ARGS)

## A JupyterHub for a room (tools/hub/jupyterhub_config.py), its settings in ONE file:
## make hub HUB_ENV=/etc/labapp/hub.env (copy tools/hub/hub.env.example). Needs Node.js
## and npm: the proxy comes pinned from npm. A VM: tools/hub/labapp-hub.service (systemd).
HUB_PROXY := tools/hub/node_modules/.bin/configurable-http-proxy
HUB_ENV ?= hub.env
hub: $(STAMP) $(HUB_PROXY)
	@test -f $(HUB_ENV) || { echo "make hub: no $(HUB_ENV): copy tools/hub/hub.env.example there and edit it (or HUB_ENV=...)"; exit 1; }
	set -a && . $(abspath $(HUB_ENV)) && set +a && $(BIN)/jupyterhub -f tools/hub/jupyterhub_config.py

$(HUB_PROXY): tools/hub/package-lock.json
	npm ci --no-audit --no-fund --prefix tools/hub

## What a room costs this machine: the live view (flask room progress) for 20 learners, and labs 04,
## 07, 08 through the real hub by 1 and 3 learners running the same cell at once (BENCH_ROOM_ARGS: others).
bench-room: $(STAMP) $(HUB_PROXY)
	$(BIN)/python -m tools.bench.room $(BENCH_ROOM_ARGS)

## The labs as a static HTML site in site/, from their stored outputs (nothing runs; the
## pages load nothing from another host; mermaid is fetched pinned from npm once).
site: $(STAMP)
	$(BIN)/python tools/build_site.py

## Stop the embedded PostgreSQL server (any lab or command starts it again).
stop: $(STAMP)
	$(BIN)/flask --app labapp pgserver stop

## Pin every package at the versions now installed in .venv.
# A lock line with a marker (`numpy==2.5.5 ; python_version >= "3.15"`: the pins that have no
# wheels for every supported Python or platform) is kept as it is, with its package's other lines.
lock:
	held=$$(grep ';' requirements.lock | cut -d= -f1 | sort -u | paste -sd'|' -); \
	{ $(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e ' | grep -viE "^($${held:-=})=="; \
	  grep ';' requirements.lock; } \
	| $(BIN)/python -c "import sys; print(*sorted(sys.stdin.read().splitlines(), key=lambda l: l.split('==')[0].lower()), sep='\n')" \
	> requirements.lock.new && mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) .venv-bootstrap .venv-3.* notebooks/workspaces
