"""A damaged journal (a disk error, a truncated copy): what resuming it says.

Before: `steerflow resume DIR` read the damaged journal as one without a launch record and said it "was made by an
older steerflow"; running the script again said the directory "cannot hold a campaign ... Give a directory you can
write to" of a directory one can write to. Now both say the journal is damaged and what to do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import steerflow as sf
from steerflow.errors import CampaignDirectoryError

SCRIPT = textwrap.dedent("""
    import sys
    import steerflow as sf

    def f(x):
        return x

    camp = sf.Campaign(sys.argv[1], resume=True, progress=False, allocation=sf.Allocation.declare(nodes=1, cores=1))
    for i in range(40):
        camp.submit(sf.Function(f, args=(i,), tags=["t" * 200]))
    print(camp.run()["stop_reason"])
""")


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


@pytest.fixture
def damaged(tmp_path):
    script, directory = tmp_path / "camp.py", tmp_path / "c"
    script.write_text(SCRIPT)
    first = subprocess.run([sys.executable, str(script), str(directory)], capture_output=True, text=True, timeout=120,
                           env=env())
    assert first.returncode == 0, first.stderr
    journal = directory / "journal.db"
    assert journal.stat().st_size > 12_288
    with open(journal, "r+b") as f:  # pages 3 and on: garbage (the header and the schema stay)
        f.seek(8192)
        f.write(os.urandom(4096))
        f.truncate(12_288)
    return script, directory


def test_resuming_a_damaged_journal_says_it_is_damaged(damaged):
    script, directory = damaged
    out = subprocess.run([sys.executable, "-m", "steerflow", "resume", str(directory)], capture_output=True, text=True,
                         timeout=120, env=env())
    assert out.returncode == 1, out.stderr
    assert "damaged" in out.stderr and "older steerflow" not in out.stderr, out.stderr
    again = subprocess.run([sys.executable, str(script), str(directory)], capture_output=True, text=True, timeout=120,
                           env=env())
    assert again.returncode != 0
    assert "is damaged" in again.stderr and "you can write to" not in again.stderr, again.stderr[-2000:]


def test_a_campaign_on_a_damaged_journal_raises_a_directory_error_naming_the_damage(damaged):
    _, directory = damaged
    with pytest.raises(CampaignDirectoryError, match="is damaged.*copy made before the damage"):
        sf.Campaign(directory, resume=True, progress=False)
