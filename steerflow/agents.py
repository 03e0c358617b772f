"""Steering agents: plain functions or methods that react to campaign events.

Concurrency model: every handler of every agent runs in ONE steering thread, one event at a
time, in the order events are journaled. Handlers therefore never race each other and need
no locks. The runtime places and runs tasks in its own thread, so a slow handler never
leaves a core idle while queued work exists; long work (training a model) belongs in a task,
whose result comes back as another event. Handlers reach the runtime only through the
`Context` they are given.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .campaign import Campaign
    from .futures import TaskFuture

HANDLER_ATTR = "_steerflow_handlers"


@dataclass
class Handler:
    """One reaction: what it waits for and the callable that reacts."""

    kind: str  # "result" | "partial" | "timer" | "event" | "start" | "end"
    fn: Callable[..., Any]
    pool: str | None = None
    tag: str | None = None
    every: int = 1
    seconds: float = 0.0
    name: str | None = None
    buffer: list[Result] = field(default_factory=list)
    next_due: float = 0.0

    def matches(self, result: Result | Partial) -> bool:
        return (self.pool is None or result.pool == self.pool) and (self.tag is None or self.tag in result.tags)

    @property
    def label(self) -> str:
        return getattr(self.fn, "__qualname__", repr(self.fn))


def _mark(fn: Callable[..., Any], handler: Handler) -> Callable[..., Any]:
    target = fn.__func__ if isinstance(fn, (classmethod, staticmethod)) else fn
    handlers = getattr(target, HANDLER_ATTR, None)
    if handlers is None:
        handlers = []
        setattr(target, HANDLER_ATTR, handlers)
    handlers.append(handler)
    return fn


def on_result(pool: str | None = None, tag: str | None = None, every: int = 1) -> Callable:
    """React to task results of a pool and/or tag: ``fn(result, ctx)``; with ``every=N``, ``fn(results, ctx)``.

    ``@on_result`` without parentheses works too (every result): before, the function was taken for the pool's
    name, and the agent never heard a result, without a word."""
    if callable(pool) and tag is None and every == 1:
        return _mark(pool, Handler("result", pool))
    _check_filter("on_result", pool, tag)
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"on_result(every={every!r}): every must be an integer >= 1.")
    return lambda fn: _mark(fn, Handler("result", fn, pool=pool, tag=tag, every=every))


def _check_filter(what: str, pool: Any, tag: Any) -> None:
    """A handler's pool and tag: text (a pool or tag given as 3 or a list matched nothing, silently)."""
    for label, value in (("pool", pool), ("tag", tag)):
        if value is not None and not (isinstance(value, str) and value):
            raise ValueError(f"{what}({label}={value!r}): a {label} is named by a non-empty string (or None: any), "
                             f"as tasks name it.")


def on_partial(pool: str | None = None, tag: str | None = None) -> Callable:
    """React to partial results that running tasks of a pool and/or tag stream: ``fn(partial, ctx)``.

    They arrive in the order the task sent them, before its result; the handler may preempt
    or cancel the task (``ctx.cancel(partial.key)``). See `steerflow.partial`. ``@on_partial`` bare works too.
    """
    if callable(pool) and tag is None:
        return _mark(pool, Handler("partial", pool))
    _check_filter("on_partial", pool, tag)
    return lambda fn: _mark(fn, Handler("partial", fn, pool=pool, tag=tag))


def on_timer(seconds: float) -> Callable:
    """Call ``fn(ctx)`` every ``seconds`` while the campaign runs."""
    if callable(seconds):
        raise TypeError("on_timer needs its period in seconds: write @on_timer(5), with the number.")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds < float("inf"):
        raise ValueError(f"on_timer(seconds={seconds!r}): give a positive, finite number of seconds (a NaN or "
                         "infinite period never fires).")
    return lambda fn: _mark(fn, Handler("timer", fn, seconds=float(seconds)))


def on_event(name: str) -> Callable:
    """Call ``fn(payload, ctx)`` when an agent raises the named event with ``ctx.emit(name, payload)``."""
    if callable(name):
        raise TypeError("on_event needs the event's name: write @on_event('model-ready'), with the name.")
    if not isinstance(name, str) or not name:
        raise ValueError(f"on_event(name={name!r}): give the event's name as a non-empty string.")
    return lambda fn: _mark(fn, Handler("event", fn, name=name))


