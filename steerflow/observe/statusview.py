"""What `steerflow status` and `steerflow show` print: compact tables that fit an 80-column terminal."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.markup import escape as markup_escape
from rich.table import Table
from rich.text import Text

from .. import rundirs
from . import live

COLUMNS = (("new", "new"), ("waiting", "wait"), ("running", "run"), ("paused", "paus"), ("done", "done"),
           ("failed", "fail"), ("cancelled", "canc"), ("interrupted", "intr"))


SHOWN_WHOLE = 4  # more campaigns than this under one path: one line each


# control characters a task's name, tags or error text may hold (a program's output, a file name): shown as \xNN
# escapes, never sent to the terminal, where ESC sequences would clear or retitle it (tab and newline kept)
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x09), *range(0x0b, 0x20), 0x7f, *range(0x80, 0xa0))}


def printable(text: str) -> str:
    """``text`` with its control characters written as escapes (see `_CONTROLS`)."""
    return text.translate(_CONTROLS)


def escape(text: str) -> str:
    """Text for a rich table cell: control characters escaped, then rich's markup."""
    return markup_escape(printable(text))

def render(directories: list[Path], readers: dict[Path, live.Reader] | None = None) -> RenderableType:
    """Every campaign at a path, one after the other (a multi-phase script shows each phase).

    ``readers``: kept between redraws (`status --watch`), so each redraw reads only the journal's new rows.
    """
    if len(directories) > SHOWN_WHOLE:
        return render_list(directories)
    parts: list[RenderableType] = []
    if len(directories) > 1:
        parts.append(Text(f"{len(directories)} campaigns: " + ", ".join(d.name for d in directories), style="bold"))
    for directory in directories:
        try:
            info = rundirs.status(directory)
        except sqlite3.DatabaseError as exc:
            if len(directories) == 1:
                raise  # (the command says what it means)
            parts.append(unreadable(directory, exc))  # (before: one such campaign failed the whole folder's status)
            continue
        try:  # the live numbers the run's terminal view and the dashboard show (steerflow.observe.live)
            if readers is None:
                info["live"] = live.snapshot(directory)
            else:
                info["live"] = readers.setdefault(directory, live.Reader(directory)).snapshot()
        except Exception:  # noqa: BLE001 - e.g. a journal still being created: the counts alone
            pass
        parts.append(render_one(info))
    return Group(*parts)


def unreadable(directory: Path, exc: sqlite3.DatabaseError) -> RenderableType:
    """The line for a campaign of a folder whose journal cannot be read (damaged, or its driver only just started)."""
    return Group(Text(str(directory), style="bold"),
                 Text(f"its journal cannot be read ({exc}): it records nothing yet (a driver only just started, or "
                      "one stopped in its first moments), or it is damaged.", style="yellow"), Text(""))


