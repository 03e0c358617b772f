"""The ``steerflow`` command: run, watch, resume and cancel campaigns; run benchmarks."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any


def _print_table(title: str, result: dict[str, Any], targets: dict[str, tuple[str, float]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("steerflow", justify="right")
    table.add_column("floor", justify="right")
    table.add_column("target", justify="right")
    table.add_column("met", justify="center")
    for key, value in result.items():
        if key.startswith("floor_") or not isinstance(value, (int, float)):
            continue
        floor = result.get(f"floor_{key}")
        op, bound = targets.get(key, ("", None))
        met = "" if bound is None else ("yes" if (value >= bound if op == ">=" else value <= bound) else "NO")
        table.add_row(key, f"{value:,.3f}", "" if floor is None else f"{floor:,.3f}",
                      "" if bound is None else f"{op} {bound:,}", met)
    Console().print(table)


def _bench(args: argparse.Namespace) -> int:
    if args.what == "runtime":
        from .bench import runtime as bench

        result = bench.run(repeat=args.repeat)
        _print_table("steerflow bench runtime (median of %d)" % args.repeat, result, bench.TARGETS)
    elif args.what == "scheduler":
        from .bench.scheduler import placements_per_second

        result = placements_per_second(nodes=10_000)
        _print_table("steerflow bench scheduler", result, {"placements_per_s": (">=", 50_000)})
    else:
        print(f"unknown benchmark {args.what!r}", file=sys.stderr)
        return 2
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.json}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="steerflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="run a benchmark and print a table (and JSON with --json)")
    bench.add_argument("what", choices=["runtime", "scheduler", "steering"])
    bench.add_argument("--json", help="write the results to this JSON file")
    bench.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is kept")
    bench.set_defaults(handler=_bench)
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
