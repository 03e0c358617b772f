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


# ---- SLURM: the CPU ids a job really holds on this node ------------------------------------------

needs_two_cpus = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")

DETECT = ("import json, sys, steerflow; a = steerflow.Allocation.from_slurm(json.loads(sys.argv[1])); "
          "print(json.dumps([list(n.cpu_ids) for n in a.nodes]))")


def _from_slurm_in_child(env: dict, cpus: list[int] | None = None) -> list[list[int]]:
    """Allocation.from_slurm in a fresh process, under `taskset` when given CPUs (a job's affinity subset)."""
    import json
    import subprocess
    import sys

    cmd = [sys.executable, "-c", DETECT, json.dumps(env)]
    if cpus is not None:
        cmd = ["taskset", "-c", ",".join(map(str, cpus)), *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@needs_two_cpus
def test_slurm_cpu_ids_come_from_the_jobs_affinity_not_zero_to_n(tmp_path):
    import shutil

    if not shutil.which("taskset"):
        pytest.skip("taskset (util-linux) is not installed")
    last = sorted(os.sched_getaffinity(0))[-1]  # a job given only this CPU of the node: its id is not 0
    env = {"SLURM_JOB_NODELIST": "cn[1-2]", "SLURM_JOB_CPUS_PER_NODE": "1(x2)", "SLURMD_NODENAME": "cn2"}
    assert _from_slurm_in_child(env, cpus=[last]) == [[0], [last]]  # cn1 is bound by its own engine
    env = {"SLURM_JOB_NODELIST": "cn1", "SLURM_JOB_CPUS_PER_NODE": "2", "SLURMD_NODENAME": "cn1"}
    assert _from_slurm_in_child(env, cpus=[last]) == [[last, last]]  # fewer CPUs here than the count: wrapped


@needs_two_cpus
def test_slurm_cpu_bind_narrows_an_affinity_wider_than_the_job():
    cpus = sorted(os.sched_getaffinity(0))
    second = cpus[1]
    env = {"SLURM_JOB_NODELIST": "cn1", "SLURM_JOB_CPUS_PER_NODE": "1", "SLURMD_NODENAME": "cn1",
           "SLURM_CPU_BIND_TYPE": "mask_cpu:", "SLURM_CPU_BIND_LIST": hex(1 << second)}
    assert _from_slurm_in_child(env) == [[second]]


def test_cpu_bind_and_cpu_list_parsing():
    from steerflow.resources import cpu_bind_ids, parse_cpu_list

    assert cpu_bind_ids({"SLURM_CPU_BIND_TYPE": "mask_cpu:", "SLURM_CPU_BIND_LIST": "0x3,0xC",
                         "SLURM_LOCALID": "1"}) == {2, 3}
    assert cpu_bind_ids({"SLURM_CPU_BIND_TYPE": "map_cpu:", "SLURM_CPU_BIND_LIST": "5,7"}) == {5}
    assert cpu_bind_ids({"SLURM_CPU_BIND_TYPE": "none", "SLURM_CPU_BIND_LIST": "0x3"}) == set()
    assert parse_cpu_list("0-3,8,10-11\n") == {0, 1, 2, 3, 8, 10, 11}