def render_list(directories: list[Path]) -> RenderableType:
    """One line per campaign: where, whether a driver runs, tasks by outcome."""
    base = Path(os.path.commonpath([str(d) for d in directories]))
    table = Table(title=f"{len(directories)} campaigns in {base} (`steerflow status DIR` for one)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("campaign", overflow="fold", max_width=40)
    for column in ("driver", "tasks", "done", "fail", "intr"):
        table.add_column(column, justify="right")
    for directory in directories:
        try:
            info = rundirs.status(directory, failures=0)
        except sqlite3.DatabaseError:
            table.add_row(escape(str(directory.relative_to(base))), "?", "journal cannot be read", "", "", "")
            continue
        totals: dict[str, int] = {}
        for counts in info["pools"].values():
            for state, n in counts.items():
                totals[state] = totals.get(state, 0) + n
        table.add_row(escape(str(directory.relative_to(base))), str(info["driver_pid"] or "-"), str(sum(totals.values())),
                      str(totals.get("done", 0)), str(totals.get("failed", 0)), str(totals.get("interrupted", 0)))
    return table


def render_one(info: dict[str, Any]) -> RenderableType:
    parts: list[RenderableType] = [Text(info["title"], style="bold")]
    pid = info["driver_pid"]
    started = info["last_start"]
    since = f", the last at {_clock(started)} ({_ago(info['now'] - started)} ago)" if started else ""
    parts.append(Text((f"driver running (pid {pid})" if pid else "no driver running")
                      + f"; {info['drivers_so_far']} driver start(s){since}"))
    ended = info.get("ended")
    if not pid and isinstance(ended, dict) and ended.get("at", 0) >= (started or 0):
        parts.append(Text(f"ended {_clock(ended['at'])}: {ended.get('reason') or 'closed'}"))
    elif not pid and info["drivers_so_far"]:
        parts.append(Text("the last driver stopped without closing (killed or crashed): `steerflow resume` "
                          "continues it", style="yellow"))
    done = sum(counts.get(s, 0) for counts in info["pools"].values() for s in ("done", "failed", "cancelled"))
    limits = info.get("stop") or {}
    budget = []
    if "tasks" in limits:
        share = 100 * done / max(1, limits["tasks"])
        budget.append(f"{done}/{int(limits['tasks'])} results of the task budget ({share:.0f}%)")
    # the wall limit counts from the last driver's start, while it runs (before: an ended campaign read "wall 39m of
    # 20s", the time since); where its driver was killed, its end is not known
    stopped_at = info["now"] if pid else (ended.get("at") if isinstance(ended, dict) else None)
    if "wall_s" in limits and started and stopped_at is not None and stopped_at >= started:
        budget.append(f"wall {_ago(stopped_at - started)} of {_ago(limits['wall_s'])}")
    if budget:
        parts.append(Text("progress: " + "; ".join(budget)))
    if info.get("live"):
        parts.append(Text("now: " + live.describe(info["live"])))
    states = [(s, h) for s, h in COLUMNS if any(c.get(s) for c in info["pools"].values()) or s in ("done", "failed")]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("pool", overflow="ellipsis", max_width=20)
    for _, header in states:
        table.add_column(header, justify="right")
    if pid:
        table.add_column("per min", justify="right")  # results in the last minute
    for pool, counts in sorted(info["pools"].items()):
        rate = [str(info["per_minute"].get(pool, 0))] if pid else []
        table.add_row(escape(pool), *[str(counts.get(s, 0)) for s, _ in states], *rate)
    parts.append(table)
    if info["running"]:
        label = "running" if pid else "interrupted (running when the driver stopped; a resume runs them again)"
        run_table = Table(title=f"{label}: {len(info['running'])}", title_justify="left", box=box.SIMPLE_HEAD,
                          pad_edge=False, show_edge=False)
        run_table.add_column("key", justify="right")
        run_table.add_column("name", overflow="ellipsis", max_width=24)
        run_table.add_column("pool", overflow="ellipsis", max_width=12)
        run_table.add_column("where (node[cores gpus])", overflow="fold", max_width=30)
        run_table.add_column("try", justify="right")
        for r in info["running"][:20]:
            run_table.add_row(str(r["key"]), escape(r["name"]), escape(r["pool"]), escape(r["where"]),
                              str(r["attempts"]))
        parts.append(run_table)
    if info["failures"]:
        shown = len(info["failures"])
        parts.append(Text(f"failed: {info['failed']} (latest {shown}; `steerflow show DIR KEY` shows one whole)",
                          style="bold red"))
        for failure in info["failures"]:
            parts.append(Text(printable(f"  {failure['key']} {failure['name']}: {failure['first_lines']}"),
                              overflow="fold"))
            for path in failure["files"]:
                if path.endswith(".err"):
                    parts.append(Text(f"     stderr: {path}", overflow="fold"))
    return Group(*parts, Text(""))


def show_tags(tags: list[str]) -> str:
    """A task's tags for a person: comma-separated, a tag that holds a comma or a quote in quotes."""
    return ", ".join(json.dumps(t, ensure_ascii=False) if ("," in t or '"' in t or not t) else t for t in tags)


def render_task(directory: Path, task: dict[str, Any]) -> RenderableType:
    """One task whole: description, every state change with where it ran, result or error, output files."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column(overflow="fold")
    head.add_row("task", escape(f"{task['key']} {task['name']} ({task['kind']})"))
    head.add_row("campaign", escape(str(directory)))
    head.add_row("state", task["state"])
    head.add_row("pool", escape(f"{task['pool']}; {task['cores']} core(s), {task['gpus']} GPU(s), priority "
                 f"{task['priority']}" + (f"; tags {show_tags(task['tags'])}" if task["tags"] else "")))
    for field, value in task["spec"].items():
        head.add_row(field, escape(value))
    history = Table(title="history", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in ("time", "state", "try", "where"):
        history.add_column(column, overflow="fold")
    t0 = task["submitted"] or 0
    for row in task["history"]:
        history.add_row(f"{_clock(row['ts'])} (+{row['ts'] - t0:.2f}s)", row["state"], str(row["attempt"]),
                        escape(row["where"]))
    parts: list[RenderableType] = [head, history]
    result = task.get("result")
    if result is not None:
        took = f"{result['ended'] - result['started']:.2f} s" if result["started"] else ""
        parts.append(Text(f"result: {'ok' if result['ok'] else 'failed'}, stored {result['stored']}"
                          + (f", ran {took}" if took else ""), style="bold"))
        if result["error"]:
            parts.append(Text(printable(result["error"]), overflow="fold"))
    for path in task["files"]:
        size = Path(path).stat().st_size if Path(path).exists() else 0
        parts.append(Text(f"output: {path} ({size} bytes)"))
    return Group(*parts)


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
