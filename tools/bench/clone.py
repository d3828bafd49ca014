"""Set-up: what a newcomer waits for, from `git clone` to JupyterLab serving
(`make lab`), with uv and with pip, and their ratio (target: <= 20 s with uv)."""
import os
import resource
import shutil
import signal
import subprocess
import time

from tools import scenarios
from tools.bench.measure import TARGET_SETUP


def fresh_clone_to_jupyterlab(tmp, installer):
    """`git clone` of this repository (its committed HEAD), then `make lab
    INSTALLER=...` until JupyterLab's API answers with the token. The uv and pip
    caches are this machine's, as they are. Returns (total s, clone s, set-up s,
    server s, CPU s, the set-up's own line) or (None, why). CPU s (user + system,
    every process of the run) says what a wall time on a loaded machine cannot:
    what the run costs."""
    clone, port, token = tmp / f"clone-{installer}", scenarios.free_port(), f"bench-{installer}"
    # a newcomer's shell: their PATH (their python3, not this venv's), no venv active
    env = scenarios.environment("VIRTUAL_ENV", "LABAPP_DATABASE", "FLASK_APP", scenarios.PYTEST_RUN,
                                PATH=os.environ["PATH"], JUPYTER_CONFIG_DIR=tmp / f"jc-{installer}",
                                JUPYTER_RUNTIME_DIR=tmp / f"jr-{installer}")

    def cpu():
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    cpu_before, start = cpu(), time.perf_counter()
    subprocess.run(["git", "clone", "-q", str(scenarios.ROOT), str(clone)], check=True)
    cloned = time.perf_counter()
    log = open(tmp / f"make-lab-{installer}.log", "w+")
    lab = subprocess.Popen(
        ["make", "lab", f"INSTALLER={installer}",
         f"JUPYTER_ARGS=--no-browser --port={port} --IdentityProvider.token={token} "
         f"--LabApp.workspaces_dir={tmp / f'jw-{installer}'}"],
        cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    ready = None
    try:
        while lab.poll() is None and time.perf_counter() - start < 600:
            if (clone / ".venv" / ".installed").exists() and ready is None:
                ready = time.perf_counter()
            if ready and scenarios.answers(f"http://127.0.0.1:{port}/api/status?token={token}"):
                end = time.perf_counter()
                break
            time.sleep(0.1)
        else:
            log.seek(0)
            return None, (log.read().strip().splitlines() or ["no output"])[-1][:80]
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGTERM)
            try:
                lab.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(lab.pid, signal.SIGKILL)
                lab.wait()
        shutil.rmtree(clone, ignore_errors=True)
    log.seek(0)
    said = next((line.strip() for line in log if line.startswith(".venv: installing")), "?")
    log.close()
    return end - start, cloned - start, ready - cloned, end - ready, cpu() - cpu_before, said


def bench_setup(table, tmp):
    """Fresh clone -> JupyterLab serving, with uv and with pip, and their ratio;
    the uv total (None if it failed)."""
    totals = {}
    for installer in ("uv", "pip"):
        total, *parts = fresh_clone_to_jupyterlab(tmp, installer)
        what = f"fresh clone -> JupyterLab serving ({installer})"
        if total is None:
            table.row(what, "failed", parts[0])
            continue
        totals[installer] = total
        clone, setup, server, cpu, said = parts
        target = f"; <=20 s: {'yes' if total <= TARGET_SETUP else 'NO'}" if installer == "uv" else ""
        table.row(what, total, f"clone {clone:.1f} + .venv {setup:.1f} + server {server:.1f} s; "
                               f"CPU {cpu:.0f} s{target}; [{said.removeprefix('.venv: ')}]")
    if len(totals) == 2:
        table.row("  pip / uv", f"{totals['pip'] / totals['uv']:.1f}x", "same requirements.lock")
    return totals.get("uv")
