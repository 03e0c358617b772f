"""How the allocation is found on a real machine: GPUs from ``nvidia-smi -L``, CPUs from the job's affinity."""

from __future__ import annotations

import os

import pytest

from steerflow import Allocation
from steerflow.resources import detect_gpus

SMI_OUTPUT = """GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0a1b2c3d-0000-0000-0000-000000000000)
GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-0a1b2c3d-0000-0000-0000-000000000001)
  MIG 3g.40gb     Device  0: (UUID: MIG-0a1b2c3d-0000-0000-0000-000000000002)
GPU 2: NVIDIA H100 80GB HBM3 (UUID: GPU-0a1b2c3d-0000-0000-0000-000000000003)
"""


def fake_smi(directory, text: str, status: int = 0) -> None:
    smi = directory / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\n[ \"$1\" = -L ] || exit 2\ncat <<'END'\n{text}END\nexit {status}\n")
    smi.chmod(0o755)


def test_gpus_from_nvidia_smi_on_path(tmp_path, monkeypatch):
    fake_smi(tmp_path, SMI_OUTPUT)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert detect_gpus() == ("0", "1", "2")  # one per GPU line; MIG lines are not GPUs
    node = Allocation.detect().nodes[0]
    assert node.gpus == 3 and node.gpu_ids == ("0", "1", "2")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")  # what the job was given wins over what exists
    assert detect_gpus() == ("1",)


def test_no_gpus_when_nvidia_smi_fails_or_is_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake_smi(tmp_path, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", 9)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}/usr/bin:/bin")
    assert detect_gpus() == ()
    (tmp_path / "nvidia-smi").unlink()
    monkeypatch.setenv("PATH", str(tmp_path))
    assert detect_gpus() == ()
