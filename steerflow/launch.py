"""How a campaign was started, and how `steerflow resume DIR` starts it again in DIR.

Each campaign records its *launch* in the journal's meta table when it is created: the script
(or YAML pipeline) that created it, the script's arguments and working directory, the directory
the script asked for, and which campaign of that script run it was (``index``: the first
``Campaign(...)`` the script creates is 0, the next 1, ...; ``run``: an id shared by them).

Resume runs that script again (never any other recorded command) with two environment variables:
``STEERFLOW_RESUME=1`` and ``STEERFLOW_RESUME_DIRS``, the directories the script's campaigns live
in now, by index. `place` gives the n-th ``Campaign(...)`` of the resumed process that directory,
whatever path the script computes (a new time-stamp, a relative path, a moved or copied run). A
campaign the script creates that did not exist before the crash goes beside the others: the part
of its path that the resumed script changed (``runs/al-ip-T2``) is replaced by the directory the
known campaigns live in now (``runs/al-ip-T1``).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ENV_RESUME = "STEERFLOW_RESUME"
ENV_DIRS = "STEERFLOW_RESUME_DIRS"

_opened: list[Path] = []  # campaign directories this process created, in order
_source: dict[str, Any] | None = None  # set while a YAML pipeline builds its campaign
_rewrite: tuple[Path, Path] | None = None  # (prefix the resumed script uses, prefix where its campaigns live)
_run_id = uuid.uuid4().hex
_stopped: str | None = None
_unhandled: dict[Path, dict[int, str]] = {}  # set when `steerflow cancel --stop` stopped a campaign of this process


_cached_plan: dict[str, Any] | None = None


def _plan() -> dict[str, Any]:
    """The directory plan `steerflow resume` passed; read once and taken out of the environment, so that
    processes this one starts (task workers, other scripts) do not inherit it."""
    global _cached_plan
    if _cached_plan is None:
        text = os.environ.pop(ENV_DIRS, "")
        try:
            plan = json.loads(text) if text else {}
        except ValueError:
            plan = {}
        _cached_plan = plan if isinstance(plan, dict) else {}
    return _cached_plan


def place(requested: Path) -> tuple[Path, bool]:
    """The directory for the next campaign this process creates, and whether resume forces it."""
    global _rewrite
    index = len(_opened)
    plan = _plan()
    dirs = plan.get("dirs") or {}
    target = dirs.get(str(index))
    if target:
        actual = Path(target).resolve()
        if _rewrite is None:
            _rewrite = _common_prefixes(requested, actual)
        forced = True
    elif _rewrite is not None and _is_under(requested, _rewrite[0]):
        actual = _rewrite[1] / requested.relative_to(_rewrite[0])
        forced = False
    else:
        actual, forced = requested, False
    _opened.append(actual)
    return actual, forced


def record(requested: Path) -> dict[str, Any]:
    """This campaign's launch record (stored in the journal when the campaign is created)."""
    index = len(_opened) - 1
    run = _plan().get("run") or _run_id
    base = {"index": index, "run": run, "requested": str(requested), "cwd": os.getcwd()}
    argv0 = sys.argv[0] if sys.argv else ""
    main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)  # set for `python -m module`
    ours = Path(__file__).resolve().parent  # steerflow's own files (its CLI) are not the user's script
    if (argv0.endswith(".py") and os.path.isfile(argv0) and ours not in Path(argv0).resolve().parents
            and (main_spec is None or main_spec.name in ("steerflow.cli", "steerflow.__main__"))):
        # a Python script, even one that builds a YAML pipeline itself (its own agents come with it on resume)
        return {**base, "kind": "python", "script": os.path.abspath(argv0), "args": list(sys.argv[1:])}
    if _source is not None:  # `steerflow run SPEC.yaml`
        return {**base, **_source}
    return {**base, "kind": "other", "script": "", "args": [], "argv": list(sys.argv)}


@contextmanager
def pipeline_source(spec_file: Path) -> Iterator[None]:
    """While a YAML pipeline creates its campaign: record the spec file as what starts it."""
    global _source
    _source = {"kind": "yaml", "script": str(Path(spec_file).resolve()), "args": []}
    try:
        yield
    finally:
        _source = None


def opened() -> list[Path]:
    """Campaign directories this process created, in order (for messages: where to resume)."""
    return list(_opened)


def ended(directory: Path, unhandled: dict[int, str]) -> None:
    """A campaign of this process closed; ``unhandled``: its failed tasks that no agent received."""
    _unhandled[directory] = dict(unhandled)


def unhandled_failures() -> dict[Path, dict[int, str]]:
    """Per campaign this process closed, the failed tasks nothing handled (for `steerflow run`'s exit status)."""
    return {d: f for d, f in _unhandled.items() if f}


def stop_script(reason: str) -> None:
    """Remember that the command line stopped this script: later campaigns of this process refuse to start."""
    global _stopped
    _stopped = reason


def stopped() -> str | None:
    return _stopped


def _common_prefixes(requested: Path, actual: Path) -> tuple[Path, Path] | None:
    """Strip the path components both end with: what remains is the part the script changed."""
    a, b = list(requested.parts), list(actual.parts)
    while len(a) > 1 and len(b) > 1 and a[-1] == b[-1]:
        a.pop()
        b.pop()
    if len(a) == len(requested.parts):  # nothing in common (a single campaign): nothing to carry over
        return None
    return Path(*a), Path(*b)


def _is_under(path: Path, prefix: Path) -> bool:
    try:
        path.relative_to(prefix)
        return True
    except ValueError:
        return False
