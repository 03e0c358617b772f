"""SIGTERM stops a driver the way Ctrl-C does: cleanly, with its journal closed and resumable.

`kill`, `scancel` and a batch job's wall time send SIGTERM, whose default action ends Python at
once: running tasks are orphaned to the process-tree guard and the last results of a group commit
are lost. The CLI installs this for `steerflow run/resume`; `Campaign.run` installs it for the
plain `python campaign.py` path, but only where nobody else handles SIGTERM.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM; handled wherever Ctrl-C is."""

    def __init__(self, message: str = "SIGTERM: the driver stopped cleanly; its running tasks were stopped.") -> None:
        super().__init__(message)


def raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextlib.contextmanager
def stops_cleanly(resume_hint: str = "") -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated` if SIGTERM still has its default action.

    A handler the user (or the CLI) installed is left alone; outside the main thread nothing can be installed.
    """
    install = (threading.current_thread() is threading.main_thread()
               and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)
    if install:
        signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    except Terminated as exc:
        if not install or not resume_hint:
            raise
        raise Terminated(f"{exc} {resume_hint}") from None
    finally:
        if install:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
