"""Data between tasks: bag, diamond and reduce workflows whose tasks pass 0 B or 1 MB results.

The shapes of an external task-performance suite, measured for steerflow and, in the same run,
for ``ProcessPoolExecutor`` (the floor) and Dask:

* **bag**: ``n`` independent tasks, each returning ``size`` bytes; the driver takes every result.
* **diamond**: one source task; ``n`` tasks that each take the source's result and return their
  own; one sink that takes all of theirs.
* **reduce**: ``n`` tasks, then a binary tree of ``n - 1`` merges, each taking two results.

Each executor runs each shape two ways where it can: ``futures`` (dependents get their inputs
as futures, so the executor may hand data over by reference) and ``resolved`` (the driver
waits for each input's value and passes the value, as one must with ``ProcessPoolExecutor``).
The data is plain ``bytes``, as in the suite.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

SHAPES = ("bag", "diamond", "reduce")


def produce(i: int, size: int) -> bytes:
    return b"x" * size if size else b""


def transform(data: bytes, i: int, size: int) -> bytes:
    return (data[:1] or b"y") * size if size else b""


def merge(a: bytes, b: bytes, size: int) -> bytes:
    return (a[:1] or b[:1] or b"z") * size if size else b""


def combine(*parts: bytes) -> int:
    return sum(len(p) for p in parts)


def run_shape(shape: str, submit: Callable[..., Any], result: Callable[[Any], Any], n: int, size: int,
              resolve: bool) -> float:
    """Run one shape through ``submit(fn, *args)``; return the seconds from first submit to the last result.

    ``resolve``: wait for each input in the driver and pass its value; else pass the future.
    """
    arg = result if resolve else (lambda f: f)
    t0 = time.perf_counter()
    if shape == "bag":
        futures = [submit(produce, i, size) for i in range(n)]
        total = sum(len(result(f)) for f in futures)
        expected = n * size
    elif shape == "diamond":
        source = submit(produce, 0, size)
        middle = [submit(transform, arg(source), i, size) for i in range(n)]
        total = result(submit(combine, *[arg(f) for f in middle]))
        expected = n * size
    elif shape == "reduce":
        level = [submit(produce, i, size) for i in range(n)]
        while len(level) > 1:
            pairs = [submit(merge, arg(level[i]), arg(level[i + 1]), size) for i in range(0, len(level) - 1, 2)]
            level = pairs + ([level[-1]] if len(level) % 2 else [])
        total = len(result(level[0]))
        expected = size
    else:
        raise ValueError(f"Unknown shape {shape!r}; choose one of {', '.join(SHAPES)}.")
    elapsed = time.perf_counter() - t0
    if total != expected:
        raise RuntimeError(f"{shape}: got {total} bytes, expected {expected}")
    return elapsed


def _future_result(f: Future) -> Any:
    return f.result()


def steerflow_executor(workers: int) -> tuple[Any, Callable[..., Any], Callable[[Any], Any], Callable[[], None]]:
    from ..resources import Allocation
    from ..runtime import Runtime

    rt = Runtime(Allocation.declare(nodes=1, cores=workers), run_dir=tempfile.mkdtemp(prefix="steerflow-bench-"))
    return rt, rt.submit, _future_result, rt.shutdown


def pool_executor(workers: int) -> tuple[Any, Callable[..., Any], Callable[[Any], Any], Callable[[], None]]:
    ex = ProcessPoolExecutor(workers)
    return ex, ex.submit, _future_result, ex.shutdown


def dask_executor(workers: int) -> tuple[Any, Callable[..., Any], Callable[[Any], Any], Callable[[], None]] | None:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        return None
    import logging

    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0")
    client = Client(cluster)

    def submit(fn: Callable[..., Any], *args: Any) -> Any:
        return client.submit(fn, *args, pure=False)

    def close() -> None:
        from ..engines.dask_quiet import close_quietly

        close_quietly(client, cluster)  # no heartbeat tracebacks as it goes

    return client, submit, _future_result, close


EXECUTORS: dict[str, tuple[Callable[[int], Any], tuple[bool, ...]]] = {
    "steerflow": (steerflow_executor, (False, True)),  # futures passed, and resolved in the driver
    "pool": (pool_executor, (True,)),                  # a ProcessPoolExecutor cannot take futures
    "dask": (dask_executor, (False,)),
}


# Executors measured in a phase of their own, started and closed within it: Dask's client and scheduler
# live in this process, and after a run they go on for tens of ms releasing its futures and keys (GIL and
# CPU this process's others then lack). Alive beside the others, its run's aftermath always fell on the run
# right after it in the turns, and a rotation keeps that order: steerflow's futures run, every time
# (session 6: bag with futures read 1.39-1.60x the pool where bag resolved, the same work, read 0.81-0.87x).
ALONE = ("dask",)


def measure(n: int = 300, sizes: tuple[int, ...] = (0, 1 << 20), workers: int = 2, repeat: int = 3,
            shapes: tuple[str, ...] = SHAPES, executors: tuple[str, ...] = ("steerflow", "pool", "dask"),
            ) -> dict[str, float]:
    """Median seconds per (executor, mode, shape, size); the executors take turns on each measurement.

    A run that comes right after another executor's is slower (its workers idled meanwhile: the same
    bag of no-ops, futures and resolved being the same work, came out 1.5x apart at the end of session 4),
    so each timed run is preceded by an untimed bag of ``2 * workers`` no-ops on the same executor
    (`warm_turn`): every run is measured warm, whatever ran before it. (The turns alone did not even
    it out: rotating [steerflow futures, steerflow resolved, pool] left steerflow's resolved run never
    after another executor's, and its futures run and the pool's always.) Each repeat still starts the
    turns one further along (`rotated`). The executors in `ALONE` run in a phase of their own in each
    repeat, after the others, alive only then (see `ALONE`).

    Keys: ``<executor>_<futures|resolved>_<shape>_<0mb|1mb>_s``.
    """
    times: dict[str, list[float]] = {}
    together = tuple(name for name in executors if name not in ALONE)
    phases = ([together] if together else []) + [(name,) for name in executors if name in ALONE]
    for repeat_index in range(repeat):
        for phase in phases:
            _measure_phase(phase, n, sizes, workers, shapes, repeat_index, times)
    return {key: statistics.median(values) for key, values in times.items()}


def _measure_phase(executors: tuple[str, ...], n: int, sizes: tuple[int, ...], workers: int,
                   shapes: tuple[str, ...], repeat_index: int, times: dict[str, list[float]]) -> None:
    """One repeat's turns of ``executors``: each started first, then each measurement runs them back to back."""
    running = []
    try:
        for name in executors:
            make, modes = EXECUTORS[name]
            made = make(workers)
            if made is not None:
                _, submit, result, close = made
                run_shape("bag", submit, result, 2 * workers, 0, True)  # warm up the workers
                running.append((name, modes, submit, result, close))
        runs = rotated([(name, submit, result, resolve) for name, modes, submit, result, _ in running
                        for resolve in modes], repeat_index)
        for shape in shapes:
            for size in sizes:
                for name, submit, result, resolve in runs:
                    key = f"{name}_{'resolved' if resolve else 'futures'}_{shape}_{size >> 20}mb_s"
                    times.setdefault(key, []).append(warm_turn(shape, submit, result, n, size, resolve, workers))
    finally:
        for *_, close in running:
            close()


