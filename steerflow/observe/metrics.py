"""Campaign metrics from the journal: utilisation, idle-while-queued gaps, overheads, TTC, per-task times.

`compute(directory)` returns a JSON-ready dict (what `steerflow report DIR --json` prints);
`snapshot(directory)` is the cheap subset a live view refreshes often (counts, busy now,
throughput, ETA); `task_table(timeline)` lists every task's timestamps.

Definitions (all in seconds of the driver's clock unless named *_pct or *_ms):
- ttc_s: first submission to the last task's end (to now while the campaign runs);
- drivers_s: the part of ttc_s in which a driver ran (a resumed campaign: without the time between a
  killed or stopped driver's last write and the next driver's start; else ttc_s);
- utilisation: resources held by placed attempts over capacity, in the time drivers ran between the
  first submission and the end of the campaign (a paused task still holds its resources);
- idle while queued: capacity that was free while tasks waited, integrated over time, with the
  reason the waiting work did not use it: ``quota`` (its pool is at its quota), ``blocked_large``
  (every queued task of the pool needs more than is free), ``dependency`` (the waiting tasks'
  dependencies were not done), ``scheduling`` (it fitted and was ready: placement latency);
- overheads per finished task (its final attempt where noted): ``scheduling`` ready -> placed
  (all attempts; includes waiting for busy resources), ``launch`` placed -> the worker has the
  message, ``data_in`` -> arguments and function loaded, ``data_out`` function returned -> result
  serialised, ``result_return`` -> the driver has the result. Share = total over the tasks' time
  from ready to result.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..journal_read import split_tags
from . import live as live_mod
from .timeline import FINISHED, Timeline, read

OVERHEADS = ("scheduling", "launch", "data_in", "data_out", "result_return")
REASONS = ("quota", "blocked_large", "dependency", "scheduling", "needs_other")


def compute(directory: str | Path | Timeline, now: float | None = None,
            idle: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every metric of a campaign, JSON-ready (see the module docstring for definitions).

    ``idle``: `idle_while_queued` of the same timeline, where the caller has it already.
    """
    tl = directory if isinstance(directory, Timeline) else read(directory, now=now)
    states = Counter(t[4] for t in tl.tasks.values())
    by_pool: dict[str, dict[str, int]] = {}
    for t in tl.tasks.values():
        counts = by_pool.setdefault(t[1], {})
        counts[t[4]] = counts.get(t[4], 0) + 1
    util = utilisation(tl)
    idle = idle if idle is not None else idle_while_queued(tl)
    over = overheads(tl)
    attempts = Counter(h.outcome for h in tl.holds)
    durations = {pool: _stats(np.array(d)) for pool, d in durations_by_pool(tl).items()}
    complete = not tl.live and all(t[4] in FINISHED for t in tl.tasks.values())
    return {
        "directory": str(tl.directory), "live": tl.live, "complete": complete,
        "capacity": {"cores": tl.cores, "gpus": tl.gpus, "nodes": len(tl.nodes)},
        "ttc_s": tl.last - tl.first if tl.tasks else 0.0,
        "drivers_s": driver_seconds(tl) if tl.tasks else 0.0,
        "tasks": dict(sorted(states.items())), "tasks_by_pool": by_pool,
        "attempts": dict(sorted(attempts.items())),
        "utilization_mean_pct": {"cores": util["mean_cores_pct"], "gpus": util["mean_gpus_pct"]},
        "utilization_mean_pct_by_pool": util["by_pool_pct"],
        "idle_while_queued_core_s": idle["core_s"], "idle_while_queued_gpu_s": idle["gpu_s"],
        "idle_while_queued_by_reason": idle["by_reason"], "idle_while_queued_by_pool": idle["by_pool"],
        "overhead_share_pct": over["share_pct"], "framework_overhead_share_pct": over["framework_share_pct"],
        "overheads": over["parts"],
        "task_duration_s_by_pool": durations,
        "throughput_tasks_per_s": snapshot_from(tl)["throughput_tasks_per_s"],
        "learning": learning(tl),
    }


def _stats(values: np.ndarray) -> dict[str, float]:
    values = values[~np.isnan(values)] if values.size else values
    if not values.size:
        return {"n": 0, "mean": 0.0, "p50": 0.0, "p99": 0.0, "max": 0.0}
    return {"n": int(values.size), "mean": float(values.mean()), "p50": float(np.percentile(values, 50)),
            "p99": float(np.percentile(values, 99)), "max": float(values.max())}


