"""How many learners one machine serves: a room driven through the real hub, and
the instructor's live view for a room of 20.

    make bench-room          # the live view for 20; labs 04, 07, 08 by 1 and 3 learners at once
    python -m tools.bench.room --learners 1,3,6,10 --think 15 --notebooks solutions/01-First-Migration.ipynb
    python -m tools.bench.room --progress 20 --notebooks ''    # only the live view

The live view (--progress N): N learners on one PostgreSQL server (the embedded one,
or --shared), each with labs 01 and 02 set up and lab 01 at the state of its
exercise 1; `flask room progress` (labapp.room.progress.survey, its ONE checking
process) is timed over all labs, a first refresh and a second one (--watch keeps
the process).

For each room size, a fresh JupyterHub (tools/hub/jupyterhub_config.py, the
pinned proxy) and that many learners, who all run one notebook at a
learner's pace: they arrive within one think time, and wait a think time
(±50%) before each cell. Printed per size: the latency of a cell (from
execute_request to the kernel idle again: p50, p95, max), CPU-seconds and
peak memory per learner (their server, kernel and commands, and their
embedded PostgreSQL; RSS and PSS), and at the end how many learners one
machine of this size serves at p95 <= 2 s a cell: the largest size measured
so, and what the CPU figures project. Figures, not assertions: run it on an
idle machine.
"""
import argparse
import asyncio
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from tools.hub import driver

HEAVY = ("solutions/04-Enum-Swap-DealCurrency.ipynb", "solutions/07-Migrate-While-The-App-Serves.ipynb",
         "solutions/08-Rename-Without-Downtime.ipynb")  # a million rows; app servers and load

TARGET_P95 = 2.0  # seconds a cell may take for a learner not to wait


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else 0.0


class Sampler(threading.Thread):
    """Peak memory of each learner's processes, sampled once a second."""

    def __init__(self, learners):
        super().__init__(daemon=True)
        self.learners, self.peak_rss, self.peak_pss = learners, {}, {}
        self.stopping = threading.Event()

    def processes(self, name, pgdata):
        return driver.learner_processes(name) + driver.postgres_processes(pgdata)

    def run(self):
        while not self.stopping.wait(1.0):
            for name, pgdata in self.learners.items():
                rss = pss = 0
                for proc in self.processes(name, pgdata):
                    try:
                        info = proc.memory_full_info()
                        rss, pss = rss + info.rss, pss + getattr(info, "pss", info.rss)
                    except psutil.Error:
                        pass
                self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss)
                self.peak_pss[name] = max(self.peak_pss.get(name, 0), pss)


def cpu_seconds(processes):
    total = 0.0
    for proc in processes:
        try:
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def servers_of(name):
    """The learner's Jupyter server (its reaped kernels and commands count in its CPU times)."""
    return [p for p in driver.learner_processes(name) if "singleuser" in " ".join(p.cmdline())]


async def room(hub, size, notebook, think, seed):
    names = [f"b{size}{Path(notebook).name[:2]}x{i}" for i in range(1, size + 1)]
    learners = await asyncio.gather(*(hub.learner(n) for n in names))
    pgdatas = {n: driver.pgdata_of(hub.home(n), n) for n in names}
    cpu_before = {n: cpu_seconds(servers_of(n)) for n in names}
    sampler = Sampler(pgdatas)
    sampler.start()
    rng = random.Random(seed)

    async def one(learner):
        await asyncio.sleep(rng.uniform(0, think))  # people do not all press Run at once
        return await learner.run(notebook, think=think, rng=rng)

    started = time.monotonic()
    runs = await asyncio.gather(*(one(learner) for learner in learners))
    wall = time.monotonic() - started
    sampler.stopping.set()
    sampler.join()
    await asyncio.sleep(1)  # the kernels have exited: their CPU is in their server's
    cpu = {n: cpu_seconds(servers_of(n)) - cpu_before[n]
           + cpu_seconds(driver.postgres_processes(pgdatas[n])[:1]) for n in names}
    latencies = [cell.seconds for cells in runs for cell in cells]
    failed = [(learner.name, cell.index, o["ename"], o["evalue"][:160])
              for learner, cells in zip(learners, runs, strict=True) for cell in cells for o in cell.outputs
              if o["output_type"] == "error" and "raises-exception" not in cell.tags]
    for name, index, ename, evalue in failed:
        print(f"   {name} cell {index}: {ename}: {evalue}", flush=True)
    errors = len(failed)
    return {"size": size, "errors": errors, "cells": len(latencies), "wall": wall,
            "p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95),
            "max": max(latencies), "cpu": statistics.mean(cpu.values()),
            "rss": statistics.mean(sampler.peak_rss.values()) / 2**20,
            "pss": statistics.mean(sampler.peak_pss.values()) / 2**20,
            "busy": sum(c.seconds for c in runs[0]) + len(runs[0]) * think}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.bench.room", description=__doc__.splitlines()[0])
    parser.add_argument("--learners", default="1,3", help="room sizes, comma-separated")
    parser.add_argument("--notebooks", "--notebook", default=",".join(HEAVY),
                        help="solved labs the room runs, comma-separated ('' for none)")
    parser.add_argument("--think", type=float, default=0.0,
                        help="seconds a learner spends before each cell (±50%%); 0: the whole room "
                             "runs the same cell at once")
    parser.add_argument("--progress", type=int, default=20,
                        help="learners for the live view's refresh (0: skip it)")
    parser.add_argument("--shared", default=None,
                        help="a PostgreSQL URL the room shares (default: each learner's embedded server)")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args(argv)
    # a `kill` (or a CI timeout) unwinds like Ctrl-C: the hub, the learners' servers and
    # their embedded PostgreSQL are stopped on the way out, not left running
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        print(f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
              f"load average {psutil.getloadavg()[0]:.1f} at the start", flush=True)
        if args.progress:
            live_view(args.progress, args.shared)
        for notebook in filter(None, args.notebooks.split(",")):
            measure(args, notebook)
    except KeyboardInterrupt:
        sys.exit("bench-room: stopped; its hub and the learners' servers were stopped too")


