"""A synthetic campaign journal of any size, for timing the report and the dashboard at scale.

Rows go through the journal's own schema and statements; the timeline is a plausible one:
tasks submitted over the first seconds, placed on a free (node, core) slot as it frees up,
some on GPUs, a few failing once and retried, durations log-normal per pool.
"""

from __future__ import annotations

import heapq
import json
import random
import sqlite3
import time
from pathlib import Path

from .. import journal

POOLS = {"simulate": 2.0, "train": 8.0, "infer": 0.2, "analyse": 0.5}  # median seconds per pool


def write(directory: str | Path, tasks: int = 100_000, nodes: int = 64, cores: int = 32, gpus: int = 4,
          seed: int = 0) -> Path:
    """Write ``directory/journal.db`` holding ``tasks`` finished tasks on ``nodes`` x (``cores``, ``gpus``)."""
    rng = random.Random(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "journal.db"
    if path.exists():
        raise FileExistsError(f"{path} exists already; give an empty directory.")
    conn = sqlite3.connect(path)
    conn.executescript(journal.SCHEMA)
    t0 = time.time() - 3600.0
    names = [f"node{i:03d}" for i in range(nodes)]
    layout = {"nodes": [(n, cores, gpus) for n in names], "quotas": {}}
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [("layout", json.dumps(layout)),
                                                  ("allocation", json.dumps(f"{nodes} synthetic nodes"))])
    conn.execute("INSERT INTO runs (pid, started, ended, cores, gpus) VALUES (0, ?, NULL, ?, ?)",
                 (t0, nodes * cores, nodes * gpus))
    cpu_slots = [(t0, n, c, -1) for n in range(nodes) for c in range(cores)]
    gpu_slots = [(t0, n, c, g) for n in range(nodes) for g, c in enumerate(range(gpus))]
    heapq.heapify(cpu_slots)
    heapq.heapify(gpu_slots)
    task_rows, state_rows, result_rows = [], [], []
    pools = list(POOLS)
    for key in range(1, tasks + 1):
        pool = pools[rng.randrange(len(pools))]
        on_gpu = pool == "train" and gpus > 0
        submitted = t0 + 10.0 * key / tasks
        task_rows.append((key, f"{pool}_task", "Function", pool, "", 0, f"fp{key}", submitted, b"", 1,
                          1 if on_gpu else 0))
        state_rows.append((key, "waiting", submitted, 0, None))
        slots = gpu_slots if on_gpu else cpu_slots
        attempts = 2 if rng.random() < 0.03 else 1
        ready = submitted
        for attempt in range(1, attempts + 1):
            free, node, core, gpu = heapq.heappop(slots)
            placed = max(free, ready) + rng.uniform(0.0002, 0.002)
            duration = rng.lognormvariate(0.0, 0.6) * POOLS[pool] * (0.3 if attempt < attempts else 1.0)
            ended = placed + duration + 0.003
            where = f"{names[node]}[c{core}" + (f" g{gpu}]" if gpu >= 0 else "]")
            state_rows.append((key, "running", placed, attempt, where))
            last = attempt == attempts
            state_rows.append((key, "done" if last else "waiting", ended, attempt, None if last else "failed"))
            heapq.heappush(slots, (ended, node, core, gpu))
            ready = ended
        timing = journal.TIMING.pack(submitted, placed + 0.001, placed + 0.0012, ended - 0.0025, ended - 0.002)
        result_rows.append((key, 1, None, None, None, placed, ended, timing))
    conn.executemany("INSERT INTO tasks (key, name, kind, pool, tags, priority, fingerprint, submitted, state, spec,"
                     " cores, gpus) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'new', ?, ?, ?)", task_rows)
    state_rows.sort(key=lambda r: r[2])  # the journal holds state changes in the order they happened
    conn.executemany("INSERT INTO states (key, state, ts, attempt, nodes) VALUES (?, ?, ?, ?, ?)",
                     state_rows)
    conn.executemany("UPDATE tasks SET state = 'done', attempts = ? WHERE key = ?",
                     [(r[3], r[0]) for r in state_rows if r[1] == "done"])
    conn.executemany("INSERT INTO results (key, ok, value, path, error, started, ended, timing)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", result_rows)
    conn.execute("UPDATE runs SET ended = ?", (max(r[6] for r in result_rows),))
    conn.commit()
    conn.close()
    return path


def append(directory: str | Path, tasks: int = 1000, seed: int = 1) -> None:
    """Add ``tasks`` finished tasks after the journal's last one, as a running campaign would between two
    refreshes of a dashboard (task, waiting/running/done state rows, result), in one transaction."""
    rng = random.Random(seed)
    conn = sqlite3.connect(Path(directory) / "journal.db")
    first_key = (conn.execute("SELECT max(key) FROM tasks").fetchone()[0] or 0) + 1
    t = conn.execute("SELECT max(ts) FROM states").fetchone()[0] or time.time()
    pools = list(POOLS)
    task_rows, state_rows, result_rows = [], [], []
    for key in range(first_key, first_key + tasks):
        pool = pools[rng.randrange(len(pools))]
        submitted = t + 0.001 * (key - first_key)
        placed = submitted + 0.001
        ended = placed + rng.uniform(0.05, 0.2)
        task_rows.append((key, f"{pool}_task", "Function", pool, "", 0, f"fp{key}", submitted, b"", 1, 0, "done"))
        state_rows += [(key, "waiting", submitted, 0, None), (key, "running", placed, 1, f"node000[c{key % 32}]"),
                       (key, "done", ended, 1, None)]
        result_rows.append((key, 1, None, None, None, placed, ended,
                            journal.TIMING.pack(submitted, placed + 0.0005, placed + 0.0007, ended - 0.001,
                                                ended - 0.0008)))
    with conn:
        conn.executemany("INSERT INTO tasks (key, name, kind, pool, tags, priority, fingerprint, submitted, spec, "
                         "cores, gpus, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", task_rows)
        conn.executemany("INSERT INTO states (key, state, ts, attempt, nodes) VALUES (?, ?, ?, ?, ?)", state_rows)
        conn.executemany("UPDATE tasks SET attempts = 1 WHERE key = ?", [(r[0],) for r in task_rows])
        conn.executemany("INSERT INTO results (key, ok, value, path, error, started, ended, timing)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", result_rows)
    conn.close()