# ---- utilisation ---------------------------------------------------------------------------

def busy_steps(tl: Timeline, pool: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, busy cores, busy GPUs) as a step function: the value holds from times[i] to times[i+1]."""
    holds = [h for h in tl.holds if pool is None or h.pool == pool]
    if not holds:
        return np.array([tl.first, tl.last]), np.zeros(2), np.zeros(2)
    start = np.fromiter((h.start for h in holds), float, len(holds))
    end = np.fromiter((h.end for h in holds), float, len(holds))
    cores = np.fromiter((h.cores for h in holds), float, len(holds))
    gpus = np.fromiter((h.gpus for h in holds), float, len(holds))
    times = np.concatenate([start, end])
    order = np.argsort(times, kind="stable")
    times = times[order]
    busy_c = np.cumsum(np.concatenate([cores, -cores])[order])
    busy_g = np.cumsum(np.concatenate([gpus, -gpus])[order])
    return times, busy_c, busy_g


def integral(times: np.ndarray, values: np.ndarray) -> float:
    """Integral of a step function (values[i] on [times[i], times[i+1]])."""
    return float(np.sum(values[:-1] * np.diff(times))) if times.size > 1 else 0.0


def binned(times: np.ndarray, values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Time-weighted mean of a step function in each bin: bounded output however many steps there are."""
    if times.size < 2:
        return np.zeros(len(edges) - 1)
    area = np.concatenate([[0.0], np.cumsum(values[:-1] * np.diff(times))])
    at = np.interp(edges, times, area)  # the area is piecewise linear between steps: exact at the edges
    width = np.diff(edges)
    return np.divide(np.diff(at), width, out=np.zeros_like(width), where=width > 0)


def driver_seconds(tl: Timeline) -> float:
    """The time between the first submission and the end in which a driver ran (see ``drivers_s``)."""
    gaps = sum(max(0.0, min(b, tl.last) - max(a, tl.first)) for a, b in tl.gaps)
    return max(0.0, tl.last - tl.first - gaps)


def utilisation(tl: Timeline) -> dict[str, Any]:
    span = max(driver_seconds(tl), 1e-9)
    core_s, gpu_s = held_seconds(tl.holds)
    by_pool: dict[str, dict[str, float]] = {}
    for pool in sorted({h.pool for h in tl.holds}):
        c, g = held_seconds([h for h in tl.holds if h.pool == pool])
        by_pool[pool] = {"cores": 100 * c / (tl.cores * span), "gpus": 100 * g / (tl.gpus * span) if tl.gpus else 0.0}
    return {"mean_cores_pct": 100 * core_s / (tl.cores * span),
            "mean_gpus_pct": 100 * gpu_s / (tl.gpus * span) if tl.gpus else 0.0,
            "core_s": core_s, "gpu_s": gpu_s, "by_pool_pct": by_pool}


def held_seconds(holds: list) -> tuple[float, float]:
    """Core-seconds and GPU-seconds the given holds occupied."""
    core_s = gpu_s = 0.0
    for h in holds:
        d = h.end - h.start
        core_s += h.cores * d
        gpu_s += h.gpus * d
    return core_s, gpu_s


# ---- idle while queued -------------------------------------------------------------------------

