"""How a campaign ends: its tasks stopped (or drained), the journal closed with the run's end, the directory
unlocked; also when the script ends (or raises) before the campaign's run().
"""

from __future__ import annotations

import json
import sys
import time
import weakref
from typing import Self

from . import dirlock, launch


class Closing:
    """`Campaign`'s end: close once, from run(), close(), a with-block, or the interpreter's exit."""

    def _close(self, drain: bool, end: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        if end:
            self._deliver_end()
        self._closing = True
        self._runtime.shutdown(wait=True, cancel_futures=not drain, kill=not drain)
        self._control.close()
        if self._resume is not None:  # (first: the writer, closing last, checkpoints and removes the WAL file)
            self._resume.close()
        self.journal.put("meta", "ended", json.dumps({"reason": self._stop_reason, "at": time.time()}))
        self.journal.put("run_end", time.time(), self._run_id)
        self.journal.close()
        self._blobs.close()
        dirlock.release(self._lock_fd)
        launch.ended(self.directory, self.unhandled)

    def close(self) -> None:
        """Stop without running (for campaigns that were built but not run)."""
        self._close(drain=False)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stop_at_exit(ref: weakref.ref) -> None:
    """A campaign whose script ends (or raises) before its run() stops its tasks, as before the Executor's
    wait-at-exit: a script that crashed after submitting 10,000 simulations must not run them all first."""
    camp = ref()
    if camp is None or camp._closed:
        return
    pending = camp._active
    camp._stop_reason = camp._stop_reason or "the script ended before the campaign's run()"
    if pending:
        print(f"steerflow: the script ended before the campaign in {camp.directory} ran (no run(), or an error "
              f"before it): its {pending} submitted task(s) were stopped. Continue with `steerflow resume "
              f"{camp.directory}` once the script calls run().", file=sys.stderr, flush=True)
    camp._close(drain=False, end=False)
