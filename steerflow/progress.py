"""A live terminal display of a running campaign: tasks by state, utilisation, elapsed time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.table import Table

if TYPE_CHECKING:
    from .campaign import Campaign


class ProgressDisplay:
    """Redrawn by the steering thread a few times a second; it only reads counters."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        self._live = Live(self._render(), console=Console(stderr=True), refresh_per_second=4, transient=False)

    def start(self) -> None:
        self._live.start()

    def update(self) -> None:
        self._live.update(self._render())

    def stop(self) -> None:
        self.update()
        self._live.stop()

    def _render(self) -> Table:
        camp = self.campaign
        counts: dict[str, int] = {}
        busy = 0
        for record in list(camp.runtime._records.values()):
            counts[record.state.value] = counts.get(record.state.value, 0) + 1
            if record.placement is not None:
                busy += sum(len(s.cores) for s in record.placement.slots)
        total = max(1, camp.allocation.total_cores)
        done = counts.get("done", 0) + counts.get("failed", 0) + counts.get("cancelled", 0)
        submitted = len(camp._futures)
        width = 30
        filled = int(width * done / max(1, submitted))
        table = Table(title=f"steerflow campaign {camp.directory.name}", show_header=True)
        for column in ("progress", "waiting", "running", "done", "failed", "cancelled", "cores busy", "elapsed"):
            table.add_column(column, justify="right")
        table.add_row(f"[green]{'█' * filled}[/]{'░' * (width - filled)} {done}/{submitted}",
                      str(counts.get("waiting", 0)), str(counts.get("running", 0) + counts.get("paused", 0)),
                      str(counts.get("done", 0)), str(counts.get("failed", 0)), str(counts.get("cancelled", 0)),
                      f"{busy}/{total} ({100 * busy / total:.0f}%)", f"{camp._elapsed():.1f}s")
        return table
