"""Pool quotas: how a campaign's ``pools={...}`` are read, and a warning when one asks for more than exists."""

from __future__ import annotations

import warnings
from typing import Any

from .agents import SteeringError
from .resources import Allocation


def parse_quota(name: str, value: Any) -> tuple[int | None, int | None]:
    """``{'cores': N, 'gpus': M}``, ``(N, M)`` or ``N`` as (cores, gpus); None is no cap."""
    if isinstance(value, dict):
        unknown = set(value) - {"cores", "gpus"}
        if unknown:
            raise SteeringError(f"Pool {name!r}: unknown quota field(s) {sorted(unknown)}; use cores and gpus.")
        return value.get("cores"), value.get("gpus")
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return value[0], value[1]
    if isinstance(value, int):
        return value, None
    raise SteeringError(f"Pool {name!r}: give its quota as {{'cores': N, 'gpus': M}}, got {value!r}.")


def warn_if_larger(pool: str, cores: int | None, gpus: int | None, allocation: Allocation, stacklevel: int) -> None:
    """A quota above what the allocation has never binds: say so, since the user expected those resources."""
    for what, asked, has in (("cores", cores, allocation.total_cores), ("GPUs", gpus, allocation.total_gpus)):
        if asked is not None and asked > has:
            warnings.warn(f"Pool {pool!r} asks for {asked} {what}, but the allocation has {has} "
                          f"({allocation.describe()}); it will use at most {has}.", stacklevel=stacklevel)
