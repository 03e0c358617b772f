"""One driver per campaign directory: an exclusive flock on DIR/driver.lock holding the driver's pid.

The kernel drops the lock when the driver dies, however it dies, so a crashed campaign can be
resumed at once; `steerflow status` reads the pid to say whether a driver runs.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import CampaignLocked


def acquire(directory: Path) -> int:
    """Hold DIR/driver.lock (flock) for this process; a second driver gets `CampaignLocked`."""
    fd = os.open(directory / "driver.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise CampaignLocked(f"Another driver (pid {owner}) is running the campaign in {directory}. Stop it "
                             f"first (`steerflow cancel {directory} --stop`), or watch it with "
                             f"`steerflow status {directory}`.", directory=directory,
                             pid=int(owner) if owner.isdigit() else -1) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def release(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    except OSError:
        pass


def holder(directory: Path) -> int | None:
    """The pid of the driver holding the campaign, or None if none runs."""
    lock = directory / "driver.lock"
    if not lock.exists():
        return None
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    except BlockingIOError:
        text = os.read(fd, 32).decode(errors="replace").strip()
        return int(text) if text.isdigit() else -1
    finally:
        os.close(fd)