def on_start(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Call ``fn(ctx)`` when the campaign starts running."""
    return _mark(fn, Handler("start", fn))


def on_end(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Call ``fn(ctx)`` when the campaign ends."""
    return _mark(fn, Handler("end", fn))


class Agent:
    """Base class for agents written as classes: decorate methods with `on_result`, `on_timer`, …

    A failed result delivered to an agent counts as handled (`steerflow run` exits 0), unless the
    agent sets ``handles_failures = False`` (it only watches) and no handler sets ``result.handled``.
    """

    handles_failures = True


def handlers_of(obj: Any) -> list[Handler]:
    """The handlers an agent object or decorated function declares, bound to the object."""
    found: list[Handler] = []
    if callable(obj) and hasattr(obj, HANDLER_ATTR):
        return [_copy(h, obj) for h in getattr(obj, HANDLER_ATTR)]
    for name in dir(type(obj)):
        attr = getattr(type(obj), name, None)
        target = attr.__func__ if isinstance(attr, (classmethod, staticmethod)) else attr
        for handler in getattr(target, HANDLER_ATTR, ()):
            found.append(_copy(handler, getattr(obj, name)))
    return found


def _copy(handler: Handler, fn: Callable[..., Any]) -> Handler:
    return Handler(handler.kind, fn, handler.pool, handler.tag, handler.every, handler.seconds, handler.name)


@dataclass
class Result:
    """A finished task as agents see it: its value or error, what it was, and when it ran."""

    key: int
    name: str
    pool: str
    tags: tuple[str, ...]
    ok: bool
    value: Any = None
    error: BaseException | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    submitted: float = 0.0
    started: float = 0.0
    ended: float = 0.0
    cancelled: bool = False
    replayed: bool = False  # delivered again from the journal on resume
    handled: bool = False  # a handler sets it when it dealt with a failure (e.g. resubmitted the task)

    def get(self) -> Any:
        """The value, or raise the task's error."""
        if self.error is not None:
            raise self.error
        return self.value

    @property
    def duration(self) -> float:
        return max(0.0, self.ended - self.started)


@dataclass
class Partial:
    """An intermediate value a task sent while it ran (``index`` counts them per task, from 0)."""

    key: int
    name: str
    pool: str
    tags: tuple[str, ...]
    index: int
    value: Any
    attempt: int
    time: float
    replayed: bool = False  # delivered again from the journal on resume


class SteeringError(RuntimeError):
    """An agent asked for something the campaign cannot do (the message says what and why)."""


class Context:
    """What a handler may do. Every method is safe to call only from handlers (the steering thread)."""

    def __init__(self, campaign: Campaign) -> None:
        self._campaign = campaign
        #: free-form agent state; rebuilt on resume by replaying events to the handlers
        self.state = types.SimpleNamespace()

    # tasks
    def submit(self, task: Any, /, *args: Any, **kwargs: Any) -> TaskFuture:
        """Submit a task (same forms as `Campaign.submit`)."""
        return self._campaign.submit(task, *args, **kwargs)

    def cancel(self, task: Any) -> bool:
        """Cancel a task by future or key, killing it if it runs."""
        return self._campaign.cancel(task)

    kill = cancel

    def suspend(self, task: Any) -> None:
        """Stop a running task's processes where they are; it keeps its cores and GPUs."""
        self._campaign._runtime.suspend(self._campaign._runtime_id(task, "suspend"))

    def resume(self, task: Any) -> None:
        """Continue a suspended task."""
        self._campaign._runtime.resume(self._campaign._runtime_id(task, "resume"))

    def preempt(self, task: Any, grace: float = 10.0, **restart: Any) -> None:
        """Checkpoint and stop a task, release its resources, and run it again later.

        ``restart`` may give new ``args``/``kwargs`` (functions) or ``argv`` (programs) for the restart.
        """
        unknown = set(restart) - {"args", "kwargs", "argv"}
        if unknown:
            raise SteeringError(f"preempt() got {sorted(unknown)}; a restart takes only args, kwargs or argv.")
        if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not 0 <= grace <= 86400:
            raise SteeringError(f"preempt(grace={grace!r}): the grace is the seconds a task has to checkpoint before "
                                "it is killed, a number from 0 to 86400.")
        self._campaign._runtime.preempt(self._campaign._runtime_id(task, "preempt"), grace, **restart)

    # resources
    def set_quota(self, pool: str, cores: int | None = None, gpus: int | None = None) -> None:
        """Cap the cores/GPUs a pool may hold at once (None: no cap); moves capacity between pools."""
        self._campaign.set_quota(pool, cores, gpus)

    def free_slots(self, pool: str = "default", cores: int = 1, gpus: int = 0) -> int:
        """How many more tasks of this shape could start in the pool now, minus those already queued there."""
        return self._campaign.free_slots(pool, cores, gpus)

    # events and the campaign
    def emit(self, name: str, payload: Any = None) -> None:
        """Raise a named event; handlers registered with `on_event(name)` get it after this handler returns."""
        self._campaign._emit(name, payload)

    def stop(self, reason: str = "stopped by an agent") -> None:
        """End the campaign after this handler returns (running tasks are cancelled)."""
        if not isinstance(reason, str) or not reason.strip():  # (before: any object became the run's stop_reason)
            raise SteeringError(f"stop({reason!r:.60}): give the reason as a short text, e.g. ctx.stop('goal reached'); "
                                "it is the run's stop_reason.")
        self._campaign._request_stop(reason)

    @property
    def results_seen(self) -> int:
        return self._campaign._results_seen

    @property
    def elapsed(self) -> float:
        return self._campaign._elapsed()

    @property
    def replaying(self) -> bool:
        """True while the journal is being replayed on resume (side effects outside tasks may be skipped)."""
        return self._campaign._replaying

    @property
    def campaign(self) -> Campaign:
        return self._campaign
