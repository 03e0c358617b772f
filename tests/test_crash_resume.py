"""Crash test: a campaign in a subprocess is SIGKILLed at random moments and resumed each time.

After every kill: no result that was finished (committed to the journal) is lost, and no
finished task runs again (counted by the side-effect files its tasks write). The number of
kills is STEERFLOW_CRASH_KILLS (20 in CI; 100 locally for a longer soak).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steerflow.proctree import descendants, process_alive

SCRIPT = Path(__file__).parent / "campaigns" / "crash_campaign.py"
INITIAL, TOTAL = 10, 300


def finished(directory: Path) -> dict[int, bytes]:
    db = directory / "journal.db"
    if not db.exists():
        return {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return {k: v for k, v in conn.execute("SELECT key, value FROM results WHERE ok = 1")}
    except sqlite3.OperationalError:  # killed before the schema was committed
        return {}
    finally:
        conn.close()


def runs(sidefx: Path) -> dict[int, int]:
    return {int(p.name): len(p.read_text().splitlines()) for p in sidefx.iterdir()}



def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def start(directory: Path, sidefx: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen([sys.executable, str(SCRIPT), str(directory), str(sidefx), str(INITIAL), str(TOTAL)],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_and_reruns_nothing(tmp_path):
    kills = int(os.environ.get("STEERFLOW_CRASH_KILLS", "20"))
    rng = random.Random(int(os.environ.get("STEERFLOW_CRASH_SEED", "7")))
    directory, sidefx = tmp_path / "camp", tmp_path / "sidefx"
    sidefx.mkdir()
    before: dict[int, bytes] = {}
    counts_at_finish: dict[int, int] = {}
    for i in range(kills):
        proc = start(directory, sidefx)
        # each kill must test something: it comes after this driver committed a result of its own
        assert _wait(lambda: proc.poll() is not None or len(finished(directory)) > len(before), 120), \
            f"kill {i}: the driver committed no result in 120 s"
        started = set(descendants(proc.pid))
        try:
            proc.wait(timeout=rng.uniform(0.0, 0.4))
        except subprocess.TimeoutExpired:
            started |= set(descendants(proc.pid))  # its workers, and the pid of each one started since
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.returncode in (0, -signal.SIGKILL), proc.stderr.read().decode()
        proc.stderr.close()
        # the workers die with their driver (PR_SET_PDEATHSIG), each one of them, and soon
        assert _wait(lambda: not any(process_alive(p) for p in started), 10), \
            f"kill {i}: processes outlived their driver: {[p for p in started if process_alive(p)]}"
        now = finished(directory)
        counts = runs(sidefx)
        lost = {k for k in before if now.get(k) != before[k]}
        assert not lost, f"kill {i}: finished results lost or changed: {sorted(lost)}"
        rerun = {k for k, c in counts_at_finish.items() if counts.get(k) != c}
        assert not rerun, f"kill {i}: finished tasks ran again: {sorted(rerun)}"
        for k in now.keys() - before.keys():
            counts_at_finish[k] = counts[k]
        before = now
        print(f"kill {i}: rc={proc.returncode} finished={len(now)} runs={sum(counts.values())}")
    final = start(directory, sidefx)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()
    done = finished(directory)
    assert len(done) == TOTAL
    counts = runs(sidefx)
    assert all(counts.get(k) == c for k, c in counts_at_finish.items()), "a finished task ran again"
    state = json.loads((directory / "state.json").read_text())
    # the agent's sum was rebuilt by replay across every resume
    assert state == {"seen": TOTAL, "sum": sum(2 * x for x in range(TOTAL))}
    assert oct(directory.stat().st_mode & 0o777) == "0o700"
    assert oct((directory / "journal.db").stat().st_mode & 0o777) == "0o600"
