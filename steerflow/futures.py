"""Futures for tasks, compatible with `concurrent.futures` (``wait``, ``as_completed`` work on them).

Unlike a standard future, cancelling a *running* task is possible: the runtime kills its
whole process tree, and the future is cancelled at once.
"""

from __future__ import annotations

from collections.abc import Callable
import os
import threading
import time
from concurrent.futures import CancelledError, Future, InvalidStateError
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED, PENDING, RUNNING
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import TaskFailed
from .serialize import Encoded
from .task import TaskState

if TYPE_CHECKING:
    from .runtime import Runtime

T = TypeVar("T")


class SharedCondition(threading.Condition):
    """The one lock and condition of all the futures of a runtime (a future has none of its own).

    A task's future is made per submit and finished once, by the runtime's loop thread: a
    Condition and an RLock per future cost more than the rest of the future. Sharing one keeps
    `concurrent.futures.wait` and ``as_completed`` working (they take each future's
    ``_condition``, reentrantly). Reads of a finished future take no lock at all (a finished
    future never changes). A thread waiting in ``result``/``exception`` parks on a lock of its
    own, listed under its future in ``waiting``: finishing a future wakes only its own waiters,
    and finishing one nobody waits for wakes nobody.

    The runtime's loop holds its wake-ups back while it works (`defer` ... `flush`): a woken
    thread wants the GIL at once, and waking it in the middle of a round takes the GIL (and,
    on a busy machine, the CPU) from the loop before it has handed the workers their next
    tasks. Flushed at the round's end, just before the loop sleeps, the waiter takes the GIL
    the loop gives up there. The future itself is finished at once: a thread that looks at it
    meanwhile does not wait at all.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        super().__init__(self.lock)
        self.waiting: dict[Future, list[Any]] = {}  # future -> the parked waiters' locks (under ``lock``)
        self.deferred: list[Any] | None = None  # while the loop holds wake-ups back: the waiters to release

    @property
    def sleepers(self) -> int:
        """How many threads wait for a future now."""
        return sum(len(waiters) for waiters in list(self.waiting.values()))

    def wake(self, future: Future) -> None:
        """Wake the threads waiting for ``future`` (call with ``lock`` held)."""
        waiters = self.waiting.pop(future, None)
        if waiters:
            deferred = self.deferred
            if deferred is not None:
                deferred.extend(waiters)
                return
            for waiter in waiters:
                waiter.release()

    def defer(self) -> None:
        """Hold wake-ups back until `flush` (the loop, as its round begins)."""
        self.deferred = []

    def flush(self) -> None:
        """Wake every waiter held back since `defer`; wake-ups are immediate again."""
        with self.lock:
            deferred, self.deferred = self.deferred, None
        if deferred:
            for waiter in deferred:
                waiter.release()

    def notify_all(self) -> None:
        """What `Future.cancel` calls: wake every waiter (each looks at its own future again)."""
        waiting, self.waiting = self.waiting, {}
        for waiters in waiting.values():
            for waiter in waiters:
                waiter.release()
        super().notify_all()


_PENDING_STATES = (PENDING, RUNNING)
_CANCELLED_STATES = (CANCELLED, CANCELLED_AND_NOTIFIED)


class TaskFuture(Future[T]):
    """The eventual value of one task. ``task_id`` identifies it in the runtime and the journal."""

    def __init__(self, runtime: Runtime | None, task_id: int, shared: SharedCondition | None = None) -> None:
        # Future.__init__'s fields, with the runtime's condition instead of one built per future
        if shared is None:
            shared = SharedCondition()
        self._condition = shared
        self._state = PENDING
        self._result = None
        self._exception = None
        self._waiter_list: list[Any] = []  # `concurrent.futures.wait`'s waiters (see the `_waiters` property)
        self._done_callbacks: list[Any] = []
        self._runtime = runtime
        self.task_id = task_id
        self._record: Any = None  # the runtime's record once the task finished (kept as long as this future)

    @property
    def _waiters(self) -> Any:
        """The waiters of `concurrent.futures.wait`/``as_completed`` (the only users of this name; ours use
        ``_waiter_list``). Asked for on the runtime's own thread while the task is pending, the list comes
        guarded: a wait there could never end (only that thread finishes tasks), so it raises instead."""
        waiters = self._waiter_list
        runtime = self._runtime
        if runtime is not None and self._state in _PENDING_STATES and runtime._thread.ident == threading.get_ident():
            return _LoopThreadWaiters(self, waiters)
        return waiters

    def _on_loop_thread(self) -> RuntimeError:
        """The error of a wait for this pending task on the runtime's own thread (it would wait for itself)."""
        return RuntimeError(  # (only the loop finishes futures: it would wait for itself, and every task with it)
            f"Task {self.task_id} cannot finish while the runtime's own thread waits for it: a done callback (or "
            "a listener) runs in that thread. Wait for results in another thread (or in a steering agent), "
            "or chain the work as a task that takes the future as an argument.")

    def _wait(self, timeout: float | None) -> None:
        """Block until this future is done; TimeoutError past ``timeout`` seconds."""
        shared: SharedCondition = self._condition  # type: ignore[assignment]
        runtime = self._runtime
        if runtime is not None and runtime._thread.ident == threading.get_ident() and self._state in _PENDING_STATES:
            raise self._on_loop_thread()
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            waiter = threading.Lock()
            waiter.acquire()
            with shared.lock:
                if self._state not in _PENDING_STATES:
                    return
                shared.waiting.setdefault(self, []).append(waiter)
            if end is None:
                waiter.acquire()
                continue  # woken: by its end, or by a cancel's wake-all (look again)
            remaining = end - time.monotonic()
            if remaining > 0 and waiter.acquire(True, remaining):
                continue
            with shared.lock:  # timed out (or woken just now): take the waiter back if it is still listed
                waiters = shared.waiting.get(self)
                if waiters is not None and waiter in waiters:
                    waiters.remove(waiter)
                    if not waiters:
                        del shared.waiting[self]
                if self._state in _PENDING_STATES:
                    raise TimeoutError(f"Task {self.task_id} did not finish within {timeout} s.")
                return

    def result(self, timeout: float | None = None) -> T:
        """The task's value; a result still in its wire form is loaded here, in the caller's thread, once."""
        if self._state != FINISHED:
            if self._state in _PENDING_STATES:
                self._wait(timeout)
            if self._state in _CANCELLED_STATES:
                raise CancelledError()
        error = self._exception
        if error is not None:
            try:
                raise error
            finally:
                self = None  # type: ignore[assignment]  # (as Future: no cycle through the traceback)
                error = None
        value = self._result
        if type(value) is Encoded:
            try:
                loaded = value.load()  # outside the lock: loading may be long, and the loop takes the lock
            except Exception as exc:  # noqa: BLE001
                raise TaskFailed(f"Task {self.task_id}'s result could not be unpickled: {exc}") from exc
            with self._condition.lock:  # type: ignore[attr-defined]
                value = self._result
                if type(value) is Encoded:  # first to load it: every caller gets this one object
                    value = self._result = loaded
        return value  # type: ignore[no-any-return]

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if self._state in _PENDING_STATES:
            self._wait(timeout)
        if self._state in _CANCELLED_STATES:
            raise CancelledError()
        return self._exception

    def done(self) -> bool:
        return self._state not in _PENDING_STATES

    def cancelled(self) -> bool:
        return self._state in _CANCELLED_STATES

    def set_result(self, result: Any) -> None:
        self._set(result, None)

    def set_exception(self, exception: BaseException | None) -> None:
        self._set(None, exception)

    def _set(self, value: Any, error: BaseException | None) -> None:
        """Finish the future (as ``Future.set_result``/``set_exception``): one lock, no notify when nobody waits."""
        shared: SharedCondition = self._condition  # type: ignore[assignment]
        with shared.lock:
            if self._state not in _PENDING_STATES:
                raise InvalidStateError(f"{self._state}: {self!r}")
            if error is None:
                self._result = value
            else:
                self._exception = error
            self._state = FINISHED
            for waiter in self._waiter_list:  # (`concurrent.futures.wait`'s)
                if error is None:
                    waiter.add_result(self)
                else:
                    waiter.add_exception(self)
            if shared.waiting:
                shared.wake(self)
        if self._done_callbacks:
            self._invoke_callbacks()

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
        return self.mark_cancelled()

    def mark_cancelled(self) -> bool:
        """Cancelled as an executor settles it (``set_running_or_notify_cancel``): ``wait`` and ``as_completed``
        count it at once. `Future.cancel` alone leaves it CANCELLED, which they never count as done."""
        with self._condition:
            state = self._state
            if state == FINISHED:
                return False
            if state == CANCELLED_AND_NOTIFIED:
                return True
            self._state = CANCELLED_AND_NOTIFIED
            for waiter in self._waiter_list:
                waiter.add_cancelled(self)
            self._condition.notify_all()
        if state != CANCELLED:
            self._invoke_callbacks()
        return True

    def running(self) -> bool:
        """(False once done: a running task cancelled reads cancelled, not both, while its kill is on its way.)"""
        return not self.done() and self.state.value == "running"

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


