"""A campaign: tasks whose next steps are decided by what came back, journaled so nothing is lost.

Three threads, each owning its own state:
- the runtime's loop thread places and runs tasks, and refills freed slots at once;
- the steering thread delivers events (results, timers, named events) to the agents, one at
  a time, in journal order;
- the journal's writer thread commits batches to SQLite.

Resume is replay: the script runs again, its submissions get the same keys (1, 2, 3 … in
submission order), a key whose result is in the journal resolves from it instead of running,
and the journaled steering events are delivered again in their original order, so agents
rebuild their state by doing what they did before. Agents must therefore be deterministic
functions of the events they see (seed your random generators). A task that finished but
whose result was not yet committed when the driver died runs again (at-least-once for that
window, which the journal's batch interval bounds to 20 ms).
"""

from __future__ import annotations

import atexit
import json
import os
import pickle
import queue
import sqlite3
import sys
import threading
import time
import types
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import agents, blobs, campaign_args, control, dirlock, engines, launch, sigterm
from . import pools as pools_mod
from . import journal as journal_mod
from . import journal_files
from .agent_watch import AgentWatch
from .agents import Context, Handler, SteeringError, handlers_of
from .campaign_exit import Closing, stop_at_exit
from .campaign_resume import ResumeSide
from .campaign_rounds import LoopSide
from .engines.base import Engine
from .errors import CampaignLocked, CampaignStopped, JournalError, RuntimeBroken, RuntimeClosed, describe_error
from .futures import TaskFuture
from .replay import JournalReplay, resolved_future
from .resources import Allocation
from .runtime import Runtime
from .steering import SteeringLoop
from .stop import Condition
from .task import MAX_LABEL, Function, TaskSpec

OPTIONS_ATTR = "_steerflow_options"
#: called with each Campaign once it is set up; `steerflow run --dashboard` starts a dashboard from here
ON_OPEN: list[Callable[[Campaign], None]] = []


class AgentError(RuntimeError):
    """An agent's handler raised; the campaign stopped cleanly and can be resumed once it is fixed."""


