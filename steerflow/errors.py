"""Exceptions raised by steerflow.

Every message is a full sentence that names what was wrong and says what to do.
"""

from __future__ import annotations


class SteerflowError(Exception):
    """Base class of every error steerflow raises on its own account."""


class TaskSpecError(SteerflowError, ValueError):
    """A task description is invalid; raised at submit, before anything is queued.

    ``field`` names the offending field, ``value`` what was given and ``limit`` the bound it broke.
    """

    def __init__(self, field: str, value: object, message: str, limit: object = None) -> None:
        self.field = field
        self.value = value
        self.limit = limit
        super().__init__(f"Task field '{field}' = {short_repr(value)}: {message}")


def short_repr(value: object, limit: int = 200) -> str:
    """``repr`` for an error message: bounded in length, and never itself an error (huge ints, broken reprs)."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a value whose repr fails still gets a message
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[:limit - 5] + " ...>"


class AllocationError(SteerflowError, ValueError):
    """The allocation could not be detected, declared or read from the batch system."""


class TaskFailed(SteerflowError):
    """A task raised, exited non-zero or was lost; ``remote_traceback`` holds what the worker saw."""

    def __init__(self, message: str, remote_traceback: str = "") -> None:
        self.remote_traceback = remote_traceback
        super().__init__(message + (f"\n\nRemote traceback:\n{remote_traceback}" if remote_traceback else ""))


class TaskTimeout(TaskFailed, TimeoutError):
    """A task ran past its ``timeout`` and was killed with its whole process tree."""


class WorkerLost(TaskFailed):
    """The worker process running a task died (os._exit, a signal, out of memory)."""


class DependencyFailed(TaskFailed):
    """A task could not run because a future it depended on failed or was cancelled."""


class RuntimeClosed(SteerflowError, RuntimeError):
    """The runtime was shut down; nothing more can be submitted to it."""


class JournalError(SteerflowError):
    """The campaign's journal could not be written (a full disk, say): the campaign stopped.

    What was committed before is intact; ``__cause__`` is the real error. Free space (or fix
    the cause) and resume the campaign.
    """


class RuntimeBroken(SteerflowError, RuntimeError):
    """The runtime's own loop failed (a bug, not a task's fault): every pending task fails with this cause.

    The campaign stops and `Campaign.run` raises it; what finished is in the journal, so a resume
    after the cause is fixed runs only what is left.
    """


class Preempted(BaseException):
    """Raised inside a running function task when the campaign preempts it.

    Catch it to save a checkpoint (`steerflow.checkpoint.save`), then let it propagate: the
    task's resources are released and it is run again later, where `checkpoint.load()`
    returns what was saved. It derives from BaseException so ``except Exception`` in task
    code does not swallow it.
    """


class TimedOut(BaseException):
    """Raised inside a running function task when it passes its ``timeout`` (the task then fails with `TaskTimeout`).

    ``finally`` blocks and ``except TimedOut`` run, so a task can clean up; its worker stays warm for the
    next task. Let it propagate: a task still running a short grace later (it swallowed it, or it is in
    C code that does not return to Python) is killed with its worker, as a program is at its timeout.
    It derives from BaseException so ``except Exception`` in task code does not swallow it.
    """


class CampaignLocked(SteerflowError):
    """Another driver holds this campaign directory (``pid``), or it holds a journal and resume was not asked."""

    def __init__(self, message: str, directory: object = None, pid: int | None = None) -> None:
        self.directory = directory
        self.pid = pid
        super().__init__(message)


class CampaignDirectoryError(SteerflowError, OSError):
    """The campaign directory cannot be created or written (a read-only file system, no permission, a full disk).

    An `OSError` too, so code that caught the bare error still catches it (the cause is its ``__cause__``).
    """


class CampaignStopped(SteerflowError):
    """`steerflow cancel DIR --stop` stopped this script's campaign: the script starts no other campaign."""


class SpecError(SteerflowError, ValueError):
    """A YAML campaign spec is invalid; the message names the line and the field."""


def first_line(error: BaseException | None) -> str:
    """``Type: message``'s first line: what a one-line list of failures shows for an error."""
    text = f"{type(error).__name__}: {error}".strip() if error is not None else ""
    return text.splitlines()[0] if text else "failed"


def describe_error(exc: BaseException) -> str:
    """The real cause of a failed write, with its errno or SQLite code (``No space left on device (ENOSPC)``)."""
    if isinstance(exc, OSError) and exc.errno:
        import errno as errno_mod

        return f"{exc.strerror or exc} ({errno_mod.errorcode.get(exc.errno, exc.errno)})"
    code = getattr(exc, "sqlite_errorname", None)
    return f"{exc} ({code})" if code else f"{type(exc).__name__}: {exc}"
