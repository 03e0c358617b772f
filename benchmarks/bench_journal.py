"""Benchmark: journal bytes per task (prints a table, writes JSON with --json FILE).

    python benchmarks/bench_journal.py [--tasks 100000] [--big 200] [--demo DIR] [--json FILE]

- ``small``: ``--tasks`` no-op function tasks with one small argument each;
- ``big``: ``--big`` tasks that each get the same 8 MB matrix (as the demo's scoring tasks do);
- ``--demo DIR``: a finished run of examples/01 (every campaign under DIR).

Bytes are the campaign's files on disk after it closed: ``journal.db`` (+ WAL) and ``blobs/``.
The floor column, ``inline``, is what the task rows would hold if each stored its arguments
inline (the journal before content-addressed blobs): each row's description plus the sizes of
the blobs it references, computed from the same run.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import steerflow as sf
from steerflow import blobs, rundirs, serialize


def noop(i):
    return i


def column(matrix, j):
    return float(matrix[0, j])


def measure(directory: Path) -> dict[str, float]:
    files = sum(p.stat().st_size for p in directory.glob("journal.db*"))
    blob_bytes = sum(p.stat().st_size for p in (directory / "blobs").glob("*.pkl*")) if (directory / "blobs").is_dir() else 0
    conn = sqlite3.connect(f"file:{directory / 'journal.db'}?mode=ro", uri=True)
    tasks = conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
    inline = 0
    for (spec,) in conn.execute("SELECT spec FROM tasks"):
        if spec is None:
            continue
        inline += len(spec)
        described = serialize.loads(spec)
        for value in [*described.get("args", ()), *described.get("kwargs", {}).values()]:
            if isinstance(value, blobs.BlobRef):
                inline += value.size
    conn.close()
    stored = files + blob_bytes
    return {"tasks": tasks, "journal_bytes": files, "blob_bytes": blob_bytes,
            "bytes_per_task": stored / max(1, tasks), "inline_bytes_per_task": (files - _spec_bytes(directory)
                                                                                 + inline) / max(1, tasks)}


def _spec_bytes(directory: Path) -> int:
    conn = sqlite3.connect(f"file:{directory / 'journal.db'}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT coalesce(sum(length(spec)), 0) FROM tasks").fetchone()[0]
    finally:
        conn.close()


def run_small(root: Path, n: int) -> dict[str, float]:
    camp = sf.Campaign(root / "small", allocation=sf.Allocation.declare(nodes=1, cores=2), progress=False)
    t0 = time.perf_counter()
    for i in range(n):
        camp.submit(sf.Function(noop, args=(i,)))
    camp.run()
    out = measure(root / "small")
    out["seconds"] = time.perf_counter() - t0
    return out


def run_big(root: Path, n: int) -> dict[str, float]:
    matrix = np.random.default_rng(0).random((1000, 1100))  # 8.8 MB, like the demo's fingerprint matrix
    camp = sf.Campaign(root / "big", allocation=sf.Allocation.declare(nodes=1, cores=2), progress=False)
    t0 = time.perf_counter()
    for j in range(n):
        camp.submit(sf.Function(column, args=(matrix, j)))
    camp.run()
    out = measure(root / "big")
    out["seconds"] = time.perf_counter() - t0
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=200)
    parser.add_argument("--demo", help="a finished run directory of examples/01")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="sf-bench-journal-") as tmp:
        root = Path(tmp)
        if args.tasks:
            results["small"] = run_small(root, args.tasks)
        if args.big:
            results["big"] = run_big(root, args.big)
    if args.demo:
        for directory in rundirs.find(args.demo):
            results[f"demo:{directory.name}"] = measure(directory)
    print(f"{'case':<16}{'tasks':>8}{'journal MB':>12}{'blobs MB':>10}{'bytes/task':>12}{'inline bytes/task':>19}")
    for name, r in results.items():
        print(f"{name:<16}{r['tasks']:>8}{r['journal_bytes'] / 1e6:>12.2f}{r['blob_bytes'] / 1e6:>10.2f}"
              f"{r['bytes_per_task']:>12,.0f}{r['inline_bytes_per_task']:>19,.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
