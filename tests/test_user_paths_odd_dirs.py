"""Campaign directories a user may give: spaces, quotes, shell characters, Unicode, a leading dash, very long paths.

A full path past SQLite's 512 bytes (with the journal's suffix) used to fail after the directory was made, saying
"unable to open database file ... Give a directory you can write to" of a directory that was writable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import steerflow as sf
from steerflow.errors import CampaignDirectoryError

STEERFLOW = [sys.executable, "-m", "steerflow.cli"]
SCRIPT = """
import sys
import steerflow as sf
from steerflow import partial

def work(x):
    partial.emit(x)
    return x * 2

camp = sf.Campaign(sys.argv[1], allocation=sf.Allocation.declare(nodes=1, cores=2), progress=False)
seen = []
camp.on_partial()(lambda p, ctx: seen.append(p.value))
futures = [camp.submit(sf.Function(work, args=(i,))) for i in range(3)]
program = camp.submit(sf.Executable(["/bin/echo", "hello from a program"]))
summary = camp.run()
print("ok", summary["states"], sorted(seen), [f.result() for f in futures], program.result().returncode)
"""


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


@pytest.mark.parametrize("name", ["with space/run", "ünï cödé ☃/run", "quo\"te's $HOME;ls `x`/run", "-dash/run",
                                  "tab\there/run", "x" * 250])
def test_a_campaign_runs_resumes_and_reports_in_an_odd_directory(tmp_path, name):
    script = tmp_path / "camp.py"
    script.write_text(SCRIPT)
    directory = tmp_path / name
    out = subprocess.run([*STEERFLOW, "run", str(script), str(directory)], capture_output=True, text=True,
                         timeout=120, env=_env(), cwd=tmp_path)
    assert out.returncode == 0 and "ok {'done': 4} [0, 1, 2] [0, 2, 4] 0" in out.stdout, out.stderr[-3000:]
    for command in (["status", str(directory)], ["show", str(directory), "4"], ["report", str(directory)],
                    ["resume", str(directory)]):
        done = subprocess.run([*STEERFLOW, *command], capture_output=True, text=True, timeout=120, env=_env(),
                              cwd=tmp_path)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (command, done.stdout, done.stderr)
    assert (directory / "report" / "report.html").exists()
    assert (directory / "tasks" / "4.1.out").read_text().strip() == "hello from a program"


def _long(tmp_path: Path, total: int) -> Path:
    """A directory whose full path is ``total`` bytes (components of at most 200)."""
    base = os.path.realpath(tmp_path)
    rest = total - len(base) - 1
    parts = []
    while rest > 0:
        k = min(200, rest)
        if rest - k == 1:
            k -= 1
        parts.append("d" * k)
        rest -= k + 1
    path = Path(base, *parts)
    assert len(os.fsencode(str(path))) == total
    return path


def test_a_directory_path_too_long_for_the_journal_is_refused_before_anything_is_made(tmp_path):
    too_long = _long(tmp_path, 494)
    with pytest.raises(CampaignDirectoryError, match="494 bytes long.*at most 493 bytes. Give a shorter path"):
        sf.Campaign(too_long, allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False)
    assert not too_long.exists()
    longest = _long(tmp_path, 493)
    camp = sf.Campaign(longest, allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False)
    future = camp.submit(abs, -3)
    camp.run()
    assert future.result() == 3 and (longest / "journal.db").exists()
