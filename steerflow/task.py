"""Task descriptions (what to run and what it needs) and the task state machine.

Descriptions are validated when built and again at submit against the allocation, so a bad
one fails with a `TaskSpecError` naming the field, the value and the limit, and nothing is
queued. Construction is the hot path of submission, so it is plain ``__slots__`` classes
with explicit checks rather than a validation framework.
"""

from __future__ import annotations

import difflib
import enum
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .errors import TaskSpecError


class TaskState(str, enum.Enum):
    """new → waiting → placed → running → done | failed | cancelled; running ⇄ paused."""

    NEW = "new"
    WAITING = "waiting"
    PLACED = "placed"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset({TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED})

_COMMON = ("memory_mb", "priority", "timeout", "retries", "pool", "tags", "after", "name")
FUNCTION_FIELDS = ("fn", "args", "kwargs", "cores", "gpus", *_COMMON)
EXECUTABLE_FIELDS = ("argv", "env", "cwd", "pre", "post", "ranks", "cores_per_rank", "gpus_per_rank",
                     "nodes", "launcher", *_COMMON)
LAUNCHERS = ("none", "mpirun", "srun")


def reject_unknown(kind: str, unknown: Mapping[str, Any], known: Sequence[str]) -> None:
    """Raise a `TaskSpecError` naming the first unknown field, with a close known one if any."""
    if not unknown:
        return
    name = next(iter(unknown))
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise TaskSpecError(name, unknown[name],
                        f"{kind} has no field '{name}'.{hint} Known fields: {', '.join(known)}.")


MAX_COUNT = 2**31 - 1  # cores, ranks, retries, memory …: larger is a typo, and would not fit the journal
MAX_PRIORITY = 2**53
MAX_TIMEOUT = 366 * 86400.0  # a year: anything longer is "no timeout" (None)


def _int_at_least(field: str, value: Any, low: int, high: int = MAX_COUNT) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TaskSpecError(field, value, f"must be an integer >= {low}.", limit=low)
    if value < low:
        raise TaskSpecError(field, value, f"must be at least {low}.", limit=low)
    if value > high:
        raise TaskSpecError(field, value, f"must be at most {high}.", limit=high)
    return value


def _text(field: str, value: Any, what: str, empty: bool = False) -> str:
    """A string without NUL bytes (no argv, environment entry or file name can hold one)."""
    if not isinstance(value, str):
        raise TaskSpecError(field, value, f"must be {what}, not {type(value).__name__}.")
    if not empty and not value:
        raise TaskSpecError(field, value, f"must be {what}, not empty.")
    if "\0" in value:
        raise TaskSpecError(field, value, "contains a NUL byte ('\\0'); remove it (no program argument, "
                            "environment entry or shell command can hold one).")
    return value


MAX_LABEL = 1000  # characters of a task's name, pool or tag
MAX_TAGS = 10_000  # characters of a task's tags, all together (with a separator each)


def _label(field: str, value: Any, what: str) -> str:
    """A name, pool or tag: text (`_text`) that is also valid Unicode, since the journal stores it as text.

    A lone surrogate ('\\udcff': a file name with bytes that are not UTF-8, decoded with surrogateescape) is
    fine in a program's argv, but as a task's name it stopped the campaign at its journal's next commit.
    """
    text = _text(field, value, what)
    if len(text) > MAX_LABEL:  # journaled with each task (three times, for a name): 1 MB names made 150 MB
        raise TaskSpecError(field, text[:40] + "...", f"is {len(text):,} characters long; a name, pool or tag is "
                            f"a label of at most {MAX_LABEL:,} characters. Pass data in the task's arguments.")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise TaskSpecError(field, value, f"holds {text[exc.start]!r} at position {exc.start}, which is not "
                                "valid Unicode text (a file name decoded with errors='surrogateescape'?); give "
                                "valid text, e.g. os.fsencode(name).decode('utf-8', 'replace').") from None
    return text


