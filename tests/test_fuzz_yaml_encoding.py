"""A pipeline spec's bytes: a file saved in Latin-1, binary junk or UTF-16 is a SpecError naming the line
(`steerflow run` exits 2 with one line), not a UnicodeDecodeError traceback; UTF-8 with a BOM and UTF-16
with its BOM load, as YAML allows; the locale's encoding plays no part."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from steerflow import SpecError
from steerflow.pipelines import spec

BODY = 'description: "scan"\nstages:\n  - {name: a, function: "fzenc:square", kwargs: {x: 3}}\n'


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "fzenc.py").write_text("def square(x):\n    return x * x\n")
    return tmp_path


def write(folder: Path, data: bytes) -> Path:
    path = folder / "pipeline.yaml"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("data, line", [
    (BODY.replace("scan", "caf\xe9").encode("latin-1"), 1),  # an accented description saved in Latin-1
    (b"stages:\n  - {name: a, function: \"fzenc:square\"}\n# \xc0\xff\n", 3),
    (bytes(range(256)) * 4, 2),  # (byte 10 is a new line)
])
def test_a_spec_that_is_not_utf8_names_its_line(folder, data, line):
    with pytest.raises(SpecError, match=rf"pipeline.yaml:{line}: the spec is not UTF-8 text \(byte 0x"):
        spec.load(write(folder, data))


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_a_spec_with_a_byte_order_mark_loads(folder, encoding):
    assert [s.name for s in spec.load(write(folder, BODY.encode(encoding))).stages] == ["a"]


def test_steerflow_run_says_it_in_one_line(folder):
    path = write(folder, BODY.replace("scan", "caf\xe9").encode("latin-1"))
    proc = subprocess.run([sys.executable, "-m", "steerflow.cli", "run", str(path), "--dir", str(folder / "run")],
                          capture_output=True, text=True, timeout=120, cwd=folder,
                          env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "save it as UTF-8" in proc.stderr