def task(**options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Attach default task options (pool, cores, gpus, timeout …) to a function; it stays callable locally."""
    Function(print, **options)  # validate the options now, with the usual messages

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        setattr(fn, OPTIONS_ATTR, dict(options))
        return fn

    return mark


def _bare_instance(cls: type) -> Any:
    """An instance of ``cls`` made without calling its ``__init__`` (to see the handlers its methods declare)."""
    try:
        return object.__new__(cls)
    except TypeError:
        return None


class Campaign(LoopSide, ResumeSide, Closing, SteeringLoop):
    """Tasks, agents, an allocation, an engine and a journal in one directory.

    ``resume``: True resumes if the directory holds a journal (and starts fresh otherwise);
    None (the default) does so only when the environment says so (``steerflow resume`` sets
    ``STEERFLOW_RESUME=1``). Without resume, a directory that holds a journal is an error:
    nothing is ever overwritten.
    """

    def __init__(self, directory: str | os.PathLike[str], allocation: Allocation | None = None,
                 engine: Engine | str | None = None, pools: dict[str, Any] | None = None,
                 resume: bool | None = None, progress: bool | None = None, lost_retries: int = 2,
                 on_agent_error: str = "stop") -> None:
        if launch.stopped():
            raise CampaignStopped(f"{launch.stopped()}; this script does not start another campaign. Continue it "
                                  "later with `steerflow resume DIR`.")
        if on_agent_error not in ("stop", "log"):
            raise ValueError("on_agent_error must be 'stop' or 'log'.")
        # everything that can be wrong with the arguments is found before the directory holds a journal,
        # so that fixing it and running the script again is all the user has to do
        engine = engines.resolve(engine)
        campaign_args.check(directory, allocation, engine, pools, lost_retries)
        quotas = {name: pools_mod.parse_quota(name, value) for name, value in (pools or {}).items()}
        self._declared_pools = {*quotas, "default"} if quotas else None  # a task's unknown pool is likely a typo
        requested = Path(directory).resolve()
        self.directory, forced = launch.place(requested)  # `steerflow resume` says where each campaign lives now
        try:
            dirlock.prepare(self.directory)
            self._lock_fd = dirlock.acquire(self.directory)
        except OSError as exc:
            raise campaign_args.unwritable(self.directory, exc) from exc
        journal_path = self.directory / "journal.db"
        # a journal that records nothing (its driver killed as it began) is no campaign: this one starts there
        exists = journal_path.exists() and not journal_files.holds_nothing(journal_path)
        if resume is None or forced:
            resume = forced or os.environ.get(launch.ENV_RESUME) == "1"
        if exists and not resume:
            dirlock.release(self._lock_fd)
            raise CampaignLocked(f"{self.directory} already holds a campaign journal. Continue it with "
                                 f"`steerflow resume {self.directory}` (or Campaign(..., resume=True)), or use a new "
                                 "directory.", directory=self.directory)
        self.on_agent_error = on_agent_error
        self.resumed = bool(resume and exists)
        try:
            self.allocation = allocation or engines.discover(engine) or Allocation.auto()
            for name, (cores, gpus) in quotas.items():
                pools_mod.warn_if_larger(name, cores, gpus, self.allocation, stacklevel=3)
            self._runtime = Runtime(self.allocation, engine=engine, run_dir=self.directory, quotas=quotas,
                                    lost_retries=lost_retries)
        except BaseException:
            dirlock.release(self._lock_fd)
            raise
        self.launch = launch.record(requested)  # the script or pipeline that created it (resume runs it)
        created = {} if self.resumed else {"launch": json.dumps(self.launch), "created": json.dumps(time.time())}
        try:
            self.journal = journal_mod.Journal(self.directory, meta=created)
        except BaseException as exc:
            self._runtime.shutdown(wait=False, cancel_futures=True)
            dirlock.release(self._lock_fd)
            if isinstance(exc, (OSError, sqlite3.Error)):
                raise campaign_args.unwritable(self.directory, exc) from exc
            raise
        self._blobs = blobs.Store(self.directory)  # large task arguments, stored once
        # On resume the journal is read as the script submits and as the replay goes, never loaded whole.
        self._resume = JournalReplay(self.journal.path, before_run=sys.maxsize) if self.resumed else None
        self._seq = self._resume.last_seq if self._resume is not None else 0
        self.journal.put("meta", "allocation", json.dumps(self.allocation.describe()))
        nodes = [(n.name, n.cores, n.gpus) for n in self.allocation.nodes]  # for reports: Gantt rows, quota idle
        self.journal.put("meta", "layout", json.dumps({"nodes": nodes, "quotas": quotas}))
        self._run_id = self.journal.start_run(self.allocation.total_cores, self.allocation.total_gpus)
        self._events: queue.SimpleQueue[tuple] = queue.SimpleQueue()
        self._handlers: list[Handler] = []
        # tasks whose result the agents have not seen yet; once they have, the journal is the record and the
        # campaign keeps only a count (and a future for as long as someone else holds it): memory stays flat
        self._futures: dict[int, TaskFuture] = {}
        self._specs: dict[int, TaskSpec] = {}
        # delivered futures resolved from the journal (resume) that someone holds; a delivered future of a task
        # that ran here needs no entry: the runtime keeps its record for as long as it lives (see `futures`)
        self._done_futures: weakref.WeakValueDictionary[int, TaskFuture] = weakref.WeakValueDictionary()
        self._final_counts: dict[str, int] = {}
        self._next_key = 1
        # per function: its task options and a Function validated with them (see _describe)
        self._templates: weakref.WeakKeyDictionary[Callable[..., Any], tuple[dict[str, Any], Function]] = \
            weakref.WeakKeyDictionary()
        self._active = 0  # submitted, result not yet delivered
        self._results_seen = 0
        self._changed = 0  # resumed tasks found changed in the script (the first few are warned of)
        self._waiting_by_pool: dict[str, int] = {}
        self._waiting_keys: set[int] = set()
        self._pending_emits: list[tuple[str, Any, bytes | None]] = []  # (name, payload, its pickle)
        # (steering thread) keys delivered to the agents and not journaled yet: one steering row per burst, queued
        # at the burst's end or before anything else the steering thread journals (see _journal_delivered)
        self._delivered: list[int] = []
        # (steering thread) timer ticks delivered and not journaled yet: [label, count, monotonic time of the first].
        # A run of ticks of one timer with nothing else between them is one steering row (``timers``, the count
        # in its key), written before anything else the steering thread journals and at least each second, so a
        # fast timer costs the journal a row a second, not a row a tick (a 1 ms timer was ~190 MB an hour).
        # Never pending together with ``_delivered``: each is journaled before the other is taken.
        self._ticks: list | None = None
        self._steering_ident = 0  # the thread that runs `run` (the steering thread)
        self._replaying = False
        self._stop_reason: str | None = None
        self._agent_error: BaseException | None = None
        self._started_at = 0.0
        self._lock = threading.Lock()  # guards key allocation (script thread vs steering thread)
        self.ctx = Context(self)
        self.progress = sys.stdout.isatty() if progress is None else progress
        self._runtime.add_listener(self._on_state)
        self._runtime.add_partial_listener(self._on_partial)
        # results and partials the loop thread saw this round, handed to the steering thread in one put per
        # round of the loop (not one put and one thread wake-up per task); only the loop thread touches it
        self._round: list[tuple] = []
        self._rows: list[tuple[str, tuple]] = []  # (loop thread) this round's journal rows, see _end_round
        self._prompt = False  # (loop thread) this round finished a long task: commit its result at once
        self._placement_texts: dict[tuple, str] = {}  # (loop thread) where a task runs -> its journal text
        self._counted: tuple[Allocation | None, int] = (None, 0)  # (steering thread) the allocation, its cores
        self._runtime.add_round_listener(self._end_round)
        atexit.register(stop_at_exit, weakref.ref(self))  # (after the runtime's own: runs before it)
        self._partials: dict[int, int] = {}  # key -> partial results seen (they are numbered per task)
        self._told_partials = False  # (steering thread) the say-once line about partials too large to journal
        self._partial_bytes: dict[int, int] = {}  # (steering thread) key -> bytes of its partials journaled so far
        # (steering thread) event name (None: all) -> payload bytes journaled so far (see steering.EVENT_BYTES)
        self._event_bytes: dict[str | None, int] = {None: 0}
        self._told_events = False  # (steering thread) the say-once line about events past that bound
        self._agent_errors = 0  # (steering thread) agent errors this driver met (see steering.AGENT_ERRORS_KEPT)
        self._unreadable = 0  # journaled results a resume could not read (run again, see `_say_unreadable`)
        self._not_submitted = 0  # journaled deliveries a resume met before the script submitted their tasks
        self._closed = False
        self._closing = False
        self._control = control.Reader(self.journal.path)  # requests from `steerflow cancel`
        self._interrupted: set[int] = set()  # cancelled because the driver stopped: a resume runs them
        self.failures: dict[int, str] = {}  # failed task -> first line of its error (the live display shows them)
        self.unhandled: dict[int, str] = {}  # failed tasks that no agent received (`steerflow run` exits 1)
        self._stop_condition: Condition | None = None
        for hook in ON_OPEN:
            hook(self)

    # ---- describing work -----------------------------------------------------------------
    def function(self, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Decorator: default task options for a function (``@camp.function(pool="simulate", cores=1)``)."""
        if fn is not None:
            return task(**options)(fn)
        return task(**options)

    def submit(self, task: TaskSpec | Callable[..., Any], /, *args: Any, **kwargs: Any) -> TaskFuture:
        """Submit a task: a `Function`/`Executable` description, or a callable with its arguments.

        Returns a future. On resume, a task whose result the journal holds is not run again:
        its future is already resolved.
        """
        if self._closed:  # (before: "This runtime has been shut down; create a new one", of a runtime never made)
            raise self._ended("submit")
        if isinstance(task, TaskSpec):
            if args or kwargs:
                raise TypeError("Give arguments inside the Function(...) description, not to submit().")
            spec = task
        else:
            spec = self._describe(task, args, kwargs)
        if self._declared_pools is not None and spec.pool not in self._declared_pools:  # type: ignore[attr-defined]
            self._declared_pools.add(spec.pool)  # type: ignore[attr-defined]
            warnings.warn(pools_mod.undeclared(spec.pool, self._declared_pools), stacklevel=2)  # type: ignore
        if (self._delivered or self._ticks is not None) and threading.get_ident() == self._steering_ident:
            self._journal_delivered()  # a handler's submission comes after the delivery that caused it
        with self._lock:
            key = self._next_key
            known, stored = self._resume.lookup(key) if self._resume is not None else (None, None)
            fingerprint = _fingerprint(spec)
            changed = known is not None and known != fingerprint
            if changed and stored is not None:
                self._say_changed(key, known, fingerprint)
                stored = None
            resolved = resolved_future(key, stored) if stored is not None else None
            if stored is not None and resolved is None:  # its result file is gone or damaged: it runs again
                self._say_unreadable(key, stored)
                stored, changed = None, True  # (journaled anew: its old result row and deliveries are dropped)
            self._specs[key] = spec
            self._active += 1  # before the runtime may finish it: the steering loop must never see it idle
            if resolved is not None:
                self._resume.stored[key] = stored  # type: ignore[union-attr]
                future = resolved
                self._futures[key] = future  # (before its event: a steering thread delivers it at once)
                if key in self._resume.undelivered:  # type: ignore[union-attr]
                    self._events.put(("result", key))  # finished before the crash but never delivered
            else:
                def accepted(future: TaskFuture) -> None:  # every check passed, it is not queued yet
                    if known is None:  # (journaled here: a rejected submit leaves no row)
                        self.journal.put("task", key, spec.label(), type(spec).__name__, spec.pool,  # type: ignore
                                         journal_mod.join_tags(spec.tags), spec.priority, fingerprint, time.time(),
                                         blobs.spec_blob(self._blobs, spec), spec.ranks * spec.cores_per_rank,
                                         spec.ranks * spec.gpus_per_rank)
                    elif changed:  # described anew, once: a later resume replays this run of it, without a word
                        self._journal_again(key, spec, fingerprint)
                    # before it can finish: a steering thread running while another thread submits finds its future
                    self._futures[key] = future
                try:
                    future = self._runtime.submit_spec(spec, task_id=key, on_accept=accepted)
                except BaseException:
                    self._futures.pop(key, None)  # rejected: no key used, nothing counted, nothing journaled
                    del self._specs[key]
                    self._active -= 1
                    raise
            self._next_key += 1
        return future

    def _describe(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Function:
        """``Function(fn, args, kwargs, **fn's task options)``, with the options validated once per function."""
        options = getattr(fn, OPTIONS_ATTR, {})
        if type(fn) is not types.FunctionType or "after" in options:  # methods, partials, callable objects,
            return Function(fn, args, kwargs, **options)  # and options holding futures: built in full
        cached = self._templates.get(fn)
        if cached is None or cached[0] != options:  # (options changed since: validate them again)
            cached = (dict(options), Function(print, (), None, **options))  # not fn: the key must stay weak
            self._templates[fn] = cached
        return cached[1].with_call(fn, args, kwargs)

    def cancel(self, task: TaskFuture | int) -> bool:
        key = self._key(task)
        future = self._futures.get(key)
        return future.cancel() if future is not None else False  # else its result was delivered: finished

    def set_quota(self, pool: str, cores: int | None = None, gpus: int | None = None) -> None:
        campaign_args.check_pool("set_quota", pool)
        for name, value in (("cores", cores), ("gpus", gpus)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise SteeringError(f"set_quota({pool!r}, {name}={value!r}): a quota is an integer >= 0 or None.")
        pools_mod.warn_if_larger(pool, cores, gpus, self.allocation, stacklevel=4)
        if self._declared_pools is not None:
            self._declared_pools.add(pool)
        self._runtime.set_quota(pool, cores, gpus)
        if not self._replaying:  # provenance only: on resume the replayed handlers set it again
            self.journal.put("steer", self._next_seq(), "quota", None, pool, pickle.dumps((cores, gpus)), time.time())

    def free_slots(self, pool: str = "default", cores: int = 1, gpus: int = 0) -> int:
        campaign_args.check_pool("free_slots", pool)
        if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in (cores, gpus)) or not (cores or gpus):
            # (before: a ValueError in the runtime's own thread, printed there, and 0 here)
            raise SteeringError(f"free_slots({pool!r}, cores={cores!r}, gpus={gpus!r}): give the task's shape as "
                                "integers >= 0, not both 0.")
        answer: list[int] = []
        done = threading.Event()

        def ask() -> None:  # the scheduler belongs to the runtime's thread: ask there
            answer.append(self._runtime.scheduler.free_slots(pool, cores, gpus))
            done.set()

        self._runtime.call_soon(ask)
        done.wait(10)
        return max(0, (answer[0] if answer else 0) - self._waiting_by_pool.get(pool, 0))

    # ---- agents ------------------------------------------------------------------------
    def add_agent(self, agent: Any) -> Any:
        """Register an agent object (methods decorated with on_result/on_timer/…) or a decorated function."""
        if isinstance(agent, type) and handlers_of(_bare_instance(agent)):  # (before: "declares no handlers")
            raise SteeringError(f"add_agent({agent.__name__}): give an agent object, not its class: "
                                f"add_agent({agent.__name__}(...)).")
        handlers = handlers_of(agent)
        if not handlers:
            raise SteeringError(f"{agent!r} declares no handlers; decorate its methods with steerflow.on_result, "
                                "on_timer, on_event, on_start or on_end.")
        self._handlers.extend(handlers)
        return agent

    def _register(self, mark: Callable[[Callable], Callable]) -> Callable[[Callable], Callable]:
        def wrap(fn: Callable) -> Callable:
            mark(fn)
            self._handlers.append(handlers_of(fn)[-1])
            return fn
        return wrap

    def on_result(self, pool: str | None = None, tag: str | None = None, every: int = 1) -> Callable:
        """Decorator: ``fn(result, ctx)`` for results of a pool and/or tag (see `steerflow.on_result`)."""
        if callable(pool) and tag is None and every == 1:  # `@camp.on_result` without parentheses
            return self._register(agents.on_result())(pool)
        return self._register(agents.on_result(pool=pool, tag=tag, every=every))

    def on_partial(self, pool: str | None = None, tag: str | None = None) -> Callable:
        """Decorator: ``fn(partial, ctx)`` for values running tasks stream (see `steerflow.on_partial`)."""
        if callable(pool) and tag is None:  # `@camp.on_partial` without parentheses
            return self._register(agents.on_partial())(pool)
        return self._register(agents.on_partial(pool=pool, tag=tag))

    def on_timer(self, seconds: float) -> Callable:
        """Decorator: ``fn(ctx)`` every ``seconds``."""
        return self._register(agents.on_timer(seconds))

    def on_event(self, name: str) -> Callable:
        """Decorator: ``fn(payload, ctx)`` when an agent emits ``name``."""
        return self._register(agents.on_event(name))

    def on_start(self, fn: Callable) -> Callable:
        """Decorator: ``fn(ctx)`` when the campaign starts."""
        return self._register(agents.on_start)(fn)

    def on_end(self, fn: Callable) -> Callable:
        """Decorator: ``fn(ctx)`` when the campaign ends."""
        return self._register(agents.on_end)(fn)

    # ---- running -----------------------------------------------------------------------
    def run(self, stop: Condition | None = None, drain: bool = False, stop_when_idle: bool = True) -> dict[str, Any]:
        """Deliver events to the agents until the stop condition, an agent's ``ctx.stop()``, or idleness.

        The campaign is idle when no task is queued or running and no event is pending; pass
        ``stop_when_idle=False`` for campaigns whose timer agents submit work later. At the end,
        running tasks are cancelled unless ``drain`` is true (a resume runs cancelled ones again).
        Returns a summary (tasks, states, results_seen, stop_reason, resumed, unhandled_failures; elapsed_s:
        this driver's run; drivers and campaign_elapsed_s: every driver's wall time summed, for a resumed
        campaign); raises `AgentError` if a handler failed.
        """
        if self._closed:
            raise self._ended("run")
        if self._started_at:  # (before: a handler's run() ran a second steering loop inside the first, and closed it)
            raise SteeringError("run() was called while the campaign runs (from an agent's handler?); a campaign "
                                "runs once, from its script. From a handler, submit tasks, or end the campaign "
                                "with ctx.stop().")
        if stop is not None and not isinstance(stop, Condition):  # (before: an AttributeError from the steering loop)
            hint = f" (sf.stop.wall({stop!r})?)" if isinstance(stop, str) else ""
            raise TypeError(f"run(stop={stop!r:.60}): give a stop condition, e.g. sf.stop.tasks(100) | sf.stop.wall("
                            f"'2h'){hint}, or None to run until the campaign is idle.")
        self._started_at = time.time()
        self._stop_condition = stop
        from .stop import limits
        self.journal.put("meta", "stop", json.dumps(limits(stop)))
        display = None
        if self.progress:
            from .observe.progress import ProgressDisplay
            display = ProgressDisplay(self)
            display.start()
        try:
            with sigterm.stops_cleanly(f"Continue with `steerflow resume {self.directory}`."), \
                    AgentWatch(threading.get_ident(), SteeringLoop._call.__code__):
                self._steer(stop, display, stop_when_idle)
        finally:
            if self._ticks is not None:  # the last run of timer ticks (see `_ticks`)
                self._journal_delivered()
            if display is not None:
                display.stop()
            self._close(drain)
        if self.journal.error is not None:
            raise JournalError(f"The campaign in {self.directory} stopped: its journal could not be written "
                               f"({describe_error(self.journal.error)}). What was committed before is "
                               f"intact; free space (or fix the cause), then `steerflow resume {self.directory}`."
                               ) from self.journal.error
        failure = self._runtime.failure
        # An agent whose submit met the broken runtime is a consequence, not the cause: report the runtime.
        if self._agent_error is not None and not (failure is not None and isinstance(self._agent_error, RuntimeBroken)):
            raise AgentError(self._stop_reason or str(self._agent_error)) from self._agent_error
        if failure is not None:
            reason = f"the runtime's loop failed ({type(failure).__name__}: {failure})"
            raise RuntimeBroken(f"The campaign stopped: {reason}. What finished is in the journal; "
                                "resume it once the cause is fixed.") from failure
        return self.summary()

    # ---- helpers -----------------------------------------------------------------------
    def _ended(self, what: str) -> RuntimeClosed:
        return RuntimeClosed(f"{what}(): the campaign in {self.directory} has ended (its run() returned, or close() "
                             "was called), and a campaign runs once. Submit all of its first tasks before run() (agents "
                             "submit the rest); to go on with it, open it again with Campaign(DIR, resume=True): its "
                             "finished tasks replay, and new ones run.")

    def _emit(self, name: str, payload: Any) -> None:
        if not isinstance(name, str) or not name:
            raise SteeringError(f"emit({name!r}): an event needs a non-empty string name.")
        if len(name) > MAX_LABEL:  # journaled with each event
            raise SteeringError(f"emit({name[:40]!r}...): an event's name is a label of at most {MAX_LABEL:,} "
                                f"characters, not {len(name):,}; pass data as its payload.")
        if journal_mod.storable(name) != name:
            raise SteeringError(f"emit({name!r}): an event's name must be valid Unicode text (it holds a lone "
                                "surrogate, as a file name decoded with errors='surrogateescape' does).")
        try:  # here, in the agent that emits: the journal keeps every payload (for replay), so it must pickle
            blob = None if payload is None else pickle.dumps(payload, 5)
        except Exception as exc:  # noqa: BLE001 - before: a TypeError from deep in the steering loop
            raise SteeringError(f"emit({name!r}, ...): the payload cannot be pickled ({type(exc).__name__}: {exc}); "
                                "the journal keeps each event's payload so that a resume replays it. Emit what "
                                "can be pickled (a model's file path or parameters, not the live object).") from exc
        if self._replaying:
            self._pending_emits.append((name, payload, blob))
        else:
            self._events.put(("event", name, payload, blob))

    def _request_stop(self, reason: str) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason

    def _elapsed(self) -> float:
        return time.time() - self._started_at if self._started_at else 0.0

    def _next_seq(self) -> int:
        if (self._delivered or self._ticks is not None) and threading.get_ident() == self._steering_ident:
            self._journal_delivered()
        self._seq += 1
        return self._seq

    def _journal_delivered(self) -> None:
        """(steering thread) Journal the deliveries made since the last call as one steering row.

        Called at the end of each burst of deliveries and before anything else the steering thread
        journals (a steering row, a handler's submission, an agent error, a control request's end), so
        the journal's order is the order things happened: a delivery before what its handlers did.
        One key: a ``result`` row, as before schema 2; more: a ``results`` row listing them (`pack_keys`).
        A run of timer ticks (`_ticks`): a ``timer`` row for one, a ``timers`` row with the count for more.
        """
        if self._ticks is not None:
            label, count, _ = self._ticks
            self._ticks = None
            self._seq += 1
            self.journal.put("steer", self._seq, "timer" if count == 1 else "timers", None if count == 1 else count,
                             label, None, time.time())
        if not self._delivered:
            return
        keys, self._delivered = self._delivered, []
        self._seq += 1
        if len(keys) == 1:
            self.journal.put("steer", self._seq, "result", keys[0], None, None, time.time())
        else:
            self.journal.put("steer", self._seq, "results", None, None, journal_mod.pack_keys(keys), time.time())

    def _key(self, task: TaskFuture | int) -> int:
        key = task.task_id if isinstance(task, TaskFuture) else task
        if not isinstance(key, int) or isinstance(key, bool) or not 1 <= key < self._next_key:
            raise SteeringError(f"{task!r} is not a task of this campaign; pass a future from submit() or its key.")
        return key

    def _runtime_id(self, task: TaskFuture | int, action: str) -> int:
        key = self._key(task)
        if self._runtime.record(key) is None:
            raise SteeringError(f"Cannot {action} task {key}: it has finished (or finished before this driver "
                                "started, and its result came from the journal).")
        return key

    def summary(self) -> dict[str, Any]:
        counts = dict(self._final_counts)
        for key, future in list(self._futures.items()):
            state = "interrupted" if key in self._interrupted else future.state.value  # as the journal says
            counts[state] = counts.get(state, 0) + 1
        elapsed = self._elapsed()
        earlier = (self._resume.earlier_drivers, self._resume.earlier_wall_s) if self._resume is not None else (0, 0.0)
        # elapsed_s: this driver's run(); campaign_elapsed_s: every driver's, summed (after resumes: the whole
        # campaign's wall time, the gaps between a killed driver and its resume not counted)
        return {"directory": str(self.directory), "tasks": self._next_key - 1, "states": counts,
                "results_seen": self._results_seen, "elapsed_s": elapsed, "stop_reason": self._stop_reason,
                "resumed": self.resumed, "unhandled_failures": len(self.unhandled),
                "drivers": earlier[0] + 1, "campaign_elapsed_s": earlier[1] + elapsed}

    def futures(self) -> dict[int, TaskFuture]:
        """Futures of the tasks not yet delivered to the agents, and of delivered ones someone still holds."""
        held: dict[int, TaskFuture] = {}
        for _ in range(1000):
            try:  # (the runtime keeps a finished task's record as long as its future lives)
                records = self._runtime.tasks()
                break
            except RuntimeError:  # the loop thread added a record while this thread read them: read again
                continue
        else:
            records = []
        for record in records:
            future = record.future if record.state.finished else None
            if future is not None:
                held[record.id] = future
        return dict(sorted({**held, **self._done_futures, **self._futures}.items()))

    @property
    def runtime(self) -> Runtime:
        return self._runtime


def _fingerprint(spec: TaskSpec) -> str:
    return f"{type(spec).__name__}:{spec.label()}:{spec.pool}"  # type: ignore[attr-defined]

