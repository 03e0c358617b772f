"""MPI ranks each get their own CPUs and GPU ids (real mpirun), on an allocation where they differ."""

from __future__ import annotations

import json
import os
import sys

import pytest

from steerflow import Allocation, Executable
from steerflow.resources import Node

from .conftest import needs_mpirun

RANK_REPORT = """
import json, os
from mpi4py import MPI
comm = MPI.COMM_WORLD
total = comm.allreduce(1, op=MPI.SUM)
with open(f"rank{comm.Get_rank()}.json", "w") as f:
    json.dump({"rank": comm.Get_rank(), "size": total, "cpus": sorted(os.sched_getaffinity(0)),
               "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "omp": os.environ.get("OMP_NUM_THREADS")}, f)
"""


@needs_mpirun
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs for ranks bound apart")
def test_each_rank_gets_its_own_cpu_and_gpu(make_runtime, tmp_path):
    pytest.importorskip("mpi4py")
    cpu_a, cpu_b = sorted(os.sched_getaffinity(0))[:2]
    alloc = Allocation((Node("a", 1, 1, cpu_ids=(cpu_a,), gpu_ids=("3",)),
                        Node("b", 1, 1, cpu_ids=(cpu_b,), gpu_ids=("5",))))
    script = tmp_path / "report.py"
    script.write_text(RANK_REPORT)
    rt = make_runtime(allocation=alloc)
    result = rt.submit(Executable([sys.executable, str(script)], ranks=2, gpus_per_rank=1, cwd=tmp_path,
                                  timeout=120)).result(timeout=150)
    assert result.returncode == 0
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["size"] for r in ranks] == [2, 2]  # one MPI job of two ranks
    assert ranks[0]["cpus"] == [cpu_a] and ranks[0]["cuda"] == "3"
    assert ranks[1]["cpus"] == [cpu_b] and ranks[1]["cuda"] == "5"
    assert ranks[0]["omp"] == ranks[1]["omp"] == "1"
