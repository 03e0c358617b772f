"""The model registry keeps its versions across a crash and resume: none lost, none duplicated, none changed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steerflow import learn

pytest.importorskip("sklearn")
SCRIPT = Path(__file__).parent / "campaigns" / "registry_campaign.py"


@pytest.mark.slow
def test_registry_versions_survive_crash_resume(tmp_path):
    directory = tmp_path / "camp"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cmd = [sys.executable, str(SCRIPT), str(directory)]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    reg = learn.ModelRegistry(directory)
    while time.monotonic() < deadline and len(reg.versions("m")) < 2:
        time.sleep(0.05)
    before = {v.version: v.sha256 for v in reg.versions("m")}
    assert len(before) >= 2, proc.stderr.read().decode() if proc.poll() is not None else "no versions in time"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    after = reg.versions("m")
    assert [v.version for v in after] == [1, 2, 3, 4, 5, 6]
    assert all(after[n - 1].sha256 == sha for n, sha in before.items())  # the versions from before the crash
    assert json.loads((directory / "made.json").read_text()) == [1, 2, 3, 4, 5, 6]  # replayed: same versions
    assert [v.metrics["seed"] for v in after] == [0, 1, 2, 3, 4, 5]
    model = learn.load(directory, "m", version=3)
    assert model.predict([[0.5, 0.5]])[0].shape == (1,)
