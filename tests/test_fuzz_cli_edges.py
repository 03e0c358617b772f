"""The CLI on campaigns at their edges: one that holds no task (built and closed), one whose tasks all failed.
Every read command answers in sentences (no '1 to 0' ranges, no tracebacks)."""

from __future__ import annotations

import subprocess
import sys

import steerflow as sf


def boom(x):
    raise RuntimeError(f"no {x}")


def cli(*args):
    return subprocess.run([sys.executable, "-m", "steerflow.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_a_campaign_without_tasks(tmp_path):
    sf.Campaign(tmp_path / "run", progress=False).close()
    show = cli("show", tmp_path / "run", 1)
    assert show.returncode == 2 and "it has no tasks (none was submitted)" in show.stderr, show.stderr
    for argv in (("status", tmp_path / "run"), ("report", tmp_path / "run"), ("report", tmp_path / "run", "--json")):
        proc = cli(*argv)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (argv, proc.stderr)


def test_a_campaign_whose_tasks_all_failed(tmp_path):
    camp = sf.Campaign(tmp_path / "run", progress=False, allocation=sf.Allocation.declare(nodes=1, cores=1))
    for x in range(3):
        camp.submit(sf.Function(boom, args=(x,)))
    camp.run()
    for argv in (("status", tmp_path / "run"), ("report", tmp_path / "run"), ("show", tmp_path / "run", 2)):
        proc = cli(*argv)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (argv, proc.stderr)
    assert "no 1" in cli("show", tmp_path / "run", 2).stdout


def clear_screen():
    raise ValueError("bad input\x1b[2J\x1b]0;pwned\x07")


def test_control_characters_from_a_task_do_not_reach_the_terminal(tmp_path):
    # before: a task's error (a program's output, a file name) printed ESC sequences raw: clear screen, retitle
    camp = sf.Campaign(tmp_path / "run", progress=False)
    camp.submit(sf.Function(clear_screen, name="evil\x1b[31mname\rx"))
    camp.run()
    for argv in (("status", tmp_path / "run"), ("show", tmp_path / "run", 1)):
        proc = cli(*argv)
        assert proc.returncode == 0, proc.stderr
        assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout, (argv, proc.stdout)
        assert "\\x1b[2J" in proc.stdout


def test_the_failures_listed_after_a_run_do_not_reach_the_terminal_raw(tmp_path):
    script = tmp_path / "camp.py"
    script.write_text("import sys, steerflow as sf\n"
                      "def boom():\n    raise ValueError('bad\\x1b[2J\\x1b]0;pwned\\x07')\n"
                      "camp = sf.Campaign(sys.argv[1], progress=False)\ncamp.submit(sf.Function(boom))\ncamp.run()\n")
    proc = cli("run", script, tmp_path / "run")
    assert proc.returncode == 1, proc.stderr
    assert "\x1b" not in proc.stderr and "\\x1b[2J" in proc.stderr


def test_the_live_display_escapes_a_failures_control_characters(tmp_path):
    import io

    from rich.console import Console

    from steerflow.observe.progress import ProgressDisplay

    camp = sf.Campaign(tmp_path / "run", progress=False)
    camp.submit(sf.Function(clear_screen))
    camp.run()
    out = io.StringIO()
    Console(file=out, width=200).print(ProgressDisplay(camp)._render(200))
    assert "\x1b[2J" not in out.getvalue() and "\\x1b[2J" in out.getvalue(), out.getvalue()