def live_view(size, shared):
    """`flask room progress` for `size` learners, every lab: two refreshes, timed."""
    import os

    from labapp.room import progress, roles
    from labapp.runtime import lab, labs
    from labapp.server import database, learners
    from tools import chains, scenarios

    top = Path(tempfile.mkdtemp(prefix="lview-", dir="/tmp"))
    top.chmod(0o755)  # as root, the embedded server runs as its own OS user
    env = {"DATABASE_URL": shared} if shared else {"LABAPP_PGDATA": str(top / "pg")}
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "LABAPP_PGDATA", "LABAPP_DATABASE")}
    os.environ.pop("LABAPP_DATABASE", None)
    os.environ.update(env)
    if not shared:
        os.environ.pop("DATABASE_URL", None)
    names = [f"view{os.getpid() % 10000}x{i:02d}" for i in range(1, size + 1)]
    try:
        started = time.monotonic()
        for name in names:
            cleaned = learners.clean(name)
            folder = top / name / "notebooks"
            one = lab.Lab(labs.get("lab01")[0], notebooks=folder, learner=cleaned)
            chains.build(one.spec, one.workspace)  # lab 01's end state: a check has work to do
            database.create_database(one.url)
            done = scenarios.run(["flask", "db", "upgrade", "0003"], cwd=one.workspace,
                                 env=scenarios.environment(LABAPP_DATABASE=one.database, FLASK_APP=None, **env))
            if done.returncode:
                raise RuntimeError(f"lab 01's upgrade for {name}: {done.output[-400:]}")
            lab.Lab(labs.get("lab02")[0], notebooks=folder, learner=cleaned).reset()
        print(f"\nLive view: {size} learners, labs 01 and 02 started (lab 01 at exercise 1's state), "
              f"the other labs not started; set up in {time.monotonic() - started:.0f} s", flush=True)
        def upgrade(name, target):
            one = lab.Lab(labs.get("lab01")[0], notebooks=top / name / "notebooks", learner=learners.clean(name))
            done = scenarios.run(["flask", "db", "upgrade", target], cwd=one.workspace,
                                 env=scenarios.environment(LABAPP_DATABASE=one.database, FLASK_APP=None, **env))
            if done.returncode:
                raise RuntimeError(f"lab 01's upgrade for {name}: {done.output[-400:]}")

        changed = names[: max(1, size // 4)]
        with progress.Checker() as checker:
            for refresh in ("first refresh", "unchanged room", f"{len(changed)} learners moved on"):
                if refresh.endswith("moved on"):
                    for name in changed:
                        upgrade(name, "0004")
                    time.sleep(1.5)  # PostgreSQL's statistics reach the view within a second
                ran_before = checker.ran
                started = time.monotonic()
                results = progress.survey(names, notebooks=str(top) + "/{learner}/notebooks", checker=checker)
                took = time.monotonic() - started
                labs_checked = checker.ran - ran_before
                print(f"  {refresh:<26} {took:5.1f} s  ({len(results)} learners x "
                      f"{len(next(iter(results.values())))} labs; {labs_checked} learner-labs checked, "
                      f"the rest not started or unchanged)", flush=True)
        states = {e["state"] for labs_found in results.values() for found in labs_found.values() for e in found}
        print(f"  states seen: {', '.join(sorted(states))}; one checking process for the room")
    finally:
        if shared:
            roles.drop(names)
        else:
            from labapp.server import pgserver
            pgserver.stop()
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        shutil.rmtree(top, ignore_errors=True)


def measure(args, notebook):
    sizes = [int(n) for n in args.learners.split(",")]
    print(f"\nRoom: {notebook}, think {args.think:g} s ±50% before each cell"
          f"{' (the whole room runs the same cell at once)' if not args.think else ''}, "
          f"{'shared server' if args.shared else 'embedded server per learner'}")
    print(f"{'learners':>8} {'cells':>6} {'errors':>6} {'p50 s':>6} {'p95 s':>6} {'max s':>6} {'wall s':>7} "
          f"{'CPU-s/learner':>13} {'RSS MiB/learner':>15} {'PSS MiB/learner':>15}")
    results = []
    for size in sizes:
        state = Path(tempfile.mkdtemp(prefix="lbench-", dir="/tmp"))
        state.chmod(0o755)
        hub = driver.Hub(state, room_url=args.shared)
        try:
            with hub:
                result = asyncio.run(room(hub, size, notebook, args.think, args.seed))
            left = hub.leftovers()
            if left:
                print(f"   left behind: {left}")
        finally:
            hub.remove_accounts()
            shutil.rmtree(state, ignore_errors=True)
        results.append(result)
        print(f"{size:>8} {result['cells']:>6} {result['errors']:>6} {result['p50']:>6.2f} {result['p95']:>6.2f} "
              f"{result['max']:>6.2f} {result['wall']:>7.1f} {result['cpu']:>13.1f} "
              f"{result['rss']:>15.0f} {result['pss']:>15.0f}", flush=True)

    within = [r["size"] for r in results if r["p95"] <= TARGET_P95]
    print(f"Measured: p95 <= {TARGET_P95:g} s a cell "
          + (f"up to {max(within)} learners" if within else "at none of the sizes")
          + f" (sizes tried: {args.learners}).")


if __name__ == "__main__":
    main()
