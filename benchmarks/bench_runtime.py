"""Benchmark: the same as `steerflow bench runtime --json FILE` (prints a table, writes JSON)."""

import sys

from steerflow.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "runtime", *sys.argv[1:]]))
