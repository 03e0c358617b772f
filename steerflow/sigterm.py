"""SIGTERM (and SIGHUP) stop a driver the way Ctrl-C does: cleanly, with its journal closed and resumable.

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


#: the signals that stop a driver cleanly: SIGTERM (`kill`, `scancel`, a wall time) and SIGHUP (the terminal or the
#: ssh session it ran in closed: before, Python ended at once, like SIGKILL); each only where it has its default
#: action, so `nohup` (SIGHUP ignored) and a handler of the user's own are left alone
STOPPING = (signal.SIGTERM, signal.SIGHUP)


def raise_terminated(signum: int, frame: object) -> None:
    if signum == signal.SIGTERM:
        raise Terminated()
    raise Terminated(f"{signal.Signals(signum).name}: the driver stopped cleanly; its running tasks were stopped.")


def install_default() -> list[int]:
    """`raise_terminated` for each of `STOPPING` that has its default action (main thread only); those installed."""
    if threading.current_thread() is not threading.main_thread():
        return []
    installed = [sig for sig in STOPPING if signal.getsignal(sig) == signal.SIG_DFL]
    for sig in installed:
        signal.signal(sig, raise_terminated)
    return installed


@contextlib.contextmanager
def stops_cleanly(resume_hint: str = "") -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise `Terminated` where they still have their default action.

    A handler the user (or the CLI) installed is left alone; outside the main thread nothing can be installed.
    """
    installed = install_default()
    try:
        yield
    except Terminated as exc:
        if not installed or not resume_hint:
            raise
        raise Terminated(f"{exc} {resume_hint}") from None
    finally:
        for sig in installed:
            signal.signal(sig, signal.SIG_DFL)