class _LoopThreadWaiters:
    """A pending task's waiter list as `concurrent.futures.wait`/``as_completed`` see it on the runtime's own thread.

    They install one waiter in each future's list, then block on its event. Blocked on that thread, nothing
    could set it (only that thread finishes tasks): the runtime froze for ever (or for the whole ``timeout``,
    to find nothing finished). So the waiter's event is swapped for one whose blocking wait takes the waiter
    back out of every list and raises the task's error; a wait that does not block (``timeout=0``, a task
    already cancelled) answers as before.
    """

    __slots__ = ("future", "waiters")

    def __init__(self, future: TaskFuture, waiters: list[Any]) -> None:
        self.future, self.waiters = future, waiters

    def append(self, waiter: Any) -> None:
        self.waiters.append(waiter)
        event = waiter.event
        if type(event) is not _LoopThreadEvent:
            event = waiter.event = _LoopThreadEvent(event, waiter, self.future)
        event.installed.append(self.future)

    def remove(self, waiter: Any) -> None:
        if waiter in self.waiters:  # (the event below took it out already where the wait raised)
            self.waiters.remove(waiter)

    def __iter__(self) -> Any:
        return iter(self.waiters)

    def __len__(self) -> int:
        return len(self.waiters)


class _LoopThreadEvent:
    """A waiter's event for a wait on the runtime's own thread: see `_LoopThreadWaiters`."""

    __slots__ = ("event", "waiter", "pending", "installed")

    def __init__(self, event: threading.Event, waiter: Any, pending: TaskFuture) -> None:
        self.event, self.waiter, self.pending = event, waiter, pending
        self.installed: list[TaskFuture] = []  # the futures that list this waiter

    def set(self) -> None:
        self.event.set()

    def clear(self) -> None:
        self.event.clear()

    def is_set(self) -> bool:
        return self.event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        if self.event.is_set() or (timeout is not None and timeout <= 0):
            return self.event.wait(0)
        for future in self.installed:  # (as the stdlib's own clean-up would, had it not waited for ever)
            with future._condition:
                try:
                    future._waiter_list.remove(self.waiter)
                except ValueError:
                    pass
        raise self.pending._on_loop_thread()


#: shared by every `SettledFuture`: their state never changes, so nobody waits on it, and it is never held long
_SETTLED = SharedCondition()


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
        self._waiter_list: list[Any] = []
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

    def failure(self, task_id: int, label: str) -> TaskFailed:
        """The error of a run that exited non-zero, with the end of what it wrote to stderr."""
        tail = self.stderr_tail()
        return TaskFailed(f"Task {task_id} ({label}) exited with status {self.returncode}. "
                          + (f"Last lines of {self.stderr_path}:\n{tail}" if tail.strip()
                             else f"It wrote nothing to its stderr ({self.stderr_path})."))

    def stderr_tail(self, size: int = 2000) -> str:
        """The last ``size`` bytes of its stderr file."""
        try:
            with open(self.stderr_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - size))
                return f.read().decode(errors="replace")
        except OSError:
            return "(no output)"


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
