"""Moved to `steerflow.observe.report`; this name stays so older campaign scripts keep working."""

from .observe.report import build  # noqa: F401
