"""When a campaign ends: combinable stop conditions (``stop.tasks(2000) | stop.wall("2h")``)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .agents import Context


class Condition:
    """A predicate over the running campaign; ``|`` is either, ``&`` is both."""

    def met(self, ctx: Context) -> bool:
        raise NotImplementedError

    def __or__(self, other: Condition) -> Condition:
        return _Either(self, other)

    def __and__(self, other: Condition) -> Condition:
        return _Both(self, other)


@dataclass(frozen=True)
class _Either(Condition):
    a: Condition
    b: Condition

    def met(self, ctx: Context) -> bool:
        return self.a.met(ctx) or self.b.met(ctx)


@dataclass(frozen=True)
class _Both(Condition):
    a: Condition
    b: Condition

    def met(self, ctx: Context) -> bool:
        return self.a.met(ctx) and self.b.met(ctx)


@dataclass(frozen=True)
class tasks(Condition):  # noqa: N801 - reads as stop.tasks(100)
    """Stop once this many task results have been delivered to the agents."""

    count: int

    def __post_init__(self) -> None:  # checked now: before, "3" failed mid-run, 0 or -1 stopped before anything ran
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError(f"stop.tasks({self.count!r}): give the number of results after which to stop, a whole "
                             "number of at least 1 (stop.tasks(100)); for no limit, leave the condition out.")

    def met(self, ctx: Context) -> bool:
        return ctx.results_seen >= self.count


@dataclass(frozen=True)
class wall(Condition):  # noqa: N801
    """Stop after this much wall time since `run` began: seconds, or text like ``"90s"``, ``"2h"``, ``"1h30m"``."""

    limit: float | str

    def __post_init__(self) -> None:
        if not parse_duration(self.limit) > 0:  # checked now: a bad limit must not surface mid-run, or never
            raise ValueError(f"stop.wall({self.limit!r}): the limit must be a positive duration.")

    def met(self, ctx: Context) -> bool:
        return ctx.elapsed >= parse_duration(self.limit)


@dataclass(frozen=True)
class when(Condition):  # noqa: N801
    """Stop when ``predicate(ctx)`` is true (checked after every steering event)."""

    predicate: Callable[[Any], bool]

    def __post_init__(self) -> None:
        if not callable(self.predicate):  # before: a TypeError from the steering loop, mid-run
            raise TypeError(f"stop.when({self.predicate!r}): give a function of the context that returns True to "
                            "stop, e.g. stop.when(lambda ctx: ctx.results_seen >= 100).")

    def met(self, ctx: Context) -> bool:
        return bool(self.predicate(ctx))


class idle(Condition):  # noqa: N801
    """Stop when no task is queued or running and no event is pending (always in force)."""

    def met(self, ctx: Context) -> bool:
        return False  # the campaign checks idleness itself; this marker only documents it


def limits(condition: Condition | None) -> dict[str, float]:
    """The task budget and wall limit a condition knows (the smallest of each), for progress displays."""
    found: dict[str, float] = {}
    stack = [condition]
    while stack:
        item = stack.pop()
        if isinstance(item, (_Either, _Both)):
            stack.extend((item.a, item.b))
        elif isinstance(item, tasks):
            found["tasks"] = min(found.get("tasks", float("inf")), item.count)
        elif isinstance(item, wall):
            try:
                found["wall_s"] = min(found.get("wall_s", float("inf")), parse_duration(item.limit))
            except ValueError:
                pass
    return found


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: float | str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
        if not math.isfinite(seconds):  # NaN never compares true: a wall limit of NaN would never fire
            raise ValueError(f"The duration {value!r} is not a finite number of seconds; give one like 90 or '2h'.")
        return seconds
    if not isinstance(value, str):
        raise ValueError(f"Cannot read the duration {value!r}; write it like '90s', '15m', '2h' or '1h30m'.")
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd])", value.strip().lower())
    if not parts or "".join(f"{n}{u}" for n, u in parts) != re.sub(r"\s+", "", value.strip().lower()):
        raise ValueError(f"Cannot read the duration {value!r}; write it like '90s', '15m', '2h' or '1h30m'.")
    return sum(float(n) * _UNITS[u] for n, u in parts)
