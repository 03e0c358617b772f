"""Pool quotas: how a campaign's ``pools={...}`` are read, and a warning when one asks for more than exists."""

from __future__ import annotations

import warnings
from typing import Any

from .agents import SteeringError
from .resources import Allocation


def parse_quota(name: str, value: Any) -> tuple[int | None, int | None]:
    """``{'cores': N, 'gpus': M}``, ``(N, M)`` or ``N`` as (cores, gpus); None (either or both) is no cap."""
    if value is None:
        return None, None
    if isinstance(value, dict):
        unknown = set(value) - {"cores", "gpus"}
        if unknown:
            raise SteeringError(f"Pool {name!r}: unknown quota field(s) {sorted(unknown)}; use cores and gpus.")
        quota = value.get("cores"), value.get("gpus")
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        quota = value[0], value[1]
    elif isinstance(value, int) and not isinstance(value, bool):
        quota = value, None
    else:
        raise SteeringError(f"Pool {name!r}: give its quota as {{'cores': N, 'gpus': M}}, got {value!r}.")
    for what, number in zip(("cores", "gpus"), quota):
        if number is not None and (not isinstance(number, int) or isinstance(number, bool) or number < 0):
            raise SteeringError(f"Pool {name!r}: {what} = {number!r}; a quota is an integer >= 0, or None for no cap.")
    return quota  # type: ignore[return-value]


def undeclared(pool: str, declared: set[str]) -> str:
    """The warning for a task whose pool the campaign did not declare (a typo leaves its agents deaf to it)."""
    known = ", ".join(repr(p) for p in sorted(declared - {pool}))
    return (f"Pool {pool!r} is not among the campaign's pools ({known}): its tasks run without a quota, and "
            f"agents of the declared pools do not see them. Declare it in Campaign(pools=...) or fix the name.")


def warn_if_larger(pool: str, cores: int | None, gpus: int | None, allocation: Allocation, stacklevel: int) -> None:
    """A quota above what the allocation has never binds: say so, since the user expected those resources."""
    for what, asked, has in (("cores", cores, allocation.total_cores), ("GPUs", gpus, allocation.total_gpus)):
        if asked is not None and asked > has:
            warnings.warn(f"Pool {pool!r} asks for {asked} {what}, but the allocation has {has} "
                          f"({allocation.describe()}); it will use at most {has}.", stacklevel=stacklevel)
