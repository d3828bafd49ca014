"""What the app's users felt and what the migration held, on one timeline.

    report.plot("an instant ALTER behind a long report", trace="traces/0003.json")
    report.plot("the whole sequence", trace=["traces/0002.json", "traces/0004.json"])

Top: every request (x: when it started, y: how long it took), coloured by the
release it was sent to; a failed request is a cross in its release's colour
(so "v2 failed before, v1 after" reads at a glance), a health check a
diamond. Below, one lane per marked span (`load.mark(...)`) and one per
statement of the migration's lock trace that took a lock or waited for one
(labapp.live.locktrace; repeats of one statement share a lane), or of each
trace in a list (one per migration, each lane named after its file): a thin bar while
the statement ran, a thick one while a lock it took was held (red: the app's
reads and writes wait; orange: its writes wait; grey: neither), a hatched one
while it waited for a lock, with a triangle where the wait began. Both share
one axis in milliseconds since the traffic began; the y axis is the same on
every plot (1 ms to 15 s), so two plots of a lab compare at a glance. The
title says how bad the stall was.
"""
import re
from pathlib import Path

from labapp.live.locktrace import Trace, load

RELEASE_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:olive")
LOCK_COLOURS = {2: "tab:red", 1: "tab:orange", 0: "0.6"}  # by how many of reads/writes it blocks
Y_LIMITS = (1, 15_000)  # ms: every plot of every lab
SLOW = 1.0  # seconds: a request this slow counts as stalled in the title
LANE = 0.32  # inches per lane
LABEL = 50  # characters of a lane's label, at most


def stall_line(report):
    """One line on how bad it was for the users."""
    slow = [r for r in report.requests if r.latency >= SLOW]
    worst = max((r.latency for r in report.requests), default=0)
    parts = [f"{len(report.requests)} requests", f"{report.failures} failed"]
    if slow:
        parts.append(f"{len(slow)} stalled over {SLOW:g} s (the longest {worst:.1f} s)")
    else:
        parts.append(f"none stalled (the longest {worst * 1000:.0f} ms)")
    parts.append(f"p99 {report.p99 * 1000:.0f} ms")
    return ", ".join(parts)


def point_sets(report):
    """[(legend label, marker, size, colour, requests)]: the top panel's points, by
    release (its colour), answered (dots; a health check: diamonds) or failed (crosses)."""
    found = []
    releases = sorted({r.release for r in report.requests})
    for colour, release in zip(RELEASE_COLOURS * 3, releases, strict=False):
        for health, failed, marker, size in ((False, False, "o", 7), (True, False, "D", 12),
                                             (None, True, "x", 28)):
            shown = [r for r in report.requests if r.release == release and r.failed == failed
                     and (health is None or r.health == health)]
            if shown:
                label = f"{release}{' health check' if health else ''}{' failed' if failed else ''}"
                found.append((label, marker, size, colour, shown))
    return found


def traces(trace):
    """[(name, Trace)] of what `plot` was given: None, a Trace or a saved trace's path,
    or a list of them (several migrations: each lane's name starts with its file's)."""
    if trace is None:
        return []
    several = isinstance(trace, (list, tuple))
    found = []
    for one in trace if several else [trace]:
        name = "" if isinstance(one, Trace) else Path(one).stem
        found.append((name if several else "", one if isinstance(one, Trace) else load(one)))
    return found


def lanes(report, trace):
    """[(label, [(start ms, end ms, style)], wait starts in ms)], top to bottom."""
    found = [(label, [(start * 1000, end * 1000, "mark")], []) for label, start, end in report.marks]
    for name, one in traces(trace):
        found += _trace_lanes(report.t0, one, f"{name} " if name else "")
    return found