def idle_while_queued(tl: Timeline, series: bool = False) -> dict[str, Any]:
    """Free capacity while tasks waited, per pool and reason; with ``series``, also the curves over time.

    One sweep over every hold/wait start and end in time order (O(events log events)).
    """
    pools = sorted({h.pool for h in tl.holds} | {w.pool for w in tl.waits} | {q[1] for q in tl.quotas})
    index = {p: i for i, p in enumerate(pools)}
    n = len(pools)
    events: list[tuple[float, int, int, int, int, int]] = []  # (t, kind, pool, cores, gpus, sign)
    for h in tl.holds:
        events.append((h.start, 0, index[h.pool], h.cores, h.gpus, 1))
        events.append((h.end, 0, index[h.pool], h.cores, h.gpus, -1))
    for w in tl.waits:
        kind = 1 if w.kind == "queue" else 2
        events.append((w.start, kind, index[w.pool], w.cores, w.gpus, 1))
        events.append((w.end, kind, index[w.pool], w.cores, w.gpus, -1))
    for since, pool, c, g in tl.quotas:
        events.append((since, 3, index[pool], -1 if c is None else c, -1 if g is None else g, 0))
    events.sort(key=lambda e: (e[0], -e[5]))  # at one instant: starts before ends, so nothing looks free
    busy_c = [0] * n
    busy_g = [0] * n
    queued_c = [0] * n  # demand of ready tasks
    queued_g = [0] * n
    deps_c = [0] * n
    deps_g = [0] * n
    queued_n = [0] * n
    deps_n = [0] * n
    sizes: list[Counter] = [Counter() for _ in range(n)]  # core demand -> tasks, of the ready queue per pool
    gsizes: list[Counter] = [Counter() for _ in range(n)]  # GPU demand (0 included) -> tasks
    small_c = [0] * n  # smallest core demand in the ready queue, per pool
    small_g = [0] * n  # smallest GPU demand (0: some task needs none)
    small_gpu_only = [0] * n  # smallest non-zero GPU demand
    quota_c: list[int | None] = [None] * n
    quota_g: list[int | None] = [None] * n
    acc_c = [[0.0] * len(REASONS) for _ in range(n)]
    acc_g = [[0.0] * len(REASONS) for _ in range(n)]
    total_c, total_g = tl.cores, tl.gpus
    all_busy_c = all_busy_g = 0
    waiting = 0  # tasks queued or waiting on dependencies, all pools
    curve_t: list[float] = []
    curve_idle: list[float] = []
    curve_queue: list[int] = []
    curve_deps: list[int] = []
    prev = events[0][0] if events else tl.first
    for t, kind, p, c, g, sign in events:
        dt = t - prev
        if dt > 0:
            idle_c = 0.0
            if waiting:
                idle_c = _attribute(total_c - all_busy_c, queued_c, deps_c, small_c, busy_c, quota_c, dt, acc_c,
                                    total_g - all_busy_g, small_g)
                if total_g:
                    _attribute(total_g - all_busy_g, queued_g, deps_g, small_gpu_only, busy_g, quota_g, dt, acc_g,
                               total_c - all_busy_c, small_c)
            if series:
                curve_t.append(prev)
                curve_idle.append(idle_c)
                curve_queue.append(sum(queued_n))
                curve_deps.append(sum(deps_n))
            prev = t
        if kind == 0:
            busy_c[p] += sign * c
            busy_g[p] += sign * g
            all_busy_c += sign * c
            all_busy_g += sign * g
        elif kind == 1:
            queued_c[p] += sign * c
            queued_g[p] += sign * g
            queued_n[p] += sign
            waiting += sign
            sizes[p][c] += sign
            gsizes[p][g] += sign
            if sign > 0:
                small_c[p] = c if queued_n[p] == 1 else min(small_c[p], c)
                small_g[p] = g if queued_n[p] == 1 else min(small_g[p], g)
                if g:
                    small_gpu_only[p] = g if not small_gpu_only[p] else min(small_gpu_only[p], g)
            elif sizes[p][c] == 0 or gsizes[p][g] == 0:  # the smallest may have left: look again
                small_c[p] = min((x for x, k in sizes[p].items() if k > 0), default=0)
                small_g[p] = min((x for x, k in gsizes[p].items() if k > 0), default=0)
                small_gpu_only[p] = min((x for x, k in gsizes[p].items() if k > 0 and x > 0), default=0)
        elif kind == 2:
            deps_c[p] += sign * c
            deps_g[p] += sign * g
            deps_n[p] += sign
            waiting += sign
        else:
            quota_c[p] = None if c < 0 else c
            quota_g[p] = None if g < 0 else g
    by_pool = {pool: {r: acc_c[i][j] for j, r in enumerate(REASONS) if acc_c[i][j] > 0}
               for i, pool in enumerate(pools)}
    by_reason = {r: sum(acc_c[i][j] for i in range(n)) for j, r in enumerate(REASONS)}
    result: dict[str, Any] = {  # needs_other is reported, not counted: that work could not have run there
        "core_s": sum(by_reason.values()) - by_reason["needs_other"],
        "gpu_s": sum(sum(row[:-1]) for row in acc_g),
        "by_reason": by_reason, "by_pool": {p: v for p, v in by_pool.items() if v},
        "gpu_by_reason": {r: sum(acc_g[i][j] for i in range(n)) for j, r in enumerate(REASONS)},
    }
    if series:
        curve_t.append(prev)
        curve_idle.append(0.0)
        curve_queue.append(sum(queued_n))
        curve_deps.append(sum(deps_n))
        result.update(times=np.array(curve_t), idle_cores=np.array(curve_idle, dtype=float),
                      queued=np.array(curve_queue, dtype=float), waiting_deps=np.array(curve_deps, dtype=float))
    return result