def storable(text: str) -> str:
    """``text`` as valid Unicode for the journal: a lone surrogate written as its escape (``\\udcff``)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _sequence(field: str, value: Any, what: str) -> list[Any]:
    """A list or tuple taken as it is: a string, a number or a mapping is an error, never reinterpreted."""
    if isinstance(value, (list, tuple)):
        return list(value)
    raise TaskSpecError(field, value, f"must be a list or tuple of {what}, not {type(value).__name__}.")


def _timeout(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TaskSpecError("timeout", value, "must be a positive number of seconds, or None.", limit=0)
    if not value > 0:
        raise TaskSpecError("timeout", value, "must be a positive number of seconds, or None.", limit=0)
    if value > MAX_TIMEOUT or value != value:  # inf, 1e300, 2**70 (and NaN, which fails '> 0' already)
        raise TaskSpecError("timeout", value, f"is longer than a year ({MAX_TIMEOUT:.0f} s); give a finite "
                            "timeout, or None for no timeout.", limit=MAX_TIMEOUT)
    return value


def recheck_policy(spec: TaskSpec) -> None:
    """Check a description's timeout, retries and priority again (the runtime, at submit, when one looks wrong).

    A description's fields are plain attributes, checked when it is made: one changed afterwards (``spec.timeout
    = "3"``) stopped the runtime's loop, and every task with it."""
    spec.timeout = _timeout(spec.timeout)
    _int_at_least("retries", spec.retries, 0)
    priority = spec.priority
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > MAX_PRIORITY:
        raise TaskSpecError("priority", priority, f"must be an integer between -{MAX_PRIORITY} and {MAX_PRIORITY} "
                            "(higher runs first).")


def recheck_resources(spec: TaskSpec) -> None:
    """Check what a description asks for again (the runtime, at submit, for each new shape): see `recheck_policy`."""
    if isinstance(spec, Function):
        _int_at_least("cores", spec.cores, 1)
        _int_at_least("gpus", spec.gpus, 0)
    elif isinstance(spec, Executable):
        _int_at_least("ranks", spec.ranks, 1)
        _int_at_least("cores_per_rank", spec.cores_per_rank, 1)
        _int_at_least("gpus_per_rank", spec.gpus_per_rank, 0)
        if spec.nodes is not None:
            _int_at_least("nodes", spec.nodes, 1, high=spec.ranks)
    _int_at_least("memory_mb", spec.memory_mb, 0, high=2**40)
    _label("pool", spec.pool, "a non-empty string naming a resource pool")


def recheck_program(spec: Executable) -> None:
    """Check a program's command line and environment again (the runtime, at submit): see `recheck_policy`.
    (A program's start costs milliseconds: this costs microseconds.)"""
    argv = _sequence("argv", spec.argv, "strings (the program and its arguments)")
    if not argv or any(not isinstance(a, str) or "\0" in a for a in argv):
        raise TaskSpecError("argv", argv, "must be a non-empty list of strings without NUL bytes (the program and "
                            "its arguments).")
    if not isinstance(spec.env, Mapping) or any(not isinstance(k, str) or not isinstance(v, str) or "=" in k
                                                for k, v in spec.env.items()):
        raise TaskSpecError("env", spec.env, "must map variable names (without '=') to strings.")
    if spec.cwd is not None and not isinstance(spec.cwd, str):
        raise TaskSpecError("cwd", spec.cwd, f"must be a directory path (a string), not {type(spec.cwd).__name__}.")


class TaskSpec:
    """What every task takes besides what it runs: resources beyond cores, and policy."""

    __slots__ = ("memory_mb", "priority", "timeout", "retries", "pool", "tags", "after", "name")

    def _common(self, memory_mb: int, priority: int, timeout: float | None, retries: int, pool: str,
                tags: Iterable[str], after: Iterable[Any], name: str | None) -> None:
        self.memory_mb = _int_at_least("memory_mb", memory_mb, 0, high=2**40)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TaskSpecError("priority", priority, "must be an integer (higher runs first).")
        if abs(priority) > MAX_PRIORITY:
            raise TaskSpecError("priority", priority, f"must be between -{MAX_PRIORITY} and {MAX_PRIORITY}.",
                                limit=MAX_PRIORITY)
        self.priority = priority
        self.timeout = _timeout(timeout)
        self.retries = _int_at_least("retries", retries, 0)
        self.pool = _label("pool", pool, "a non-empty string naming a resource pool")
        if isinstance(tags, (set, frozenset)):
            tags = sorted(tags, key=str)
        self.tags = tuple(_label("tags", t, "a string") for t in _sequence("tags", tags, "strings"))
        if self.tags and sum(map(len, self.tags)) + len(self.tags) > MAX_TAGS:  # journaled with each task, joined
            raise TaskSpecError("tags", f"{len(self.tags):,} tags", f"hold {sum(map(len, self.tags)):,} characters; a "
                                f"task's tags are labels of at most {MAX_TAGS:,} characters in all (1,000 tags of "
                                "1 KB made 1 MB a task in the journal). Pass data in the task's arguments.")
        if isinstance(after, (set, frozenset)):
            after = list(after)
        self.after = tuple(_sequence("after", after, "futures returned by submit()"))
        self.name = None if name is None else _label("name", name, "a non-empty string, or None")

    # resources in the scheduler's terms (overridden by Executable)
    ranks = 1
    nodes: int | None = None

    @property
    def cores_per_rank(self) -> int:
        raise NotImplementedError

    @property
    def gpus_per_rank(self) -> int:
        raise NotImplementedError


