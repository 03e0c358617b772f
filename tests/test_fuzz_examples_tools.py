"""Example 03's `seeds.py` given what is not a finished run: one sentence, no traceback (before: FileNotFoundError)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SEEDS = Path(__file__).resolve().parent.parent / "examples" / "03-molecular-design" / "seeds.py"


def test_seeds_given_no_runs_or_help_or_folders_without_a_summary_says_what_to_give(tmp_path):
    for argv in ([], ["--help"], [str(tmp_path / "nope")], [str(tmp_path)]):
        out = subprocess.run([sys.executable, str(SEEDS), *argv], capture_output=True, text=True, timeout=60)
        assert out.returncode != 0 and "Traceback" not in out.stderr, (argv, out.stderr)
        assert "summary.json" in out.stderr, (argv, out.stderr)