def _attribute(free: int, queued: list[int], deps: list[int], smallest: list[int], busy: list[int],
               quota: list[int | None], dt: float, acc: list[list[float]], other_free: int,
               other_smallest: list[int]) -> float:
    """Charge ``free`` capacity over ``dt`` to the pools whose work waited, with the reason; return idle units.

    ``smallest``: per pool, the smallest demand of this resource among its ready tasks; ``other_smallest``:
    of the other resource (GPUs when charging cores), 0 if some ready task needs none of it.
    """
    if free <= 0:
        return 0.0
    left = free
    not_counted = 0
    for p, want in enumerate(queued):
        if want <= 0 or left <= 0:
            continue
        take = min(left, want)
        if other_smallest[p] > other_free:
            reason = 4  # needs_other: all that waits needs GPUs (for idle cores) or cores (for idle GPUs)
            not_counted += take
        elif quota[p] is not None and busy[p] + max(smallest[p], 1) > quota[p]:
            reason = 0  # quota
        elif smallest[p] > free:
            reason = 1  # blocked_large: what waits needs more than is free
        else:
            reason = 3  # scheduling: it fitted; placement had not happened yet
        acc[p][reason] += take * dt
        left -= take
    for p, want in enumerate(deps):
        if want <= 0 or left <= 0:
            continue
        take = min(left, want)
        acc[p][2] += take * dt
        left -= take
    return float(free - left - not_counted)


# ---- overheads ---------------------------------------------------------------------------------

def overheads(tl: Timeline) -> dict[str, Any]:
    """Per finished task: scheduling, launch, data in/out and result return (see the module docstring)."""
    queued: dict[int, float] = {}
    first_ready: dict[int, float] = {}
    for w in tl.waits:
        if w.kind == "queue":
            queued[w.key] = queued.get(w.key, 0.0) + (w.end - w.start)
            if w.start < first_ready.get(w.key, math.inf):
                first_ready[w.key] = w.start
    keys = [k for k, r in tl.results.items() if r[2] and r[3]]
    m = len(keys)
    placed = np.fromiter((tl.results[k][2] for k in keys), float, m)
    ended = np.fromiter((tl.results[k][3] for k in keys), float, m)
    timing = np.array([tl.results[k][4] or (math.nan,) * 5 for k in keys], dtype=float).reshape(m, 5)
    ready = np.fromiter((first_ready.get(k, tl.results[k][4][0] if tl.results[k][4] else tl.results[k][2])
                         for k in keys), float, m)
    parts_ms = {
        "scheduling": np.fromiter((queued.get(k, 0.0) for k in keys), float, m),
        "launch": timing[:, 1] - placed,
        "data_in": timing[:, 2] - timing[:, 1],
        "data_out": timing[:, 4] - timing[:, 3],
        "result_return": ended - timing[:, 4],
    }
    task_time = float(np.nansum(np.clip(ended - ready, 0, None)))
    parts: dict[str, dict[str, float]] = {}
    for name, values in parts_ms.items():
        values = np.clip(values, 0, None)  # clocks of different nodes may disagree by a little
        known = values[~np.isnan(values)]
        total = float(known.sum())
        parts[name] = {"total_s": total, "share_pct": 100 * total / task_time if task_time > 0 else 0.0,
                       "p50_ms": float(np.percentile(known, 50)) * 1e3 if known.size else 0.0,
                       "p99_ms": float(np.percentile(known, 99)) * 1e3 if known.size else 0.0,
                       "tasks": int(known.size)}
    share = sum(p["share_pct"] for p in parts.values())
    framework = share - parts["scheduling"]["share_pct"]
    return {"parts": parts, "share_pct": share, "framework_share_pct": framework, "task_time_s": task_time}


# ---- per task, durations, learning, live numbers -----------------------------------------------------

