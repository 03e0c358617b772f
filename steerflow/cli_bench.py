"""``steerflow bench``: run a benchmark, print its table (the floor and peers measured in the same run, the
targets), and write its results as JSON with ``--json``.

Every option either applies to the benchmark named or is refused with a message: ``--repeat`` (runtime,
steering, scheduler), ``--engine`` (runtime), ``--tasks`` (scale), ``--json`` (all). Until session 7 the
ones a benchmark does not use were ignored silently (``bench scheduler --repeat 9`` ran one run a row).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .cli_common import CliError, writable_folder

BENCHMARKS = ("runtime", "steering", "scheduler", "scale")
#: the options each benchmark uses (besides --json, which all do)
USES = {"runtime": ("repeat", "engine"), "steering": ("repeat",), "scheduler": ("repeat",), "scale": ("tasks",)}


def _count(text: str) -> int:
    """An argparse type: an integer >= 1 (0 or a negative count ended the benchmark in an IndexError)."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give an integer of at least 1")
    return value


def add_parser(sub: Any) -> None:
    """The ``bench`` subcommand on the CLI's subparsers."""
    bench = sub.add_parser("bench", help="run a benchmark, print a table (and write JSON with --json)")
    bench.add_argument("what", choices=list(BENCHMARKS))
    bench.add_argument("--json", help="write the results to this JSON file")
    # (defaults None: an option given to a benchmark that does not use it is refused; see `_options`)
    bench.add_argument("--repeat", type=_count, help="runs per measurement; the median is kept")
    bench.add_argument("--engine", choices=["local", "dask"],
                       help="runtime: measure the Dask engine (3 worker processes) against plain Dask and local")
    bench.add_argument("--tasks", type=_count,
                       help="scale: tasks per part (the targets are for 1,000,000; use fewer for a smoke test)")
    bench.set_defaults(handler=bench_command)


def _options(args: argparse.Namespace) -> None:
    """Refuse an option the benchmark does not use, then fill in the defaults of those it does."""
    for option in ("repeat", "engine", "tasks"):
        if getattr(args, option) is not None and option not in USES[args.what]:
            users = [f"`bench {what}`" for what in BENCHMARKS if option in USES[what]]
            said = users[0] if len(users) == 1 else f"{', '.join(users[:-1])} and {users[-1]}"
            raise CliError(f"--{option} does not apply to `steerflow bench {args.what}` (only to {said}); "
                           "leave it out.")
    if args.repeat is None:
        from .bench import scheduler

        args.repeat = scheduler.REPEAT if args.what == "scheduler" else 3
    args.engine = args.engine or "local"
    args.tasks = args.tasks or 1_000_000


def bench_command(args: argparse.Namespace) -> int:
    _options(args)
    if args.json:
        writable_folder(Path(args.json).resolve().parent, "--json FILE")
        if Path(args.json).is_dir():
            raise CliError(f"--json {args.json} is a directory; give the file to write the results to.")
    labels: dict[str, str] = {}
    notes: list[str] = []
    if args.what == "runtime" and args.engine == "dask":
        from .bench import dask_engine

        result = dask_engine.run(repeat=args.repeat)
        title, targets, labels, notes = f"steerflow bench runtime --engine dask (median of {args.repeat}; floor: local " \
            "engine)", dask_engine.TARGETS, dask_engine.LABELS, dask_engine.NOTES
    elif args.what == "runtime":
        from .bench import runtime as bench

        result = bench.run(repeat=args.repeat)
        title, targets, labels, notes = f"steerflow bench runtime (median of {args.repeat})", bench.TARGETS, \
            bench.LABELS, bench.NOTES
    elif args.what == "scale":
        from .bench import scale

        result = scale.run(tasks=args.tasks)
        title, targets = f"steerflow bench scale ({args.tasks:,} tasks)", scale.TARGETS
    elif args.what == "steering":
        from .bench import steering

        result = steering.run(repeat=args.repeat)
        title, targets = f"steerflow bench steering (median of {args.repeat})", steering.TARGETS
    else:
        from .bench import scheduler as bench_scheduler

        # (batch 1 and batch 16, each the median of short runs in new interpreters)
        result = bench_scheduler.run(nodes=10_000, repeat=args.repeat)
        title, targets = f"steerflow bench scheduler (median of {args.repeat})", bench_scheduler.TARGETS
    print_table(title, result, targets, labels, notes)
    if args.json:
        about = {"targets": {key: f"{op} {bound}" for key, (op, bound) in targets.items() if key in result},
                 "labels": {key: text for key, text in labels.items() if key in result}, "notes": notes}
        with open(args.json, "w") as f:
            json.dump({**result, "about": about}, f, indent=2)
        print(f"wrote {args.json}")
    return 0


def print_table(title: str, result: dict[str, Any], targets: dict[str, tuple[str, float]],
                labels: dict[str, str] | None = None, notes: list[str] | None = None) -> None:
    """One row a metric: steerflow's value, the floor's (``floor_KEY``), the peers' (``dask_KEY``,
    ``peer_dask_KEY``), the target and whether it is met; ``labels``: a line under a metric's name saying what
    it is; ``notes``: lines under the table."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    labels = labels or {}
    table = Table(title=title, caption=Text("\n".join(notes)) if notes else None, caption_justify="left")
    table.add_column("metric", no_wrap=True)
    table.add_column("steerflow", justify="right")
    table.add_column("floor", justify="right")
    peers = sorted({k.split("_", 1)[0] for k in result if k.startswith("dask_")})
    peers += ["peer_dask"] if any(k.startswith("peer_dask_") for k in result) else []
    for peer in peers:
        table.add_column(peer, justify="right")
    table.add_column("target", justify="right")
    table.add_column("met", justify="center")
    for key, value in result.items():
        if key.startswith(("floor_", "dask_", "peer_")) or not isinstance(value, (int, float)) \
                or isinstance(value, bool):
            continue
        floor = result.get(f"floor_{key}")
        op, bound = targets.get(key, ("", None))
        met = "" if bound is None else ("yes" if (value >= bound if op == ">=" else value <= bound) else "NO")
        peer_values = [result.get(f"{peer}_{key}") for peer in peers]
        name = Text(key)
        if key in labels:
            name.append(f"\n  {labels[key]}", style="dim")
        table.add_row(name, f"{value:,.3f}", "" if floor is None else f"{floor:,.3f}",
                      *["" if v is None else f"{v:,.3f}" for v in peer_values],
                      "" if bound is None else f"{op} {bound:,}", met)
    console = Console()
    if not console.is_terminal:  # (a file or a pipe: wide enough that no metric's name is cut)
        console = Console(width=160)
    console.print(table)