def warm_turn(shape: str, submit: Callable[..., Any], result: Callable[[Any], Any], n: int, size: int,
              resolve: bool, workers: int) -> float:
    """`run_shape`, timed, right after an untimed bag of ``2 * workers`` no-ops on the same executor (its
    workers awake, whatever executor ran before)."""
    run_shape("bag", submit, result, 2 * workers, 0, True)
    return run_shape(shape, submit, result, n, size, resolve)


def rotated(items: list[Any], by: int) -> list[Any]:
    """``items`` rotated left by ``by`` (modulo its length): the order of turns for one repeat."""
    if not items:
        return items
    by %= len(items)
    return items[by:] + items[:by]


def table(result: dict[str, float]) -> str:
    """Rows: shape and size; columns: each executor and mode, and steerflow's ratio to the pool."""
    rows = sorted({k.split("_", 2)[2].rsplit("_s", 1)[0] for k in result})
    columns = sorted({"_".join(k.split("_", 2)[:2]) for k in result})
    lines = [f"{'shape':<14}" + "".join(f"{c:>20}" for c in columns) + f"{'best sf / pool':>16}"]
    for row in rows:
        cells = [result.get(f"{c}_{row}_s") for c in columns]
        ours = [v for c, v in zip(columns, cells) if c.startswith("steerflow") and v is not None]
        pool = result.get(f"pool_resolved_{row}_s")
        ratio = f"{min(ours) / pool:16.2f}" if ours and pool else f"{'':>16}"
        lines.append(f"{row:<14}" + "".join(f"{v:20.3f}" if v is not None else f"{'-':>20}" for v in cells) + ratio)
    return "\n".join(lines)


def main() -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--executors", default="steerflow,pool,dask")
    parser.add_argument("--sizes-mb", default="0,1")
    parser.add_argument("--json")
    args = parser.parse_args()
    result = measure(args.n, tuple(int(s) << 20 for s in args.sizes_mb.split(",")), args.workers, args.repeat,
                     tuple(args.shapes.split(",")), tuple(args.executors.split(",")))
    print(table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