TASK_COLUMNS = ("key", "name", "pool", "tags", "state", "submitted", "ready", "placed", "started", "ended", "where",
                "cores", "gpus", "attempts", "error")


def task_rows(tl: Timeline) -> list[tuple]:
    """One tuple per task, in TASK_COLUMNS order (times in seconds since the epoch, None where unknown)."""
    rows = []
    nothing = (math.nan,) * 5
    results = tl.results
    placed_on = {h.key: h.where for h in tl.holds}  # the last attempt's placement (the task row forgets it)
    for key, (name, pool, tags, submitted, state, cores, gpus, attempts, where) in sorted(tl.tasks.items()):
        where = placed_on.get(key, where)
        result = results.get(key)
        if result is None:
            rows.append((key, name, pool, tags or "", state, submitted, None, None, None, None, where, cores, gpus,
                         attempts, None))
            continue
        timing = result[4] or nothing
        rows.append((key, name, pool, tags or "", state, submitted, _num(timing[0]), result[2], _num(timing[2]),
                     result[3], where, cores, gpus, attempts, None if result[0] else result[1]))
    return rows


def task_table(tl: Timeline) -> list[dict[str, Any]]:
    """One dict per task: submitted, ready, placed, started, ended, where, cores, GPUs, attempts, pool, tags."""
    table = []
    for row in task_rows(tl):
        entry = dict(zip(TASK_COLUMNS, row))
        entry["tags"] = split_tags(entry["tags"])
        table.append(entry)
    return table


def _num(x: float) -> float | None:
    return None if x is None or x != x else x


def durations_by_pool(tl: Timeline) -> dict[str, list[float]]:
    """Held time of every attempt that ended done, per pool."""
    out: dict[str, list[float]] = {}
    for h in tl.holds:
        if h.outcome == "done":
            out.setdefault(h.pool, []).append(h.end - h.start)
    return out


def learning(tl: Timeline) -> dict[str, Any]:
    """What the learning layer journaled: model versions with their metrics, effective performance,
    surrogate statistics (meta rows), and its events (the latest value and series of each numeric field)."""
    block: dict[str, Any] = {}
    models: dict[str, list[dict[str, Any]]] = {}
    for key, value in sorted(tl.meta.items()):
        if key.startswith("model:") and isinstance(value, dict):
            models.setdefault(str(value.get("name", key.split(":")[1])), []).append(
                {"version": value.get("version"), "created_s": (value.get("created") or tl.first) - tl.first,
                 "metrics": value.get("metrics") or {}})
        elif key.startswith(("effective_performance", "surrogate")):
            block[key] = value
    history = journaled_series(tl)
    if history:
        block["series"] = history
    if models:
        block["models"] = {name: sorted(v, key=lambda m: m["version"] or 0) for name, v in models.items()}
    surrogates = surrogate_rates(tl)
    if surrogates:
        block["substitution_rate"] = surrogates
    events: dict[str, Any] = {}
    for ts, name, payload in tl.events:
        entry = events.setdefault(name, {"count": 0, "latest": None, "series": {}})
        entry["count"] += 1
        values = payload if isinstance(payload, dict) else {"value": payload}
        entry["latest"] = {k: v for k, v in values.items() if isinstance(v, (int, float, str, bool)) or v is None}
        for k, v in values.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("time", "ts"):
                series = entry["series"].setdefault(k, [])
                if len(series) < 5000:  # bounded: a report stays small whatever the campaign's length
                    series.append((ts - tl.first, float(v)))
    if events:
        block["events"] = events
    return block


