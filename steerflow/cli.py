"""The ``steerflow`` command: run, watch, resume and cancel campaigns; run benchmarks."""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .dirlock import holder as driver_pid


def _console():
    from rich.console import Console

    return Console()


def _print_table(title: str, result: dict[str, Any], targets: dict[str, tuple[str, float]]) -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("steerflow", justify="right")
    table.add_column("floor", justify="right")
    peers = sorted({k.split("_", 1)[0] for k in result if k.startswith("dask_")})
    for peer in peers:
        table.add_column(peer, justify="right")
    table.add_column("target", justify="right")
    table.add_column("met", justify="center")
    for key, value in result.items():
        if key.startswith(("floor_", "dask_")) or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        floor = result.get(f"floor_{key}")
        op, bound = targets.get(key, ("", None))
        met = "" if bound is None else ("yes" if (value >= bound if op == ">=" else value <= bound) else "NO")
        peer_values = [result.get(f"{peer}_{key}") for peer in peers]
        table.add_row(key, f"{value:,.3f}", "" if floor is None else f"{floor:,.3f}",
                      *["" if v is None else f"{v:,.3f}" for v in peer_values],
                      "" if bound is None else f"{op} {bound:,}", met)
    _console().print(table)


# ---- bench -----------------------------------------------------------------------------------

def _bench(args: argparse.Namespace) -> int:
    if args.what == "runtime":
        from .bench import runtime as bench

        result = bench.run(repeat=args.repeat)
        _print_table(f"steerflow bench runtime (median of {args.repeat})", result, bench.TARGETS)
    elif args.what == "steering":
        from .bench import steering

        result = steering.run(repeat=args.repeat)
        _print_table(f"steerflow bench steering (median of {args.repeat})", result, steering.TARGETS)
    else:
        from .bench.scheduler import placements_per_second

        result = placements_per_second(nodes=10_000)
        _print_table("steerflow bench scheduler", result, {"placements_per_s": (">=", 50_000)})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.json}")
    return 0


# ---- run / resume ------------------------------------------------------------------------

def _run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.exists():
        print(f"steerflow run: {path} does not exist.", file=sys.stderr)
        return 2
    if args.resume:
        os.environ["STEERFLOW_RESUME"] = "1"
    if path.suffix in (".yaml", ".yml"):
        from .pipelines.spec import run_file

        extra = argparse.ArgumentParser(prog=f"steerflow run {path}")  # options may follow the file too
        extra.add_argument("--dir")
        extra.add_argument("--resume", action="store_true")
        more = extra.parse_args(args.args)
        if more.resume:
            os.environ["STEERFLOW_RESUME"] = "1"
        summary = run_file(path, directory=more.dir or args.dir, progress=None)
        _console().print(summary)
        return 0
    sys.argv = [str(path), *args.args]
    sys.path.insert(0, str(path.resolve().parent))
    runpy.run_path(str(path), run_name="__main__")
    return 0


def _resume(args: argparse.Namespace) -> int:
    meta = _read_meta(Path(args.dir))
    command = meta.get("command")
    if not command or not command.get("argv") or not command["argv"][0]:
        print(f"steerflow resume: the journal in {args.dir} does not say how the campaign was started; "
              "run its script again with Campaign(..., resume=True).", file=sys.stderr)
        return 2
    argv = command["argv"]
    cmd = [sys.executable, *argv] if argv[0].endswith(".py") else argv
    env = dict(os.environ, STEERFLOW_RESUME="1")
    return subprocess.run(cmd, cwd=command.get("cwd") or None, env=env).returncode


# ---- status / cancel -------------------------------------------------------------------------

def _open(directory: Path, readonly: bool = True) -> sqlite3.Connection:
    db = directory / "journal.db"
    if not db.exists():
        raise SystemExit(f"steerflow: {directory} holds no campaign journal (no journal.db).")
    if readonly:
        return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    conn = sqlite3.connect(db, timeout=10)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def _read_meta(directory: Path) -> dict[str, Any]:
    from .journal import read_meta

    conn = _open(directory)
    try:
        return read_meta(conn)
    finally:
        conn.close()


