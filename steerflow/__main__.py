"""The ``steerflow`` command's entry point (also ``python -m steerflow``).

It imports nothing of its own before it can catch Ctrl-C: the command spends its first tens of
milliseconds (half a second on a loaded machine) importing the CLI, and a Ctrl-C there printed
Python's KeyboardInterrupt traceback. Now it says that nothing ran and exits 130, like a Ctrl-C later.
"""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        return interrupted_at_start()
    return cli_main()


def interrupted_at_start() -> int:
    """Ctrl-C before the command began its work: nothing was started, nothing is to be resumed."""
    words = [a for a in sys.argv[1:2] if a.isidentifier()]
    name = " ".join(["steerflow", *words])
    print(f"\n{name}: interrupted as it started; nothing ran.", file=sys.stderr)
    return 130  # 128 + SIGINT, as after a Ctrl-C later in the run


if __name__ == "__main__":
    sys.exit(main())