def journaled_series(tl: Timeline, points: int = 2000) -> dict[str, dict[str, list[float]]]:
    """The learning layer's journaled series (e.g. ``surrogate:NAME``: its audited error against its bound
    over time), by name: ``t`` (seconds since the first submission) and one list per field, at most
    ``points`` long (evenly thinned, the last row kept)."""
    out: dict[str, dict[str, list[float]]] = {}
    for name, rows in sorted(tl.series.items()):
        fields = tl.meta.get(f"series:{name}")
        step = max(1, -(-len(rows) // points))
        kept = rows[::step] if rows[-1:] == rows[::step][-1:] else rows[::step] + rows[-1:]
        entry: dict[str, list[float]] = {"t": [ts - tl.first for ts, _ in kept]}
        width = max(len(v) for _, v in kept)
        names = list(fields) if isinstance(fields, list) and len(fields) == width else [f"v{i}" for i in range(width)]
        for i, field_name in enumerate(names):
            entry[field_name] = [v[i] if i < len(v) and v[i] == v[i] else None for _, v in kept]
        out[name] = entry
    return out


def surrogate_rates(tl: Timeline, points: int = 2000) -> dict[str, list[tuple[float, float]]]:
    """Cumulative substitution rate over time per surrogate: its journaled substitutions (events
    ``surrogate:NAME``) against its real calls (tasks tagged ``surrogate:NAME``)."""
    marks: dict[str, list[tuple[float, int]]] = {}
    for ts, name, _ in tl.events:
        if name.startswith("surrogate:"):
            marks.setdefault(name.split(":", 1)[1], []).append((ts, 1))
    if not marks:
        return {}
    for name, _, tags, submitted, *_ in tl.tasks.values():
        for tag in split_tags(tags):
            if tag.startswith("surrogate:") and tag[10:] in marks:
                marks[tag[10:]].append((submitted or 0.0, 0))
    out = {}
    for name, seq in marks.items():
        seq.sort()
        step = max(1, len(seq) // points)
        subs = 0
        series = []
        for i, (ts, substituted) in enumerate(seq, 1):
            subs += substituted
            if i % step == 0 or i == len(seq):
                series.append((ts - tl.first, subs / i))
        out[name] = series
    return out


def learning_series(block: dict[str, Any]) -> list[tuple[str, dict[str, list[tuple[float, float]]]]]:
    """Panels to draw, each (title, {line label: points}): a surrogate's audited and recent error against its
    bound, then each event field over time, and each model metric over its versions' times."""
    out: list[tuple[str, dict[str, list[tuple[float, float]]]]] = []
    for name, entry in block.get("series", {}).items():
        lines = {label: [(t, v) for t, v in zip(entry["t"], entry[field]) if v is not None]
                 for field, label in (("audit_error", "audited error (mean)"), ("recent_error", "recent error"),
                                      ("bound", "error bound")) if field in entry}
        if any(lines.values()):
            out.append((f"{name}: error against its bound", {k: v for k, v in lines.items() if v}))
    for name, entry in block.get("series", {}).items():
        if "substitution_rate" in entry:
            out.append((f"{name}: substitution rate", {"": [(t, v) for t, v in zip(entry["t"], entry[
                "substitution_rate"]) if v is not None]}))
    journaled = set(block.get("series", {}))
    out += [(f"{name}: {field}", {"": pts}) for name, entry in block.get("events", {}).items()
            for field, pts in entry["series"].items()]
    out += [(f"surrogate {name}: substitution rate", {"": pts}) for name, pts in block.get("substitution_rate", {}).items()
            if f"surrogate:{name}" not in journaled]
    for name, versions in block.get("models", {}).items():
        fields = sorted({k for v in versions for k, x in v["metrics"].items() if isinstance(x, (int, float))})
        for field in fields:
            out.append((f"model {name}: {field}", {"": [(v["created_s"], float(v["metrics"][field])) for v in versions
                                                         if isinstance(v["metrics"].get(field), (int, float))]}))
    return out


def snapshot_from(tl: Timeline, window_s: float = live_mod.WINDOW_S) -> dict[str, Any]:
    """`live.numbers` of a timeline already read: the same definitions as `snapshot`."""
    states = Counter(t[4] for t in tl.tasks.values())
    ends = [r[3] for r in tl.results.values() if r[3]]
    recent = sum(1 for e in ends if e >= tl.last - window_s)
    running = [h for h in tl.holds if h.outcome == "running"]
    stop = tl.meta.get("stop") if isinstance(tl.meta.get("stop"), dict) else None
    return live_mod.numbers(states, sum(h.cores for h in running), sum(h.gpus for h in running), tl.cores, tl.gpus,
                            recent, bool(ends), tl.first, tl.last, tl.live, stop, window_s)


def snapshot(directory: str | Path, now: float | None = None) -> dict[str, Any]:
    """Counts by state, busy cores/GPUs now, throughput over the last minute and an ETA with its basis.

    Cheap (SQL aggregates, no replay; see `steerflow.observe.live`): what the terminal views show beside
    the dashboard, which computes the same from its timeline (`snapshot_from`).
    """
    return live_mod.snapshot(directory, now)
