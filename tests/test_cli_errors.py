"""The command line a new user meets: one clear message for a mistake, a clean Ctrl-C, visible failures."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from steerflow import __version__, rundirs
from steerflow.cli import main

from .conftest import wait_until

pytestmark = pytest.mark.usefixtures("no_leftover_processes")  # nothing it starts outlives a test

ROOT = Path(__file__).resolve().parents[1]
SLOW = Path(__file__).parent / "campaigns" / "slow_campaign.py"
STEERFLOW = [sys.executable, "-m", "steerflow.cli"]


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


def sf(*args, cwd=None, timeout=120):
    return subprocess.run([*STEERFLOW, *map(str, args)], env=_env(), capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"steerflow {__version__}"


def test_paths_that_are_not_campaigns_get_one_message_each(tmp_path, capsys):
    plain = tmp_path / "notes.txt"
    plain.write_text("x")
    (tmp_path / "empty").mkdir()
    cases = [
        (("run", tmp_path / "missing.py"), "missing.py does not exist"),
        (("run", plain), "is neither a Python campaign script (.py) nor a YAML pipeline"),
        (("run", tmp_path / "empty"), "is a directory"),
        (("status", tmp_path / "missing"), "does not exist"),
        (("status", plain), "is a file, not a campaign directory"),
        (("report", tmp_path / "empty"), "holds no campaign journal"),
        (("show", tmp_path / "empty", "1"), "holds no campaign journal"),
        (("resume", plain), "is a file, not a campaign directory"),
    ]
    for args, message in cases:  # in this process: main() returns the exit status, stderr has the message
        assert main([str(a) for a in args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (args, err)
        assert len(err.strip().splitlines()) == 1, err


def test_yaml_mistakes_are_listed_without_a_traceback(tmp_path, capsys):
    spec = tmp_path / "bad.yaml"
    spec.write_text(textwrap.dedent("""
        stages:
          - name: a
            function: "math:sqrtt"
        stop: {tasks: 0}
    """))
    assert main(["run", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.search(r"bad.yaml:4: stages\[0\].function: 'math' has no attribute 'sqrtt'", err)
    assert "bad.yaml:5: stop.tasks: expected a number of task results >= 1" in err


def test_yaml_example_runs_twice_as_its_readme_says(tmp_path):
    readme = (ROOT / "examples" / "02-yaml-pipeline" / "README.md").read_text()
    block = readme.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].split()[1:] for line in block.strip().splitlines()]
    assert [c[0] for c in commands] == ["run", "run", "run", "status"]
    for args in commands:
        args = [str(ROOT / a) if a.startswith("examples/") else a for a in args]
        out = sf(*args, cwd=tmp_path)
        assert out.returncode == 0, (args, out.stderr)
    # the first command again, as a user would: it says what to do, without a traceback
    again = sf("run", ROOT / "examples" / "02-yaml-pipeline" / "pipeline.yaml", cwd=tmp_path)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert "steerflow run --resume" in again.stderr and "--dir" in again.stderr
    assert rundirs.status(tmp_path / "runs" / "yaml-pipeline")["pools"]["scan"] == {"done": 18}  # ran once


def test_a_yaml_stage_whose_tasks_all_fail_exits_non_zero_and_shows_why(tmp_path):
    (tmp_path / "steps_bad.py").write_text("def energy(x):\n    return x * x\n")
    spec = tmp_path / "p.yaml"
    spec.write_text(textwrap.dedent("""
        allocation: {nodes: 1, cores: 2}
        stages:
          - name: scan
            function: "steps_bad:energy"
            kwargs: {x: "{x}", tilt: 0.1}
            foreach: {x: [1, 2]}
    """))
    out = sf("run", "--dir", tmp_path / "run", spec)
    assert out.returncode == 1, out.stderr
    assert "TypeError: energy() got an unexpected keyword argument 'tilt'" in out.stderr
    assert "2 task(s) failed (2 of them handled by no agent)" in out.stderr
    assert f"steerflow show {tmp_path / 'run'} KEY" in out.stderr or "steerflow show" in out.stderr
    status = sf("status", tmp_path / "run")
    assert "unexpected keyword argument 'tilt'" in status.stdout
    show = sf("show", tmp_path / "run", "1")
    assert show.returncode == 0 and "energy" in show.stdout and "'tilt': 0.1" in show.stdout
    assert "Remote traceback" in show.stdout or "TypeError" in show.stdout


def test_a_failure_retried_by_a_rule_is_handled(tmp_path):
    (tmp_path / "steps_once.py").write_text(textwrap.dedent("""
        import os
        def flaky(x, marker):
            if not os.path.exists(marker):
                open(marker, "w").close()
                raise ValueError("first try fails")
            return x
    """))
    spec = tmp_path / "p.yaml"
    spec.write_text(textwrap.dedent(f"""
        allocation: {{nodes: 1, cores: 1}}
        stages:
          - name: scan
            function: "steps_once:flaky"
            kwargs: {{x: 1, marker: "{tmp_path / 'm'}"}}
        rules:
          - {{name: retry-failed, params: {{stage: scan}}}}
    """))
    out = sf("run", "--dir", tmp_path / "run", spec)
    assert out.returncode == 0, out.stderr
    assert "1 task(s) failed (all handled by agents)" in out.stderr


def test_a_bug_in_a_script_still_shows_its_traceback(tmp_path):
    script = tmp_path / "buggy.py"
    script.write_text("import steerflow\n1 / 0\n")
    out = sf("run", script)
    assert out.returncode == 1 and "Traceback" in out.stderr and "ZeroDivisionError" in out.stderr


def test_a_steerflow_error_in_a_script_names_the_scripts_line(tmp_path):
    script = tmp_path / "wrong.py"
    script.write_text("import steerflow as sf\n\nsf.Function(print, cores=0)\n")
    out = sf("run", script)
    assert out.returncode == 2 or out.returncode == 1
    assert f"{script}:3: Task field 'cores' = 0" in out.stderr and "Traceback" not in out.stderr


def _interrupt_when(proc: subprocess.Popen, ready) -> tuple[str, str]:
    try:
        assert wait_until(ready, timeout=30)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _catches_sigint(pid: int) -> bool:
    """Python has installed its Ctrl-C handler (before that, SIGINT would kill it like any process)."""
    try:
        caught = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if line.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGINT - 1)))


def _running(directory: Path) -> bool:
    return (directory / "journal.db").exists() and bool(rundirs.status(directory)["running"])


def test_ctrl_c_during_run_stops_cleanly_and_says_how_to_resume(tmp_path):
    directory = tmp_path / "camp"
    proc = subprocess.Popen([*STEERFLOW, "run", str(SLOW), str(directory), str(tmp_path / "marker")], env=_env(),
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = _interrupt_when(proc, lambda: _running(directory))
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "steerflow resume" in err and "camp" in err
    info = rundirs.status(directory)
    assert info["driver_pid"] is None and info["pools"]["simulate"].get("interrupted", 0) >= 1


def _terminate_when(proc: subprocess.Popen, ready) -> tuple[str, str]:
    """SIGTERM to the one process (as `kill PID`, `scancel` or a batch job's wall time sends it), not its group."""
    try:
        assert wait_until(ready, timeout=60)
        proc.terminate()
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_sigterm_stops_run_and_resume_cleanly_and_says_how_to_resume(tmp_path, no_leftover_processes):
    directory = tmp_path / "camp"
    proc = subprocess.Popen([*STEERFLOW, "run", str(SLOW), str(directory), str(tmp_path / "marker")], env=_env(),
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = _terminate_when(proc, lambda: _running(directory))
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err and "steerflow resume" in err
    info = rundirs.status(directory)
    assert info["driver_pid"] is None and info["pools"]["simulate"].get("interrupted", 0) >= 1
    assert "stopped without closing" not in sf("status", directory).stdout
    # `steerflow resume` runs the script in a child: a SIGTERM to the parent alone must reach it
    starts = rundirs.status(directory)["drivers_so_far"]
    proc = subprocess.Popen([*STEERFLOW, "resume", str(directory)], env=_env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = _terminate_when(proc, lambda: rundirs.status(directory)["drivers_so_far"] > starts
                             and _running(directory))
    assert proc.returncode == 143, err
    assert err.count("terminated (SIGTERM)") == 2 and "Traceback" not in err, err
    assert rundirs.status(directory)["driver_pid"] is None


def test_ctrl_c_leaves_status_watch_cleanly(tmp_path):
    import steerflow as sf_

    camp = sf_.Campaign(tmp_path / "c", allocation=sf_.Allocation.declare(nodes=1, cores=1), progress=False)
    camp.close()
    proc = subprocess.Popen([*STEERFLOW, "status", str(tmp_path / "c"), "--watch", "0.2"], env=_env(),
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stderr], [], [], 30)  # it says it watches once its loop runs
    assert ready and "Ctrl-C ends" in proc.stderr.readline()
    out, err = _interrupt_when(proc, lambda: _catches_sigint(proc.pid))
    assert proc.returncode == 0 and "Traceback" not in err, err


@pytest.mark.parametrize("width", [80])
def test_status_fits_80_columns(tmp_path, width):
    import steerflow as sf_

    camp = sf_.Campaign(tmp_path / "a-rather-long-campaign-directory-name" / "with-a-phase",
                        allocation=sf_.Allocation.declare(nodes=1, cores=2), progress=False)
    camp.submit(sf_.Executable(["sh", "-c", "echo 'a long error line that goes on and on and on and on' >&2; "
                                "exit 3"], name="a-task-with-a-long-name-that-does-not-fit", pool="a-long-pool-name"))
    camp.run()
    out = subprocess.run([*STEERFLOW, "status", str(tmp_path)], env=dict(_env(), COLUMNS=str(width)),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert max(len(line) for line in out.stdout.splitlines()) <= width, out.stdout
    assert "exited with status 3" in out.stdout


def test_status_says_how_the_last_driver_ended(tmp_path):
    import steerflow as sf_

    camp = sf_.Campaign(tmp_path / "c", allocation=sf_.Allocation.declare(nodes=1, cores=1), progress=False)
    camp.submit(sf_.Function(abs, args=(-1,)))
    camp.run(stop=sf_.stop.tasks(1))
    out = sf("status", tmp_path / "c")
    assert "ended" in out.stdout and "stop condition met" in out.stdout, out.stdout


@pytest.mark.parametrize("agent,code", [("", 1), ("@camp.on_result()\ndef seen(result, ctx):\n    pass\n", 0)])
def test_a_python_campaign_exits_1_only_when_no_agent_received_its_failures(tmp_path, agent, code):
    script = tmp_path / "fails.py"
    script.write_text(textwrap.dedent("""
        import sys
        import steerflow as sf
        camp = sf.Campaign(sys.argv[1], allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False)
        camp.submit(sf.Executable(["sh", "-c", "echo broken input >&2; exit 4"], name="prog"))
    """) + agent + "camp.run()\n")
    out = sf("run", script, tmp_path / "c")
    assert out.returncode == code, out.stderr
    assert "broken input" in out.stderr and str(tmp_path / "c" / "tasks" / "1.1.err") in out.stderr


def test_sigterm_to_a_plain_python_driver_closes_its_campaign(tmp_path, no_leftover_processes):
    """`python campaign.py` (no CLI) under `kill`/`scancel`: the campaign closes cleanly and resumes."""
    directory = tmp_path / "camp"
    proc = subprocess.Popen([sys.executable, str(SLOW), str(directory), str(tmp_path / "marker")], env=_env(),
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = _terminate_when(proc, lambda: _running(directory))
    assert proc.returncode != 0 and "SIGTERM: the driver stopped cleanly" in err and "steerflow resume" in err, err
    info = rundirs.status(directory)
    assert info["driver_pid"] is None and info["pools"]["simulate"].get("interrupted", 0) >= 1
    assert "stopped without closing" not in sf("status", directory).stdout
