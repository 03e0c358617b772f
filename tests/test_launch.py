"""What a campaign records as its start (what `steerflow resume` may run), for each way of starting it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from steerflow import rundirs

SPEC = Path(__file__).resolve().parents[1] / "examples" / "02-yaml-pipeline" / "pipeline.yaml"


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


def _launch(directory: Path) -> dict:
    return rundirs.meta(directory)["launch"]


def test_each_way_of_starting_is_recorded(tmp_path):
    script = tmp_path / "builds_a_pipeline.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        from steerflow.pipelines import spec
        spec.load({str(SPEC)!r}).prepare(sys.argv[1], progress=False).campaign.run()
    """))
    runs = {
        "python script": [sys.executable, str(script), str(tmp_path / "a")],
        "steerflow run script": [sys.executable, "-m", "steerflow.cli", "run", str(script), str(tmp_path / "b")],
        "python -c": [sys.executable, "-c", "import sys, steerflow as sf; "
                      "sf.Campaign(sys.argv[1], allocation=sf.Allocation.declare(nodes=1, cores=1)).run()",
                      str(tmp_path / "d")],
    }
    for name, cmd in runs.items():
        out = subprocess.run(cmd, env=_env(), capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert out.returncode == 0, (name, out.stderr)
    assert _launch(tmp_path / "a")["kind"] == "python" and _launch(tmp_path / "a")["script"] == str(script)
    assert _launch(tmp_path / "a")["args"] == [str(tmp_path / "a")]
    assert _launch(tmp_path / "b")["script"] == str(script)  # the script, with its own agents: not the YAML file
    # `steerflow run SPEC.yaml` records the YAML file: tests/test_resume.py resumes one
    assert _launch(tmp_path / "d")["kind"] == "other"  # nothing steerflow could run again: resume refuses
    out = subprocess.run([sys.executable, "-m", "steerflow.cli", "resume", str(tmp_path / "d")], env=_env(),
                         capture_output=True, text=True)
    assert out.returncode == 2 and "not started from a script or pipeline file" in out.stderr
