"""The report's and the dashboard's figures, drawn with matplotlib into PNG bytes.

Every figure's cost is bounded whatever the campaign's size: curves are binned to at most
``BINS`` points, and the Gantt chart draws each attempt only up to ``GANTT_BARS`` attempts on
``GANTT_ROWS`` rows; beyond that it shows occupancy per node (or group of nodes) and time bin,
coloured by pool, with failed and preempted attempts as a bounded sample of markers.
"""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np

from . import metrics
from .timeline import Timeline

BINS = 600
GANTT_BARS = 3000
GANTT_ROWS = 160
MARKERS = 1500
_PART = re.compile(r"([^\[;]+)\[c([\d,]*)(?: g([\d,]*))?\]")
OUTCOME_STYLE = {  # how an attempt that did not end 'done' looks: (edge colour, hatch)
    "failed": ("#d62728", "xxx"), "preempted": ("#ff7f0e", "///"), "lost": ("#9467bd", "..."),
    "requeued": ("#9467bd", "\\\\\\"), "cancelled": ("#7f7f7f", "--"), "interrupted": ("#7f7f7f", "++"),
    "running": ("#000000", ""),
}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96)
    _plt().close(fig)
    return buf.getvalue()


def pool_colours(pools: list[str]) -> dict[str, Any]:
    plt = _plt()
    cmap = plt.get_cmap("tab10" if len(pools) <= 10 else "tab20")
    return {p: cmap(i % cmap.N) for i, p in enumerate(sorted(pools))}


def _edges(tl: Timeline) -> np.ndarray:
    return np.linspace(tl.first, max(tl.last, tl.first + 1e-6), BINS + 1)


def rows_of(tl: Timeline) -> tuple[dict[str, int], dict[str, int], int, int]:
    """Row offsets: node name -> its first core row, and -> its first GPU row (GPU rows follow all cores)."""
    core_at: dict[str, int] = {}
    gpu_at: dict[str, int] = {}
    c = g = 0
    for name, cores, gpus in tl.nodes:
        core_at[name], gpu_at[name] = c, g
        c += cores
        g += gpus
    return core_at, gpu_at, c, g


def hold_rows(where: str | None, core_at: dict[str, int], gpu_at: dict[str, int], n_cores: int) -> list[int]:
    """The Gantt rows (cores, then GPUs) an attempt held, from its journaled placement text."""
    rows: list[int] = []
    for node, cores, gpus in _PART.findall(where or ""):
        base = core_at.get(node)
        if base is None:
            continue
        rows.extend(base + int(x) for x in cores.split(",") if x)
        if gpus:
            rows.extend(n_cores + gpu_at.get(node, 0) + int(x) for x in gpus.split(",") if x)
    return rows


def gantt(tl: Timeline) -> bytes:
    plt = _plt()
    core_at, gpu_at, n_cores, n_gpus = rows_of(tl)
    n_rows = n_cores + n_gpus
    colours = pool_colours(sorted({h.pool for h in tl.holds}) or ["-"])
    detailed = len(tl.holds) <= GANTT_BARS and n_rows <= GANTT_ROWS
    height = min(9.0, 2.0 + 0.12 * (n_rows if detailed else min(n_rows, 64)))
    fig, ax = plt.subplots(figsize=(11, height))
    t0 = tl.first
    if detailed:
        bars: dict[tuple[str, str], list[tuple[int, float, float]]] = {}
        for h in tl.holds:
            for row in hold_rows(h.where, core_at, gpu_at, n_cores):
                bars.setdefault((h.pool, h.outcome), []).append((row, h.start - t0, h.end - h.start))
        for (pool, outcome), spans in bars.items():
            edge, hatch = OUTCOME_STYLE.get(outcome, ("none", ""))
            ax.barh([r for r, _, _ in spans], [d for _, _, d in spans], left=[s for _, s, _ in spans], height=0.8,
                    color=colours[pool], edgecolor=edge if outcome != "done" else "none", hatch=hatch, linewidth=0.8)
        labels = [f"{n}:c{i}" for n, c, _ in tl.nodes for i in range(c)] + \
                 [f"{n}:g{i}" for n, _, g in tl.nodes for i in range(g)]
        if n_rows <= 48:
            ax.set_yticks(range(n_rows), labels, fontsize=7)
        ax.set_ylim(n_rows - 0.5, -0.5)
        ax.set_ylabel("core / GPU")
        title = "Attempts by core and GPU, coloured by pool (hatched: failed, preempted, requeued)"
    else:
        title = _gantt_aggregated(ax, tl, colours, core_at, gpu_at, n_cores, n_gpus)
    if n_gpus:
        ax.axhline(n_cores - 0.5 if detailed else _gpu_boundary(tl), color="black", linewidth=0.6)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    names = list(colours)
    for outcome in ("failed", "preempted", "requeued"):
        if any(h.outcome == outcome for h in tl.holds):
            edge, hatch = OUTCOME_STYLE[outcome]
            handles.append(plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor=edge, hatch=hatch))
            names.append(outcome)
    ax.legend(handles, names, loc="upper right", fontsize=7, ncol=min(len(names), 6))
    ax.set_xlabel("seconds since the first submission")
    ax.set_xlim(0, max(tl.last - t0, 1e-6))
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)