def _trace_lanes(origin, trace, prefix):
    found = []
    waited = {w.step for w in trace.waits}
    shown = [s for s in trace.shown() if s.locks or s.index in waited]  # SET and the like: no lane
    groups = []
    for step in shown:
        if groups and _same_lane(groups[-1][-1], step):
            groups[-1].append(step)
        else:
            groups.append([step])
    numbers = trace.numbers()
    for group in groups:
        number = numbers[group[0].index]
        bars, wait_starts = [], []
        for step in group:
            end = step.end if step.end is not None else trace.end
            bars.append(((step.start - origin) * 1000, (end - origin) * 1000, "ran"))
            waits = [w for w in trace.waits if w.step == step.index]
            granted = max([w.end for w in waits] + [step.start])  # queued until then: hatched
            for lock in step.locks:
                if lock.end is not None:
                    bars.append(((max(lock.start, granted) - origin) * 1000,
                                 (lock.end - origin) * 1000, ("held", len(lock.blocks))))
            bars += [((w.start - origin) * 1000, (w.end - origin) * 1000, "waited") for w in waits]
            wait_starts += [(w.start - origin) * 1000 for w in waits]
        suffix = f" (×{len(group)})" if len(group) > 1 else ""
        text = f"{prefix}#{number} {group[0].label}"
        label = (text if len(text) + len(suffix) <= LABEL else text[:LABEL - 1 - len(suffix)] + "…") + suffix
        found.append((label, bars, wait_starts))
    return found


def _same_lane(one, other):
    """Repeats of one statement (a retried ALTER, a backfill's batches, its numbers
    aside) share a lane."""
    def text(step):
        return re.sub(r"\d+", "N", " ".join(step.sql.split()))
    return text(one) == text(other)


def plot(report, title="", trace=None, path=None):
    """Draw `report` (labapp.live.traffic.Report), with `trace` (a Trace, the path of a
    saved one, or a list of them) below it; shown inline, or saved as PNG to `path`."""
    # matplotlib takes a second to import: only when a cell plots
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    rows = lanes(report, trace)
    heights = [3] + ([max(0.8, LANE * len(rows) + 0.3)] if rows else [])
    fig, axes = plt.subplots(len(heights), 1, figsize=(9, sum(heights) + 0.9), sharex=True,
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    top = axes[0][0]
    for label, marker, size, colour, shown in point_sets(report):
        top.scatter([r.start * 1000 for r in shown], [max(r.latency * 1000, Y_LIMITS[0]) for r in shown],
                    s=size, marker=marker, color=colour, alpha=0.8, label=label)
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    top.set_yscale("log")
    top.set_ylim(*Y_LIMITS)
    top.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g} s" if v >= 1000 else f"{v:g} ms"))
    top.set_ylabel("request took")
    top.legend(fontsize=7, loc="upper left", ncol=4)
    top.set_title(f"{title}\n{stall_line(report)}" if title else stall_line(report), fontsize=9)
    if rows:
        ax = axes[1][0]
        shortest = max(report.seconds, 0.1) * 1000 / 200  # a lock held for 1 ms still shows
        for y, (_, bars, wait_starts) in enumerate(rows):
            for start, end, style in bars:
                width = max(end - start, shortest)
                if style == "mark":
                    ax.barh(y, width, left=start, height=0.5, color="0.75")
                elif style == "ran":
                    ax.barh(y, width, left=start, height=0.18, color="black")
                elif style == "waited":
                    ax.barh(y, width, left=start, height=0.6, color="none", edgecolor="tab:red",
                            hatch="///", linewidth=0)
                else:
                    ax.barh(y, width, left=start, height=0.6, color=LOCK_COLOURS[style[1]], alpha=0.7)
            for start in wait_starts:
                ax.plot([start], [y], marker="v", color="tab:red", markersize=7)
        ax.set_yticks(range(len(rows)), [label for label, _, _ in rows], fontsize=7)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.grid(axis="x", alpha=0.3)
    bottom = axes[-1][0]
    bottom.xaxis.set_major_formatter(plain)
    bottom.set_xlabel("milliseconds since the traffic began")
    bottom.set_xlim(left=0, right=max(report.seconds, 0.1) * 1000)
    fig.tight_layout()
    if path:
        fig.savefig(path, format="png", dpi=80)
        plt.close(fig)
    else:
        plt.show()
