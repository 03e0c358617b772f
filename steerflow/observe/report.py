"""A report of a campaign, computed from its journal: utilisation over time, time to completion, tasks.

Reads the journal read-only, so it works during a run (from another terminal) and after a crash.
Busy cores over time come from each task's running intervals (running → the next state) and its
core count; utilisation is busy cores over the allocation's cores.
"""

from __future__ import annotations

import html
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_LEAVES_RUNNING = ("done", "failed", "cancelled", "waiting", "paused")


@dataclass
class Interval:
    key: int
    pool: str
    cores: int
    start: float
    end: float


def running_intervals(conn: sqlite3.Connection, now: float) -> list[Interval]:
    """Every span in which a task held its cores (a task still running counts until ``now``)."""
    info = {key: (pool, cores or 1) for key, pool, cores in conn.execute("SELECT key, pool, cores FROM tasks")}
    intervals: list[Interval] = []
    open_since: dict[int, float] = {}
    for key, state, ts in conn.execute("SELECT key, state, ts FROM states ORDER BY rowid"):
        if state == "running":
            open_since.setdefault(key, ts)
        elif state in _LEAVES_RUNNING and key in open_since:
            pool, cores = info.get(key, ("?", 1))
            intervals.append(Interval(key, pool, cores, open_since.pop(key), ts))
    for key, start in open_since.items():
        pool, cores = info.get(key, ("?", 1))
        intervals.append(Interval(key, pool, cores, start, max(start, now)))
    return intervals


def utilisation(intervals: list[Interval], total_cores: int) -> dict[str, Any]:
    """Step function of busy cores per pool, and the mean utilisation between first start and last end."""
    if not intervals:
        return {"times": [], "busy_by_pool": {}, "mean_pct": 0.0, "span_s": 0.0}
    edges = sorted({t for iv in intervals for t in (iv.start, iv.end)})
    pools = sorted({iv.pool for iv in intervals})
    busy = {pool: [0] * len(edges) for pool in pools}
    index = {t: i for i, t in enumerate(edges)}
    for iv in intervals:  # difference array per pool, then a running sum
        busy[iv.pool][index[iv.start]] += iv.cores
        busy[iv.pool][index[iv.end]] -= iv.cores
    for pool in pools:
        running = 0
        series = busy[pool]
        for i, delta in enumerate(series):
            running += delta
            series[i] = running
    span = edges[-1] - edges[0]
    core_seconds = sum(iv.cores * (iv.end - iv.start) for iv in intervals)
    return {"times": [t - edges[0] for t in edges], "busy_by_pool": busy,
            "mean_pct": 100.0 * core_seconds / (total_cores * span) if span > 0 else 0.0, "span_s": span,
            "core_seconds": core_seconds}


def build(directory: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """Write ``report.json``, ``utilisation.png`` (with matplotlib) and ``report.html``; return the summary."""
    import time

    directory = Path(directory)
    out = Path(out) if out is not None else directory / "report"
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = directory / "journal.db"
    if not db.exists():
        raise FileNotFoundError(f"{directory} holds no campaign journal (no journal.db); nothing to report.")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        total_cores = max([c or 0 for (c,) in conn.execute("SELECT cores FROM runs")] + [1])
        first_submit, last_end = conn.execute("SELECT min(submitted), (SELECT max(ended) FROM results) FROM tasks"
                                              ).fetchone()
        states = dict(conn.execute("SELECT state, count(*) FROM tasks GROUP BY state"))
        by_pool: dict[str, dict[str, int]] = {}
        for pool, n, state in conn.execute("SELECT pool, count(*), state FROM tasks GROUP BY pool, state"):
            by_pool.setdefault(pool, {})[state] = n
        durations: dict[str, list[float]] = {}
        intervals = running_intervals(conn, now=time.time())
        drivers = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        conn.close()
    for iv in intervals:
        durations.setdefault(iv.pool, []).append(iv.end - iv.start)
    util = utilisation(intervals, total_cores)
    summary = {
        "directory": str(directory), "total_cores": total_cores, "tasks": states, "tasks_by_pool": by_pool,
        "time_to_completion_s": (last_end - first_submit) if first_submit and last_end else None,
        "mean_utilisation_pct": util["mean_pct"], "busy_span_s": util["span_s"], "driver_starts": drivers,
        "mean_task_s_by_pool": {p: sum(d) / len(d) for p, d in durations.items()},
    }
    (out / "report.json").write_text(json.dumps(summary, indent=2))
    png = _plot(util, total_cores, out / "utilisation.png")
    _html(summary, png, out / "report.html")
    return summary


def _plot(util: dict[str, Any], total_cores: int, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(8, 3.5))
    if util["times"]:
        pools = list(util["busy_by_pool"])
        ax.stackplot(util["times"], *[util["busy_by_pool"][p] for p in pools], labels=pools, step="post", alpha=0.8)
        ax.axhline(total_cores, color="black", linewidth=1, linestyle="--", label=f"{total_cores} cores")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("seconds since the first task started")
    ax.set_ylabel("busy cores")
    ax.set_title(f"Utilisation by pool (mean {util['mean_pct']:.0f} %)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _html(summary: dict[str, Any], png: Path | None, path: Path) -> None:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v))}</td></tr>"
                   for k, v in summary.items())
    image = f'<img src="{png.name}" alt="utilisation">' if png else "<p>(install matplotlib for the plot)</p>"
    path.write_text(f"<!doctype html><meta charset=utf-8><title>steerflow report</title>"
                    f"<h1>Campaign {html.escape(summary['directory'])}</h1>{image}<table>{rows}</table>")