def _bands(tl: Timeline) -> tuple[list[str], list[int], list[int]]:
    """Aggregated Gantt rows: up to 64 bands of nodes for cores, then for GPUs: (labels, capacity, node->band)."""
    per = max(1, -(-len(tl.nodes) // 32))
    labels, capacity, band_of = [], [], []
    for i in range(0, len(tl.nodes), per):
        group = tl.nodes[i:i + per]
        labels.append(group[0][0] if per == 1 else f"{group[0][0]}..{group[-1][0]}")
        capacity.append(sum(n[1] for n in group))
    band_of = [i // per for i in range(len(tl.nodes))]
    return labels, capacity, band_of


def _gpu_boundary(tl: Timeline) -> float:
    return len(_bands(tl)[0]) - 0.5


def _gantt_aggregated(ax: Any, tl: Timeline, colours: dict[str, Any], core_at: dict[str, int],
                      gpu_at: dict[str, int], n_cores: int, n_gpus: int) -> str:
    labels, capacity, band_of = _bands(tl)
    node_index = {n[0]: i for i, n in enumerate(tl.nodes)}
    n_bands = len(labels)
    rows = n_bands * (2 if n_gpus else 1)
    gpu_capacity = []
    if n_gpus:
        per = max(1, -(-len(tl.nodes) // 32))
        gpu_capacity = [sum(n[2] for n in tl.nodes[i:i + per]) for i in range(0, len(tl.nodes), per)]
    edges = _edges(tl)
    image = np.ones((rows, BINS, 3))
    occupancy: dict[str, np.ndarray] = {}
    starts: dict[tuple[str, int], list[tuple[float, float, int]]] = {}
    for h in tl.holds:
        for node, cores, gpus in _PART.findall(h.where or ""):
            i = node_index.get(node)
            if i is None:
                continue
            band = band_of[i]
            n_c = cores.count(",") + 1 if cores else 0
            starts.setdefault((h.pool, band), []).append((h.start, h.end, n_c))
            if gpus:
                starts.setdefault((h.pool, n_bands + band), []).append((h.start, h.end, gpus.count(",") + 1))
    for (pool, row), spans in starts.items():
        arr = np.array(spans, dtype=float)
        times = np.concatenate([arr[:, 0], arr[:, 1]])
        order = np.argsort(times, kind="stable")
        level = np.cumsum(np.concatenate([arr[:, 2], -arr[:, 2]])[order])
        cap = capacity[row] if row < n_bands else gpu_capacity[row - n_bands]
        share = metrics.binned(times[order], level, edges) / max(cap, 1)
        occupancy.setdefault(pool, np.zeros((rows, BINS)))[row] += share
    for pool, occ in occupancy.items():
        rgb = np.array(colours[pool][:3])
        image -= np.clip(occ, 0, 1)[:, :, None] * (1 - rgb)[None, None, :]
    ax.imshow(np.clip(image, 0, 1), aspect="auto", interpolation="nearest",
              extent=(0, edges[-1] - tl.first, rows - 0.5, -0.5))
    marked = [h for h in tl.holds if h.outcome in ("failed", "preempted", "requeued", "lost")]
    if marked:
        step = max(1, len(marked) // MARKERS)
        for outcome in ("failed", "preempted", "requeued", "lost"):
            pts = []
            for h in marked[::step]:
                first = _PART.match(h.where or "")
                if h.outcome == outcome and first and first.group(1) in node_index:
                    pts.append((h.end - tl.first, band_of[node_index[first.group(1)]]))
            if pts:
                xs, ys = zip(*pts)
                ax.scatter(xs, ys, marker="x", s=10, color=OUTCOME_STYLE[outcome][0], linewidths=0.8)
    names = labels + ([f"GPUs {lab}" for lab in labels] if n_gpus else [])
    if rows <= 48:
        ax.set_yticks(range(rows), names, fontsize=7)
    ax.set_ylabel("node (band)")
    return (f"Occupancy by node and time, coloured by pool ({len(tl.holds):,} attempts aggregated into "
            f"{rows} rows x {BINS} bins; x: failed/preempted/requeued attempts, sampled)")


def _stack_busy(ax: Any, tl: Timeline, pools: list[str], colours: dict[str, Any], edges: np.ndarray,
                x: np.ndarray, *, gpus: bool) -> np.ndarray:
    """Stack each pool's busy cores (or GPUs) per bin; returns the stacked total."""
    total = np.zeros(BINS)
    for pool in pools:
        times, busy_cores, busy_gpus = metrics.busy_steps(tl, pool)
        level = metrics.binned(times, busy_gpus if gpus else busy_cores, edges)
        ax.fill_between(x, total, total + level, step="post", color=colours[pool], label=pool, linewidth=0)
        total += level
    return total


def utilisation(tl: Timeline, idle: dict[str, Any] | None = None) -> bytes:
    plt = _plt()
    edges = _edges(tl)
    x = edges[:-1] - tl.first
    pools = sorted({h.pool for h in tl.holds})
    colours = pool_colours(pools or ["-"])
    rows = 2 if tl.gpus else 1
    fig, axes = plt.subplots(rows, 1, figsize=(11, 3.4 * rows), squeeze=False)
    ax = axes[0][0]
    total = _stack_busy(ax, tl, pools, colours, edges, x, gpus=False)
    idle = idle if idle is not None else metrics.idle_while_queued(tl, series=True)
    if idle.get("times") is not None and idle["times"].size > 1:
        waste = metrics.binned(idle["times"], idle["idle_cores"], edges)
        ax.fill_between(x, total, total + waste, step="post", facecolor="none", edgecolor="#d62728", hatch="////",
                        linewidth=0, label="idle while work was queued")
    ax.axhline(tl.cores, color="black", linestyle="--", linewidth=1, label=f"{tl.cores} cores")
    mean = 100 * metrics.held_seconds(tl.holds)[0] / (tl.cores * max(tl.last - tl.first, 1e-9))
    ax.set_title(f"Busy cores by pool (mean {mean:.1f} %), with idle-while-queued marked", fontsize=10)
    ax.set_ylabel("cores")
    ax.legend(loc="upper right", fontsize=7, ncol=min(len(pools) + 2, 6))
    ax.set_xlim(0, x[-1] if x.size else 1)
    if tl.gpus:
        ax = axes[1][0]
        _stack_busy(ax, tl, pools, colours, edges, x, gpus=True)
        ax.axhline(tl.gpus, color="black", linestyle="--", linewidth=1, label=f"{tl.gpus} GPUs")
        ax.set_ylabel("GPUs")
        ax.set_title("Busy GPUs by pool", fontsize=10)
        ax.set_xlim(0, x[-1] if x.size else 1)
    axes[-1][0].set_xlabel("seconds since the first submission")
    fig.tight_layout()
    return _png(fig)


def queue_length(tl: Timeline, idle: dict[str, Any] | None = None) -> bytes:
    plt = _plt()
    idle = idle if idle is not None else metrics.idle_while_queued(tl, series=True)
    edges = _edges(tl)
    x = edges[:-1] - tl.first
    fig, ax = plt.subplots(figsize=(11, 2.8))
    if idle["times"].size > 1:
        ax.step(x, metrics.binned(idle["times"], idle["queued"], edges), where="post",
                label="ready, waiting for room")
        ax.step(x, metrics.binned(idle["times"], idle["waiting_deps"], edges), where="post",
                label="waiting on dependencies")
    ax.set_ylabel("tasks")
    ax.set_xlabel("seconds since the first submission")
    ax.set_title("Queue length over time (time-averaged per bin)", fontsize=10)
    if ax.get_legend_handles_labels()[0]:  # (a campaign without tasks: matplotlib warned on the terminal)
        ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return _png(fig)


def durations(tl: Timeline) -> bytes:
    plt = _plt()
    data = metrics.durations_by_pool(tl)
    colours = pool_colours(list(data) or ["-"])
    fig, ax = plt.subplots(figsize=(11, 3))
    values = [v for d in data.values() for v in d if v > 0]
    if values:
        lo, hi = min(values), max(values)
        if hi - lo < 0.05 * hi:  # (nearly) one value: a readable range around it
            lo, hi = 0.9 * lo, 1.1 * hi
        log = hi / max(lo, 1e-9) > 50
        bins = np.geomspace(max(lo, 1e-6), hi * 1.0001, 40) if log else np.linspace(lo, hi * 1.0001 + 1e-9, 40)
        for pool, d in sorted(data.items()):
            ax.hist(d, bins=bins, histtype="step", linewidth=1.5, color=colours[pool],
                    label=f"{pool} (n={len(d):,}, median {np.median(d):.3g} s)")
        if log:
            ax.set_xscale("log")
        ax.legend(fontsize=7)
    ax.set_xlabel("seconds an attempt that ended done held its resources")
    ax.set_ylabel("attempts")
    ax.set_title("Task durations by pool", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def overheads(over: dict[str, Any]) -> bytes:
    plt = _plt()
    parts = over["parts"]
    names = list(parts)
    fig, axes = plt.subplots(1, 2, figsize=(11, 2.8))
    axes[0].barh(names, [parts[n]["total_s"] for n in names], color="#4c72b0")
    axes[0].set_xlabel("total seconds over all tasks")
    axes[0].invert_yaxis()
    axes[0].set_title(f"Where task time went besides running: {parts['scheduling']['share_pct']:.1f} % queued "
                      f"(scheduling), {over['framework_share_pct']:.2f} % steerflow's overhead", fontsize=10)
    y = np.arange(len(names))
    axes[1].barh(y - 0.2, [parts[n]["p50_ms"] for n in names], height=0.4, label="p50")
    axes[1].barh(y + 0.2, [parts[n]["p99_ms"] for n in names], height=0.4, label="p99")
    axes[1].set_yticks(y, names)
    axes[1].invert_yaxis()
    axes[1].set_xscale("symlog", linthresh=0.1)
    axes[1].set_xlabel("ms per task")
    axes[1].legend(fontsize=7)
    axes[1].set_title("Per task", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def learning_curves(block: dict[str, Any]) -> bytes | None:
    """Learning curves: a surrogate's error against its bound (the bound dashed), rates, events, model metrics."""
    series = [(title, lines) for title, lines in metrics.learning_series(block)
              if max((len(p) for p in lines.values()), default=0) > 1][:8]
    if not series:
        return None
    plt = _plt()
    cols = 2 if len(series) > 1 else 1
    rows = -(-len(series) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.6 * rows), squeeze=False)
    for ax, (title, lines) in zip(axes.flat, series):
        for label, pts in lines.items():
            if not pts:
                continue
            xs, ys = zip(*pts)
            bound = label == "error bound"
            ax.plot(xs, ys, label=label or None, color="black" if bound else None, linestyle="--" if bound else "-",
                    drawstyle="steps-post" if bound else "default", marker=None if bound else ".", markersize=3)
        if len(lines) > 1:
            ax.legend(fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("seconds since the first submission", fontsize=8)
    for ax in list(axes.flat)[len(series):]:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


def all_figures(tl: Timeline, result: dict[str, Any], idle: dict[str, Any] | None = None) -> dict[str, bytes]:
    """Every figure of the report, by name (learning only where the campaign journaled learning events)."""
    idle = idle if idle is not None and "times" in idle else metrics.idle_while_queued(tl, series=True)
    figures = {"gantt": gantt(tl), "utilisation": utilisation(tl, idle), "queue": queue_length(tl, idle),
               "durations": durations(tl), "overheads": overheads(metrics.overheads(tl))}
    learn = learning_curves(result.get("learning") or {})
    if learn is not None:
        figures["learning"] = learn
    return figures