class Function(TaskSpec):
    """A Python call run in a warm worker process: ``fn(*args, **kwargs)``.

    ``fn`` may be any picklable callable, closures and lambdas included (cloudpickle).
    Futures among ``args``/``kwargs`` (or in ``after``) hold the task until they are done,
    and their values are passed in.
    """

    __slots__ = ("fn", "args", "kwargs", "cores", "gpus")

    def __init__(self, fn: Callable[..., Any], args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None,
                 *, cores: int = 1, gpus: int = 0, memory_mb: int = 0, priority: int = 0,
                 timeout: float | None = None, retries: int = 0, pool: str = "default",
                 tags: Iterable[str] = (), after: Iterable[Any] = (), name: str | None = None,
                 **unknown: Any) -> None:
        reject_unknown("A Function task", unknown, FUNCTION_FIELDS)
        if not callable(fn):
            raise TaskSpecError("fn", fn, "is not callable; pass a function, lambda or callable object.")
        self.fn = fn
        self.args = tuple(_sequence("args", args, "positional arguments"))
        if kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, Mapping):
            raise TaskSpecError("kwargs", kwargs, f"must be a mapping of keyword arguments (a dict), not "
                                f"{type(kwargs).__name__}.")
        self.kwargs = dict(kwargs)
        for key in self.kwargs:
            _text("kwargs", key, "a keyword name (a string)")
        self.cores = _int_at_least("cores", cores, 1)
        self.gpus = _int_at_least("gpus", gpus, 0)
        self._common(memory_mb, priority, timeout, retries, pool, tags, after, name)

    def with_call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Function:
        """``fn(*args, **kwargs)`` with this description's options, which are not checked again: submitting one
        function many times validates its options once (a campaign keeps one template per function)."""
        if not callable(fn):
            raise TaskSpecError("fn", fn, "is not callable; pass a function, lambda or callable object.")
        args = tuple(_sequence("args", args, "positional arguments"))
        if not isinstance(kwargs, Mapping):
            raise TaskSpecError("kwargs", kwargs, f"must be a mapping of keyword arguments (a dict), not "
                                f"{type(kwargs).__name__}.")
        kwargs = dict(kwargs)
        for key in kwargs:
            _text("kwargs", key, "a keyword name (a string)")
        return self._with(fn, args, kwargs)

    @staticmethod
    def call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Function:
        """``fn(*args, **kwargs)`` with every option at its default: what ``submit(fn, *args, **kwargs)`` runs.

        ``args`` and ``kwargs`` are kept as given: the tuple and the fresh dict a call's ``*``/``**`` made.
        """
        if not callable(fn):
            raise TaskSpecError("fn", fn, "is not callable; pass a function, lambda or callable object.")
        for key in kwargs:
            _text("kwargs", key, "a keyword name (a string)")
        return _PLAIN._with(fn, args, kwargs)

    def _with(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Function:
        spec = Function.__new__(Function)
        spec.fn, spec.args, spec.kwargs = fn, args, kwargs
        spec.cores, spec.gpus = self.cores, self.gpus
        spec.memory_mb, spec.priority, spec.timeout, spec.retries = (self.memory_mb, self.priority, self.timeout,
                                                                     self.retries)
        spec.pool, spec.tags, spec.after, spec.name = self.pool, self.tags, self.after, self.name
        return spec

    @property
    def cores_per_rank(self) -> int:
        return self.cores

    @property
    def gpus_per_rank(self) -> int:
        return self.gpus

    def label(self) -> str:
        return self.name or getattr(self.fn, "__qualname__", None) or type(self.fn).__name__

    def __repr__(self) -> str:
        return f"Function({self.label()}, cores={self.cores}, gpus={self.gpus}, pool={self.pool!r})"


_PLAIN = Function(print)  # every option at its default (`Function.call`)

class Executable(TaskSpec):
    """A program run as a subprocess, or through ``mpirun``/``srun`` when it has ranks.

    stdout and stderr go to files in the run directory. ``pre`` and ``post`` are shell
    commands run before and after it on the same resources; a failing one fails the task.
    """

    __slots__ = ("argv", "env", "cwd", "pre", "post", "_ranks", "_cores_per_rank", "_gpus_per_rank",
                 "_nodes", "launcher")

    def __init__(self, argv: Sequence[str] | str, *, env: Mapping[str, str] | None = None,
                 cwd: str | os.PathLike[str] | None = None, pre: Sequence[str] = (), post: Sequence[str] = (),
                 ranks: int = 1, cores_per_rank: int = 1, gpus_per_rank: int = 0, nodes: int | None = None,
                 launcher: str | None = None, memory_mb: int = 0, priority: int = 0,
                 timeout: float | None = None, retries: int = 0, pool: str = "default",
                 tags: Iterable[str] = (), after: Iterable[Any] = (), name: str | None = None,
                 **unknown: Any) -> None:
        reject_unknown("An Executable task", unknown, EXECUTABLE_FIELDS)
        if isinstance(argv, (str, os.PathLike)):
            argv = [argv]
        argv = [os.fspath(a) if isinstance(a, os.PathLike) else a
                for a in _sequence("argv", argv, "strings (the program and its arguments)")]
        if not argv or any(not isinstance(a, str) for a in argv):
            raise TaskSpecError("argv", argv, "must be a non-empty list of strings (the program and its arguments).")
        for a in argv:
            _text("argv", a, "a string", empty=True)
        if cwd is not None and not isinstance(cwd, (str, os.PathLike)):
            raise TaskSpecError("cwd", cwd, f"must be a directory path (a string), not {type(cwd).__name__}.")
        self.cwd = None if cwd is None else _text("cwd", os.fspath(cwd), "a directory path (a string)")
        if self.cwd is not None and not os.path.isdir(self.cwd):
            raise TaskSpecError("cwd", self.cwd, "is not an existing directory.")
        program = argv[0]
        if os.sep in program:
            path = program if os.path.isabs(program) or self.cwd is None else os.path.join(self.cwd, program)
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                raise TaskSpecError("argv", program, "is not an executable file; check the path and its x bit.")
        elif shutil.which(program) is None:
            raise TaskSpecError("argv", program, "was not found on PATH; install it or give its full path.")
        self.argv = list(argv)
        if env is None:
            env = {}
        if not isinstance(env, Mapping):
            raise TaskSpecError("env", env, f"must map variable names to strings (a dict), not {type(env).__name__}.")
        for k, v in env.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TaskSpecError("env", env, "must map strings to strings.")
            _text("env", k, "a variable name")
            if "=" in k:
                raise TaskSpecError("env", k, "is not a valid environment variable name: it contains '='.")
            _text("env", v, "a string", empty=True)
        self.env = dict(env)
        for field, cmds in (("pre", pre), ("post", post)):
            for c in _sequence(field, cmds, "shell command strings"):
                _text(field, c, "a shell command string", empty=True)
        self.pre, self.post = list(pre), list(post)
        self._ranks = _int_at_least("ranks", ranks, 1)
        self._cores_per_rank = _int_at_least("cores_per_rank", cores_per_rank, 1)
        self._gpus_per_rank = _int_at_least("gpus_per_rank", gpus_per_rank, 0)
        self._nodes = None if nodes is None else _int_at_least("nodes", nodes, 1)
        if self._nodes is not None and self._nodes > self._ranks:
            raise TaskSpecError("nodes", nodes, f"is more than ranks={ranks}; every node needs a rank.",
                                limit=self._ranks)
        if launcher is None:
            launcher = "mpirun" if (self._ranks > 1 or self._nodes) else "none"
        if launcher not in LAUNCHERS:
            raise TaskSpecError("launcher", launcher, f"must be one of {', '.join(LAUNCHERS)}.")
        if launcher == "none" and self._ranks > 1:
            raise TaskSpecError("launcher", launcher, f"cannot start ranks={ranks}; use 'mpirun' or 'srun'.")
        if launcher != "none" and shutil.which(launcher) is None:
            raise TaskSpecError("launcher", launcher, "was not found on PATH; install OpenMPI/SLURM or use "
                                "launcher='none'.")
        self.launcher = launcher
        self._common(memory_mb, priority, timeout, retries, pool, tags, after, name)

    @property
    def ranks(self) -> int:  # type: ignore[override]
        return self._ranks

    @property
    def nodes(self) -> int | None:  # type: ignore[override]
        return self._nodes

    @property
    def cores_per_rank(self) -> int:
        return self._cores_per_rank

    @property
    def gpus_per_rank(self) -> int:
        return self._gpus_per_rank

    def label(self) -> str:
        return self.name or storable(os.path.basename(self.argv[0]))  # (argv may hold any file name)

    def __repr__(self) -> str:
        return (f"Executable({self.argv!r}, ranks={self._ranks}, cores_per_rank={self._cores_per_rank}, "
                f"gpus_per_rank={self._gpus_per_rank}, pool={self.pool!r})")
