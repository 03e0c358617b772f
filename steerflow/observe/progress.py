"""A live terminal display of a running campaign: progress against its stop condition, pools, failures.

Redrawn by the steering thread a few times a second; it only reads counters. It fits an
80-column terminal: one line of progress (the task budget and wall limit the stop condition
knows), a row per pool with its throughput over the last minute, the live numbers the dashboard
and `steerflow status` show (busy cores/GPUs, throughput, ETA with its basis: the same
`steerflow.observe.live` snapshot of the journal, taken by a background thread at most every
second, less often when the journal is so large that a snapshot costs more than 5 % of that),
and the latest failures with the first line of their error.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..stop import limits
from . import live
from .statusview import printable

if TYPE_CHECKING:
    from ..campaign import Campaign

WINDOW_S = 60.0  # throughput is measured over the last minute
FAILURES_SHOWN = 3
LONGEST_SHOWN = 3
SNAPSHOT_EVERY_S = 1.0  # the live numbers' refresh; stretched to 20x a snapshot's cost (<= 5 % of a core)


class ProgressDisplay:
    """Redrawn by the steering thread a few times a second; it only reads counters."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        self._samples: deque[tuple[float, dict[str, int]]] = deque()
        self.snapshot: dict[str, Any] | None = None  # the latest live numbers from the journal
        self._reader = live.Reader(campaign.directory)
        self._stopping = threading.Event()
        self._sampler: threading.Thread | None = None
        self._live = Live(self._render(), console=Console(stderr=True), refresh_per_second=4, transient=False)

    def start(self) -> None:
        self._sampler = threading.Thread(target=self._sample, name="steerflow-progress", daemon=True)
        self._sampler.start()
        self._live.start()

    def update(self) -> None:
        self._live.update(self._render())

    def stop(self) -> None:
        self._stopping.set()
        if self._sampler is not None:
            self._sampler.join(timeout=5)
        try:  # the final numbers: everything journaled so far, committed first
            self.campaign.journal.flush(timeout=5)
        except Exception:  # noqa: BLE001 - a display never stops a campaign
            pass
        self.refresh_snapshot()
        self.update()
        self._live.stop()
        self._reader.close()

    def refresh_snapshot(self) -> dict[str, Any] | None:
        """Take the live numbers from the journal now (the sampler thread does this every second)."""
        try:
            self.snapshot = self._reader.snapshot()
        except Exception:  # noqa: BLE001 - a display never stops a campaign; the numbers just go stale
            pass
        return self.snapshot

    def _sample(self) -> None:
        while not self._stopping.is_set():
            self.refresh_snapshot()
            self._stopping.wait(max(SNAPSHOT_EVERY_S, 20 * self._reader.cost_s))

    def title(self, width: int = 80) -> str:
        """``steerflow · SCRIPT · DIRECTORY``, the directory shortened from the left to fit ``width``."""
        camp = self.campaign
        script = Path(str(camp.launch.get("script") or "")).name
        try:
            where = str(camp.directory.relative_to(Path.cwd()))
        except ValueError:
            where = str(camp.directory)
        head = f"steerflow · {script + ' · ' if script else ''}"
        room = max(12, width - len(head))
        return head + (where if len(where) <= room else "…" + where[-(room - 1):])

    def _render(self, width: int | None = None) -> RenderableType:
        camp = self.campaign
        width = width or (self._live.console.width if hasattr(self, "_live") else 80)
        # finished tasks are counts (the runtime keeps no finished records); unfinished ones are read live
        by_pool = {pool: dict(c) for pool, c in list(camp.runtime.finished_counts.items())}
        busy: dict[str, int] = {}
        for record in list(camp.runtime._records.values()):
            pool = record.spec.pool  # type: ignore[attr-defined]
            counts = by_pool.setdefault(pool, {})
            if not record.state.finished:
                counts[record.state.value] = counts.get(record.state.value, 0) + 1
            if record.placement is not None:
                busy[pool] = busy.get(pool, 0) + sum(len(s.cores) for s in record.placement.slots)
        now = time.monotonic()
        finished = {pool: c.get("done", 0) + c.get("failed", 0) for pool, c in by_pool.items()}
        self._samples.append((now, finished))
        while len(self._samples) > 2 and now - self._samples[1][0] >= WINDOW_S:
            self._samples.popleft()
        t0, before = self._samples[0]
        span = max(now - t0, 1e-9)

        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for column in ("pool", "wait", "run", "done", "fail", "per min", "cores/quota"):
            table.add_column(column, justify="left" if column == "pool" else "right",
                             overflow="ellipsis", max_width=18 if column == "pool" else None)
        total = max(1, camp.allocation.total_cores)
        for pool, counts in sorted(by_pool.items()):
            cap = camp.runtime.scheduler.quota(pool)[0]  # a read-only glance from this thread: stale is fine
            rate = (finished[pool] - before.get(pool, 0)) * 60.0 / span if now > t0 else 0.0
            table.add_row(escape(pool), str(counts.get("waiting", 0) + counts.get("new", 0)),
                          str(counts.get("running", 0) + counts.get("paused", 0) + counts.get("placed", 0)),
                          str(counts.get("done", 0)), str(counts.get("failed", 0)),
                          f"{rate:.1f}" if now - t0 >= 1 else "-", f"{busy.get(pool, 0)}/{cap if cap is not None else total}")
        parts: list[RenderableType] = [Text(self.title(width), style="bold", no_wrap=True, overflow="ellipsis"),
                                       table, self._progress_line()]
        if self.snapshot is not None:
            parts.append(Text("now: " + live.describe(self.snapshot), overflow="fold"))
        running = sorted((r for r in list(camp.runtime._records.values())
                          if r.state.value == "running" and r.placement is not None), key=lambda r: r.started)
        if running:
            parts.append(Text(f"running {len(running)}, the longest:", style="bold"))
            wall = time.time()
            for record in running[:LONGEST_SHOWN]:
                took = f"{wall - record.started:.0f}s" if record.started else ""
                parts.append(Text(printable(f"  {record.id} {record.spec.label()} on {camp.placement_text(record)} "
                                            f"{took}"),
                                  overflow="ellipsis", no_wrap=True))
        failures = list(camp.failures.items())
        if failures:
            parts.append(Text(f"failed: {len(failures)} (latest first; steerflow show DIR KEY shows one whole)",
                              style="bold red"))
            for key, line in reversed(failures[-FAILURES_SHOWN:]):
                name = camp._specs[key].label() if key in camp._specs else ""  # type: ignore[attr-defined]
                parts.append(Text(printable(f"  {key} {name}: {line}"), overflow="ellipsis", no_wrap=True))
        return Group(*parts)

    def _progress_line(self) -> Text:
        camp = self.campaign
        known = limits(camp._stop_condition)
        seen, elapsed = camp.ctx.results_seen, camp._elapsed()
        pieces: list[str] = []
        fraction = 0.0
        if "tasks" in known:
            budget = int(known["tasks"])
            fraction = max(fraction, seen / max(1, budget))
            pieces.append(f"{seen}/{budget} results")
        else:
            pieces.append(f"{seen} results")
        if "wall_s" in known:
            fraction = max(fraction, elapsed / max(1e-9, known["wall_s"]))
            pieces.append(f"{_clock(elapsed)} of {_clock(known['wall_s'])}")
        else:
            pieces.append(_clock(elapsed))
        if not known:
            pieces.append("no task budget or wall limit: runs until idle")
            return Text(" · ".join(pieces))
        width = 20
        filled = int(width * min(1.0, fraction))
        return Text.assemble(("█" * filled, "green"), "░" * (width - filled),
                             f" {100 * min(1.0, fraction):3.0f}% · " + " · ".join(pieces))


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
