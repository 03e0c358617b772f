"""What the ``steerflow`` command's modules share: the error a user can fix, and the check that an output folder
can be written to.

Its own module (not `steerflow.cli`): ``python -m steerflow.cli`` runs that module as ``__main__``, and a
subcommand's module that imported ``CliError`` from ``steerflow.cli`` got a second class of that name, which the
command's handler did not catch as a usage error (exit 1 instead of 2).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import SteerflowError


class CliError(SteerflowError):
    """A command was given something it cannot work with; the message says what to give instead."""


def writable_folder(folder: Path, option: str) -> None:
    """Create ``folder`` now, before minutes of work whose output would have nowhere to go."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(13, "Permission denied", str(folder))
    except OSError as exc:
        from .errors import describe_error

        raise CliError(f"cannot write to {folder}: {describe_error(exc)}. Give a folder you can write to with "
                       f"{option}.") from None
