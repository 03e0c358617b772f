"""Engines carry out placements: ``local`` (this machine) and ``dask`` (many nodes, batch systems).

`resolve` turns what a user wrote (an engine object, ``"local"``, ``"dask"``, a Dask scheduler
address, or nothing: then ``STEERFLOW_ENGINE`` / ``STEERFLOW_DASK_*`` from the environment,
which ``steerflow run --engine`` sets) into an engine, so the same campaign file runs on both.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..resources import Allocation
    from .base import Engine


DASK_OPTIONS = ("scheduler", "cluster", "jobqueue", "min_nodes", "connect_timeout", "no_nodes_timeout")


def resolve(engine: Any = None) -> Engine:
    """An engine object from a name, an address, a YAML mapping ``{dask: {...}}`` or None.

    None is the environment's choice (``STEERFLOW_ENGINE``, which ``steerflow run --engine`` sets),
    else the local engine.
    """
    if engine is None:
        engine = os.environ.get("STEERFLOW_ENGINE") or "local"
    if isinstance(engine, dict) and list(engine) == ["dask"]:
        from .dask import DaskEngine

        options = dict(engine["dask"] or {})
        unknown = set(options) - set(DASK_OPTIONS)
        if unknown:
            raise ValueError(f"Unknown Dask engine option(s) {sorted(unknown)}; known: {', '.join(DASK_OPTIONS)}.")
        address = options.pop("scheduler", None)
        if address is None and "cluster" not in options and "jobqueue" not in options:
            return DaskEngine.from_env()
        return DaskEngine(address, **options)
    if not isinstance(engine, str):
        return engine
    name = engine.strip()
    if name == "local":
        from .local import LocalEngine

        return LocalEngine()
    if name == "dask" or name.startswith(("dask:", "tcp://", "tls://", "inproc://")):
        from .dask import DaskEngine

        address = name[5:] if name.startswith("dask:") else (None if name == "dask" else name)
        return DaskEngine.from_env(address=address or None)
    raise ValueError(f"Unknown engine {engine!r}: use 'local', 'dask', a Dask scheduler address "
                     "(tcp://host:port or tls://host:port) or an engine object.")


def discover(engine: Any) -> Allocation | None:
    """The allocation an engine offers when it decides it (Dask: what its workers declare), else None."""
    find = getattr(engine, "discover", None)
    return find() if callable(find) else None
