"""Campaign directories whose names hold what a URI gives a meaning: '#', '?', '%'.

Before: the journal's readers (the control requests, status, show, report, the resume) opened it as
``file:PATH?mode=ro``, unquoted, so in "run#2" SQLite read the file "run" (or none), and in "50%" failed: the
campaign's run() ended at its first poll with "no such table: control" or "unable to open database file".
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import steerflow as sf


def same(x):
    return x


@pytest.mark.parametrize("name", ["run#2", "what?now", "50%", "a%20b", "k=v&x;y"])
def test_a_campaign_in_a_directory_with_uri_characters_runs_reads_and_resumes(tmp_path, name):
    directory = tmp_path / name
    for resume in (False, True):
        camp = sf.Campaign(directory, progress=False, resume=resume, allocation=sf.Allocation.declare(nodes=1, cores=1))
        futures = [camp.submit(sf.Function(same, args=(i,))) for i in range(3)]
        assert camp.run()["states"] == {"done": 3}
        camp.close()
        assert [f.result() for f in futures] == [0, 1, 2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    for args in (["status", str(directory)], ["show", str(directory), "2"], ["report", str(directory), "--json"]):
        out = subprocess.run([sys.executable, "-m", "steerflow", *args], capture_output=True, text=True, timeout=120,
                             env=env)
        assert out.returncode == 0, (args, out.stderr)
