"""How many learners one machine serves: a room driven through the real hub.

    make bench-room                                  # 1, 3, 6 and 10 learners, lab 01
    python -m tools.bench.room --learners 1,3 --think 2 --notebook 00-Welcome.ipynb

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
    names = [f"bench{size}x{i}" for i in range(1, size + 1)]
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
    return {"size": size, "cells": len(latencies), "wall": wall,
            "p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95),
            "max": max(latencies), "cpu": statistics.mean(cpu.values()),
            "rss": statistics.mean(sampler.peak_rss.values()) / 2**20,
            "pss": statistics.mean(sampler.peak_pss.values()) / 2**20,
            "busy": sum(c.seconds for c in runs[0]) + len(runs[0]) * think}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.bench.room", description=__doc__.splitlines()[0])
    parser.add_argument("--learners", default="1,3,6,10", help="room sizes, comma-separated")
    parser.add_argument("--notebook", default="solutions/01-First-Migration.ipynb")
    parser.add_argument("--think", type=float, default=15.0,
                        help="seconds a learner spends before each cell (±50%%)")
    parser.add_argument("--shared", default=None,
                        help="a PostgreSQL URL the room shares (default: each learner's embedded server)")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args(argv)
    # a `kill` (or a CI timeout) unwinds like Ctrl-C: the hub, the learners' servers and
    # their embedded PostgreSQL are stopped on the way out, not left running
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        measure(args)
    except KeyboardInterrupt:
        sys.exit("bench-room: stopped; its hub and the learners' servers were stopped too")


def measure(args):
    sizes = [int(n) for n in args.learners.split(",")]
    print(f"Room benchmark: {args.notebook}, think {args.think:g} s ±50% before each cell, "
          f"{'shared server' if args.shared else 'embedded server per learner'}, "
          f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB")
    print(f"{'learners':>8} {'cells':>6} {'p50 s':>6} {'p95 s':>6} {'max s':>6} {'wall s':>7} "
          f"{'CPU-s/learner':>13} {'RSS MiB/learner':>15} {'PSS MiB/learner':>15}")
    results = []
    for size in sizes:
        state = Path(tempfile.mkdtemp(prefix="lbench-", dir="/tmp"))
        state.chmod(0o755)
        hub = driver.Hub(state, room_url=args.shared)
        try:
            with hub:
                result = asyncio.run(room(hub, size, args.notebook, args.think, args.seed))
            left = hub.leftovers()
            if left:
                print(f"   left behind: {left}")
        finally:
            hub.remove_accounts()
            shutil.rmtree(state, ignore_errors=True)
        results.append(result)
        print(f"{size:>8} {result['cells']:>6} {result['p50']:>6.2f} {result['p95']:>6.2f} "
              f"{result['max']:>6.2f} {result['wall']:>7.1f} {result['cpu']:>13.1f} "
              f"{result['rss']:>15.0f} {result['pss']:>15.0f}", flush=True)

    within = [r["size"] for r in results if r["p95"] <= TARGET_P95]
    print(f"\nMeasured: p95 <= {TARGET_P95:g} s a cell "
          + (f"up to {max(within)} learners" if within else "at none of the sizes")
          + f" (sizes tried: {args.learners}).")
    largest = results[-1]
    demand = largest["cpu"] / largest["busy"]  # cores one learner keeps busy at this pace
    cores = psutil.cpu_count()
    print(f"Projected from CPU: one learner at this pace keeps {demand:.2f} cores busy; "
          f"{cores} cores at 70% serve about {int(0.7 * cores / demand) if demand else 0} learners, "
          f"memory about {largest['pss']:.0f} MiB (PSS) each.")


if __name__ == "__main__":
    main()
