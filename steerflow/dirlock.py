"""One driver per campaign directory: an exclusive flock on the directory itself, and on DIR/driver.lock.

The directory's lock is the one that counts: deleting DIR/driver.lock while a driver runs (a
cleanup script, a careless ``rm``) cannot let a second driver in, since the directory stays the
same inode. DIR/driver.lock holds the driver's pid for `steerflow status` (and keeps drivers of
earlier versions, which lock only that file, out). The kernel drops both locks when the driver
dies, however it dies, so a crashed campaign can be resumed at once. Where the file system
cannot lock a directory (some network file systems), the file's lock alone is used.
"""

from __future__ import annotations

import fcntl
import os
import stat
import warnings
from pathlib import Path

from .errors import CampaignLocked


def prepare(directory: Path) -> None:
    """Create a campaign directory private to the user (0700); leave an existing one as it is.

    An existing directory keeps its mode (a group-shared, setgid project directory stays so); one
    that every user may read gets a warning, since task output and checkpoints live in it (the
    journal and results files are 0600 whatever the directory's mode).
    """
    if not directory.exists():
        directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            directory.mkdir(mode=0o700)
            os.chmod(directory, 0o700)  # whatever the umask
        except FileExistsError:
            pass
        return
    mode = directory.stat().st_mode
    if mode & 0o005:
        warnings.warn(f"The campaign directory {directory} is readable by every user (mode {stat.filemode(mode)}); "
                      f"task output and checkpoints in it are private files, but consider `chmod o-rwx {directory}`.",
                      stacklevel=3)


_DIR_FDS: dict[int, int] = {}  # driver.lock fd -> the directory's fd, both held while the driver runs


def _lock_directory(directory: Path) -> int | None:
    """The directory's own flock (None where the file system cannot lock a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise
    except OSError:
        os.close(fd)
        return None
    return fd


def _locked_by(directory: Path, pid_text: str) -> CampaignLocked:
    owner = pid_text.strip() or "unknown"
    if owner == str(os.getpid()):  # (a notebook cell run twice: `steerflow cancel --stop` would stop this process)
        return CampaignLocked(f"This process already has the campaign in {directory} open (a Campaign made twice, "
                              "say a notebook cell run again). Close the first one (camp.close(), or let its run() "
                              "end) before making another, or give another directory.", directory=directory,
                              pid=os.getpid())
    return CampaignLocked(f"Another driver (pid {owner}) is running the campaign in {directory}. Stop it "
                          f"first (`steerflow cancel {directory} --stop`), or watch it with "
                          f"`steerflow status {directory}`.", directory=directory,
                          pid=int(owner) if owner.isdigit() else -1)


def _read_pid(directory: Path) -> str:
    try:
        with open(directory / "driver.lock", "rb") as f:
            return f.read(32).decode(errors="replace")
    except OSError:
        return ""


def acquire(directory: Path) -> int:
    """Hold the directory and DIR/driver.lock (flock) for this process; a second driver gets `CampaignLocked`."""
    try:
        dir_fd = _lock_directory(directory)
    except BlockingIOError:
        raise _locked_by(directory, _read_pid(directory)) from None
    for _ in range(10):  # the file may be deleted or replaced between our open and our lock: lock what is there
        fd = os.open(directory / "driver.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace")
            os.close(fd)
            if dir_fd is not None:
                os.close(dir_fd)
            raise _locked_by(directory, owner) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(directory / "driver.lock").st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    if dir_fd is not None:
        _DIR_FDS[fd] = dir_fd
    return fd


def release(fd: int) -> None:
    for f in (fd, _DIR_FDS.pop(fd, None)):
        if f is None:
            continue
        try:
            fcntl.flock(f, fcntl.LOCK_UN)
            os.close(f)
        except OSError:
            pass


def holder(directory: Path) -> int | None:
    """The pid of the driver holding the campaign (-1 if it cannot be read), or None if none runs."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        dir_fd = None
    if dir_fd is not None:
        try:
            fcntl.flock(dir_fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(dir_fd, fcntl.LOCK_UN)
        except BlockingIOError:
            text = _read_pid(directory).strip()
            return int(text) if text.isdigit() else -1
        except OSError:
            pass
        finally:
            os.close(dir_fd)
    lock = directory / "driver.lock"  # a driver of an earlier version locks only this file
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
