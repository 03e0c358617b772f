"""Futures for tasks, compatible with `concurrent.futures` (``wait``, ``as_completed`` work on them).

Unlike a standard future, cancelling a *running* task is possible: the runtime kills its
whole process tree, and the future is cancelled at once.
"""

from __future__ import annotations

from collections.abc import Callable
import threading
from concurrent.futures import Future, InvalidStateError
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import TaskFailed
from .serialize import Encoded
from .task import TaskState

if TYPE_CHECKING:
    from .runtime import Runtime

T = TypeVar("T")


class TaskFuture(Future[T]):
    """The eventual value of one task. ``task_id`` identifies it in the runtime and the journal."""

    def __init__(self, runtime: Runtime | None, task_id: int) -> None:
        super().__init__()
        self._runtime = runtime
        self.task_id = task_id
        self._record: Any = None  # the runtime's record once the task finished (kept as long as this future)

    def result(self, timeout: float | None = None) -> T:
        """The task's value; a result still in its wire form is loaded here, in the caller's thread, once."""
        value = super().result(timeout)
        if type(value) is Encoded:
            with self._condition:
                value = self._result
                if type(value) is Encoded:
                    try:
                        value = value.load()
                    except Exception as exc:  # noqa: BLE001
                        raise TaskFailed(f"Task {self.task_id}'s result could not be unpickled: {exc}") from exc
                    self._result = value
        return value

    def outcome(self) -> tuple[bool, Any, BaseException | None]:
        """(cancelled, value, error) of a finished task, without taking its lock: a finished future never changes.

        For code that has been told the task finished (the steering thread, per result); the value is loaded
        here if it is still in its wire form. Raises `InvalidStateError` if the task has not finished.
        """
        state = self._state
        if state == FINISHED:
            error = self._exception
            if error is not None:
                return False, None, error
            value = self._result
            return False, (self.result() if type(value) is Encoded else value), None
        if state == CANCELLED or state == CANCELLED_AND_NOTIFIED:
            return True, None, None
        raise InvalidStateError(f"Task {self.task_id} has not finished; its outcome is not known yet.")

    @property
    def loaded(self) -> bool:
        """False while a finished task's value is still in its wire form (not yet asked for in this process)."""
        return type(self._result) is not Encoded

    def cancel(self) -> bool:
        """Cancel the task, killing it if it runs. False only if it had already finished."""
        if self.done() or self._runtime is None:
            return False
        self._runtime._post(("cancel", self.task_id))
        return super().cancel()

    def running(self) -> bool:
        return self.state.value == "running"

    @property
    def state(self) -> TaskState:
        record = self._record
        if record is None and self._runtime is not None:
            record = self._runtime._records.get(self.task_id)
        if record is not None:
            return record.state
        if self.cancelled():  # a future resolved from the journal on resume
            return TaskState.CANCELLED
        return TaskState.FAILED if self.done() and self.exception() is not None else TaskState.DONE

    def __repr__(self) -> str:
        return f"<TaskFuture task={self.task_id} {self._state.lower()}>"


#: shared by every `SettledFuture`: their state never changes, so nobody waits on it, and it is never held long
_SETTLED = threading.Condition()


class SettledFuture(TaskFuture[T]):
    """A future born finished: a task's outcome read from the journal on resume.

    A resume builds one per journaled task (a million for a million-task journal), so it skips
    what a running task's future needs and this one never uses: a lock and condition of its own
    (it shares one, which only `concurrent.futures.wait` ever takes), and a lock round trip per
    question. It behaves as a finished `TaskFuture` in every other way.
    """

    def __init__(self, task_id: int, value: Any = None, error: BaseException | None = None) -> None:
        # Future.__init__'s fields, set as they are once a future finished (no Condition built per future)
        self._condition = _SETTLED
        self._state = FINISHED
        self._result = value
        self._exception = error
        self._waiters: list[Any] = []
        self._done_callbacks: list[Any] = []
        self._runtime = None
        self.task_id = task_id
        self._record = None

    def result(self, timeout: float | None = None) -> T:
        if self._exception is not None:
            raise self._exception
        return self._result  # type: ignore[no-any-return]

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return self._exception

    def done(self) -> bool:
        return True

    def cancelled(self) -> bool:
        return False

    def cancel(self) -> bool:
        return False

    def running(self) -> bool:
        return False

    @property
    def state(self) -> TaskState:
        return TaskState.FAILED if self._exception is not None else TaskState.DONE


@dataclass(frozen=True)
class ExecResult:
    """What an executable task returns: its exit status and where its output went."""

    returncode: int
    stdout_path: Path
    stderr_path: Path

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def find_futures(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[TaskFuture]:
    """Futures among the arguments, looked for at the top level and one container deep."""
    found: list[TaskFuture] = []
    for value in (*args, *kwargs.values()):
        if isinstance(value, TaskFuture):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(v for v in value if isinstance(v, TaskFuture))
        elif isinstance(value, dict):
            found.extend(v for v in value.values() if isinstance(v, TaskFuture))
    return found


def _value(future: TaskFuture) -> Any:
    return future.result()


def substitute(value: Any, resolve: Callable[[TaskFuture], Any] = _value) -> Any:
    """Replace done futures by ``resolve(future)``, their values by default (the same depth `find_futures` looks)."""
    if isinstance(value, TaskFuture):
        return resolve(value)
    if isinstance(value, list):
        return [resolve(v) if isinstance(v, TaskFuture) else v for v in value]
    if isinstance(value, tuple):
        return tuple(resolve(v) if isinstance(v, TaskFuture) else v for v in value)
    if isinstance(value, dict):
        return {k: resolve(v) if isinstance(v, TaskFuture) else v for k, v in value.items()}
    return value