def status(directory: Path) -> dict[str, Any]:
    """Counts per state and pool, and the running tasks with where they run, read from the journal."""
    conn = _open(directory)
    try:
        by_pool: dict[str, dict[str, int]] = {}
        for pool, state, n in conn.execute("SELECT pool, state, count(*) FROM tasks GROUP BY pool, state"):
            by_pool.setdefault(pool, {})[state] = n
        running = [{"key": k, "name": name, "pool": pool, "nodes": nodes, "attempts": attempts}
                   for k, name, pool, nodes, attempts in conn.execute(
                       "SELECT key, name, pool, nodes, attempts FROM tasks WHERE state IN ('running', 'paused') "
                       "ORDER BY key")]
        runs = conn.execute("SELECT count(*), min(started) FROM runs").fetchone()
    except sqlite3.OperationalError:  # the driver is still creating the journal
        by_pool, running, runs = {}, [], (0, None)
    finally:
        conn.close()
    return {"directory": str(directory), "driver_pid": driver_pid(directory), "pools": by_pool,
            "running": running, "drivers_so_far": runs[0], "started": runs[1]}


def _status(args: argparse.Namespace) -> int:
    from rich.table import Table

    directory = Path(args.dir)
    while True:
        info = status(directory)
        console = _console()
        pid = info["driver_pid"]
        console.print(f"[bold]{info['directory']}[/]: " + (f"driver running (pid {pid})" if pid else "no driver running")
                      + f", {info['drivers_so_far']} driver start(s)")
        states = ["new", "waiting", "running", "paused", "done", "failed", "cancelled", "interrupted"]
        table = Table(title="tasks by pool and state")
        table.add_column("pool")
        for s in states:
            table.add_column(s, justify="right")
        for pool, counts in sorted(info["pools"].items()):
            table.add_row(pool, *[str(counts.get(s, 0)) for s in states])
        console.print(table)
        if info["running"]:
            run_table = Table(title="running tasks")
            for col in ("key", "name", "pool", "nodes", "attempts"):
                run_table.add_column(col)
            for r in info["running"][:50]:
                run_table.add_row(str(r["key"]), r["name"], r["pool"], r["nodes"] or "", str(r["attempts"]))
            console.print(run_table)
        if not args.watch:
            return 0
        time.sleep(args.watch)


def _cancel(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    if driver_pid(directory) is None:
        print(f"steerflow cancel: no driver runs the campaign in {directory}; nothing to cancel.", file=sys.stderr)
        return 1
    conn = _open(directory, readonly=False)
    try:
        with conn:
            for task in args.tasks:
                if not task.isdigit():
                    print(f"steerflow cancel: {task!r} is not a task key (an integer).", file=sys.stderr)
                    return 2
                conn.execute("INSERT INTO control (op, arg, ts) VALUES ('cancel', ?, ?)", (task, time.time()))
            if args.stop:
                conn.execute("INSERT INTO control (op, arg, ts) VALUES ('stop', '', ?)", (time.time(),))
    finally:
        conn.close()
    print(f"asked the driver to cancel {', '.join(args.tasks) or 'nothing'}" + (" and stop" if args.stop else ""))
    return 0


def _report(args: argparse.Namespace) -> int:
    from .observe.report import build

    summary = build(args.dir, args.out)
    out = Path(args.out) if args.out else Path(args.dir) / "report"
    _console().print(summary)
    print(f"wrote {out / 'report.html'}, {out / 'utilisation.png'} and {out / 'report.json'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="steerflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a campaign: a Python file or a YAML pipeline spec")
    run.add_argument("file")
    run.add_argument("--dir", help="campaign directory (YAML specs; overrides the spec's 'directory')")
    run.add_argument("--resume", action="store_true", help="resume the campaign if its directory has a journal")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to a Python campaign file")
    run.set_defaults(handler=_run)

    resume = sub.add_parser("resume", help="resume a campaign killed or stopped earlier, from its journal")
    resume.add_argument("dir")
    resume.set_defaults(handler=_resume)

    st = sub.add_parser("status", help="counts per state and pool, running tasks and where they run")
    st.add_argument("dir")
    st.add_argument("--watch", type=float, default=0, metavar="SECONDS", help="refresh every SECONDS")
    st.set_defaults(handler=_status)

    cancel = sub.add_parser("cancel", help="cancel tasks of a running campaign by key")
    cancel.add_argument("dir")
    cancel.add_argument("tasks", nargs="*")
    cancel.add_argument("--stop", action="store_true", help="also stop the campaign")
    cancel.set_defaults(handler=_cancel)

    report = sub.add_parser("report", help="utilisation plot, time to completion and task counts, from the journal")
    report.add_argument("dir")
    report.add_argument("--out", help="where to write the report (default: DIR/report)")
    report.set_defaults(handler=_report)

    bench = sub.add_parser("bench", help="run a benchmark, print a table (and write JSON with --json)")
    bench.add_argument("what", choices=["runtime", "steering", "scheduler"])
    bench.add_argument("--json", help="write the results to this JSON file")
    bench.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is kept")
    bench.set_defaults(handler=_bench)

    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
