"""Campaign(...)'s arguments (and its agents' pool arguments), checked before anything is written: one sentence.

A wrong type given to Campaign used to surface deep inside (``'str' object has no attribute 'nodes'`` from
the scheduler, ``'int' object has no attribute 'start'`` from the runtime), or not at all: an empty
directory name ran the campaign in the current directory, and ``lost_retries="2"`` waited for the first
lost worker to break the loop.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from .agents import SteeringError
from .errors import CampaignDirectoryError
from .errors import describe_error
from .resources import Allocation
from .task import storable

ENGINE_METHODS = ("start", "launch", "kill", "wait", "wakeup", "shutdown")
SQLITE_MAX_PATH = 512  # bytes of a file name SQLite's unix VFS opens (its journal's "-journal" suffix included)


def check(directory: Any, allocation: Any, engine: Any, pools: Any, lost_retries: Any) -> None:
    """Raise TypeError/ValueError naming the argument, what it got and what it takes. ``engine``: resolved."""
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"Campaign's directory must be a path (str or pathlib.Path), not {type(directory).__name__}.")
    if not os.fspath(directory).strip():
        raise ValueError("Campaign's directory is empty; give the directory the campaign keeps its journal in "
                         "(an empty name would be the current directory).")
    if "\0" in os.fspath(directory):
        raise ValueError("Campaign's directory contains a NUL byte ('\\0'); no file name can hold one.")
    where = os.fsencode(os.path.realpath(os.fspath(directory)))
    if len(where) + len(b"/journal.db-journal") > SQLITE_MAX_PATH:
        raise CampaignDirectoryError(
            f"Campaign's directory {os.fspath(directory)[:60]}... is {len(where):,} bytes long as a full path; the "
            f"journal's database (SQLite) opens files of at most {SQLITE_MAX_PATH} bytes with their suffix, so the "
            f"directory may be at most {SQLITE_MAX_PATH - len(b'/journal.db-journal')} bytes. Give a shorter path.")
    if allocation is not None and not isinstance(allocation, Allocation):
        raise TypeError(f"Campaign's allocation must be an Allocation (Allocation.detect(), Allocation.declare("
                        f"nodes=..., cores=...)) or None, not {type(allocation).__name__}.")
    missing = [m for m in ENGINE_METHODS if not callable(getattr(engine, m, None))]
    if missing:
        raise TypeError(f"Campaign's engine must be 'local', 'dask', a Dask scheduler address or an engine object, "
                        f"not {type(engine).__name__} (it has no {', '.join(missing)}).")
    if pools is not None:
        if not isinstance(pools, dict):
            raise TypeError(f"Campaign's pools must be a dict of pool name to quota ({{'simulate': 3, 'train': "
                            f"{{'cores': 1, 'gpus': 1}}}}), not {type(pools).__name__}.")
        for name in pools:
            if not isinstance(name, str) or not name.strip() or storable(name) != name:
                raise ValueError(f"Campaign's pools: {name!r} is not a pool name; pool names are non-empty strings, "
                                 "as tasks give them (pool='simulate').")
    if isinstance(lost_retries, bool) or not isinstance(lost_retries, int) or lost_retries < 0:
        raise ValueError(f"Campaign's lost_retries must be an integer >= 0 (how often a task whose worker died runs "
                         f"again), not {lost_retries!r}.")


def unwritable(directory: Path, exc: OSError | sqlite3.Error) -> CampaignDirectoryError:
    """The error for a campaign directory that cannot be created or written: what failed, and what to do."""
    where = getattr(exc, "filename", None) or directory / "journal.db"
    if isinstance(exc, sqlite3.DatabaseError) and (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in (11, 26):
        return CampaignDirectoryError(  # SQLITE_CORRUPT, SQLITE_NOTADB: before, "give a directory you can write to"
            f"The journal {where} is damaged ({describe_error(exc)}), so the campaign in {directory} cannot be "
            "resumed. Restore the directory from a copy made before the damage, or start the campaign afresh in "
            "another directory.")
    return CampaignDirectoryError(
        f"{directory} cannot hold a campaign: {describe_error(exc)} on {where}. "
        "Give a directory you can write to (a campaign's journal is written while it runs, also when it "
        "resumes); a read-only copy can still be read with `steerflow status` and `steerflow report DIR --out "
        "FOLDER`.")


def check_pool(what: str, pool: Any) -> None:
    """An agent's pool argument (set_quota, free_slots): a name a task can give, and the journal can store."""
    if not isinstance(pool, str) or not pool or storable(pool) != pool:
        raise SteeringError(f"{what}({pool!r}, ...): a pool is named by a non-empty string of valid text, as tasks "
                            "name it (pool='simulate').")
