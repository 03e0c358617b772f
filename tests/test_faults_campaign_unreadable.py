"""Reading a campaign whose journal records nothing yet (its driver killed in its first moments, or starting now),
or is damaged: `dashboard`, `report` and `show` say which, in a sentence.

Before: the dashboard answered 500 and printed a traceback on its terminal for each request; `report` and `show` of
an empty journal said "it is damaged, or not a steerflow journal".
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

pytest.importorskip("tornado", reason="the dashboard needs tornado (pip install 'steerflow[dashboard]')")


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.mark.parametrize("content", [b"", b"SQLite format 3\0" + os.urandom(4080)], ids=["empty", "damaged"])
def test_the_dashboard_of_an_unreadable_journal_answers_503_with_a_sentence(tmp_path, content):
    directory = tmp_path / "c"
    directory.mkdir()
    (directory / "journal.db").write_bytes(content)
    proc = subprocess.Popen([sys.executable, "-m", "steerflow", "dashboard", str(directory)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env())
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", line).group(0)
        base, query = url.split("?", 1)
        for page in (url, f"{base}api/metrics?{query}", f"{base}figure/gantt.png?{query}"):
            status, body = _get(page)
            assert status == 503, (page, status, body[:300])  # was: 500
            assert b"cannot be read now" in body and b"Reload this page" in body, body
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err


def test_report_and_show_of_an_empty_journal_say_it_records_nothing_yet(tmp_path):
    directory = tmp_path / "c"
    directory.mkdir()
    (directory / "journal.db").write_bytes(b"")
    for args in (["report", str(directory)], ["show", str(directory), "1"]):
        out = subprocess.run([sys.executable, "-m", "steerflow", *args], capture_output=True, text=True, timeout=60,
                             env=env())
        assert out.returncode == 1, out.stderr
        assert "records nothing yet" in out.stderr and "damaged" not in out.stderr, out.stderr


def test_the_report_of_a_campaign_without_tasks_prints_no_warning(tmp_path):
    import steerflow as sf

    camp = sf.Campaign(tmp_path / "c", progress=False, allocation=sf.Allocation.declare(nodes=1, cores=1))
    camp.run()
    out = subprocess.run([sys.executable, "-m", "steerflow", "report", str(tmp_path / "c")], capture_output=True,
                         text=True, timeout=120, env=env())
    assert out.returncode == 0 and out.stderr == "", out.stderr  # was: matplotlib's "No artists with labels" warning


def test_status_of_a_folder_shows_its_readable_campaigns_beside_a_damaged_one(tmp_path):
    import steerflow as sf

    for name in ("a", "d"):
        camp = sf.Campaign(tmp_path / name, progress=False, allocation=sf.Allocation.declare(nodes=1, cores=1))
        camp.submit(sf.Function(abs, args=(-1,)))
        camp.run()
        camp.close()
    with open(tmp_path / "d" / "journal.db", "r+b") as f:  # damaged past its header
        f.seek(100)
        f.write(os.urandom(8000))
    out = subprocess.run([sys.executable, "-m", "steerflow", "status", str(tmp_path)], capture_output=True, text=True,
                         timeout=60, env=env())
    text = " ".join(out.stdout.split())
    assert out.returncode == 0, out.stderr  # was 1: "the campaign journal in FOLDER cannot be read"
    assert "2 campaigns" in text and "journal cannot be read" in text and "default 1 0" in text, out.stdout


def test_status_of_an_ended_campaign_gives_its_wall_time_against_its_limit_not_the_time_since(tmp_path):
    import json
    import sqlite3

    import steerflow as sf

    camp = sf.Campaign(tmp_path / "c", progress=False, allocation=sf.Allocation.declare(nodes=1, cores=1))
    camp.submit(sf.Function(abs, args=(-1,)))
    camp.run(stop=sf.stop.wall("20m"))
    camp.close()
    with sqlite3.connect(tmp_path / "c" / "journal.db") as conn:  # it ran an hour ago
        conn.execute("UPDATE runs SET started = started - 3600, ended = ended - 3600")
        ended = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'ended'").fetchone()[0])
        ended["at"] -= 3600
        conn.execute("UPDATE meta SET value = ? WHERE key = 'ended'", (json.dumps(ended),))
    out = subprocess.run([sys.executable, "-m", "steerflow", "status", str(tmp_path / "c")], capture_output=True,
                         text=True, timeout=60, env=env())
    assert out.returncode == 0, out.stderr
    assert "progress: wall 0s of 20m" in out.stdout or "progress: wall 1s of 20m" in out.stdout, out.stdout  # was 1h


def test_ctrl_c_in_a_report_does_not_say_tasks_were_stopped(tmp_path, monkeypatch, capsys):
    import steerflow as sf
    from steerflow import cli
    from steerflow.observe import report

    camp = sf.Campaign(tmp_path / "c", progress=False, allocation=sf.Allocation.declare(nodes=1, cores=1))
    camp.run()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "command", interrupted)
    assert cli.main(["report", str(tmp_path / "c")]) == 130
    err = capsys.readouterr().err
    assert "interrupted; nothing of the campaign was changed" in err and "tasks were stopped" not in err, err
