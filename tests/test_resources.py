import os

import pytest

from steerflow import Allocation, AllocationError
from steerflow.resources import expand_counts, expand_nodelist


def test_detect_uses_affinity():
    alloc = Allocation.detect()
    assert alloc.total_cores == len(os.sched_getaffinity(0))
    assert alloc.nodes[0].cpu_ids == tuple(sorted(os.sched_getaffinity(0)))


def test_detect_gpus_from_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    alloc = Allocation.detect()
    assert alloc.nodes[0].gpus == 2 and alloc.nodes[0].gpu_ids == ("2", "3")


def test_declared_maps_cores_onto_real_cpus():
    alloc = Allocation.declare(nodes=3, cores=4, gpus=2, memory_mb=1000)
    assert [n.name for n in alloc.nodes] == ["node0", "node1", "node2"]
    real = sorted(os.sched_getaffinity(0))
    assert alloc.nodes[1].cpu_ids == tuple(real[i % len(real)] for i in range(4))
    assert alloc.total_cores == 12 and alloc.total_gpus == 6


@pytest.mark.parametrize("spec,expected", [
    ("n1", ["n1"]),
    ("gpu[01-03,7]", ["gpu01", "gpu02", "gpu03", "gpu7"]),
    ("a[1-2],b3,c[8-10]", ["a1", "a2", "b3", "c8", "c9", "c10"]),
    ("rack[1-2]-n[1-2]", ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]),
])
def test_expand_nodelist(spec, expected):
    assert expand_nodelist(spec) == expected


def test_expand_counts():
    assert expand_counts("16(x2),8") == [16, 16, 8]


def test_from_slurm_environment():
    env = {"SLURM_JOB_NODELIST": "cn[001-003]", "SLURM_JOB_CPUS_PER_NODE": "32(x2),16",
           "SLURM_GPUS_ON_NODE": "4", "SLURM_MEM_PER_NODE": "64000"}
    alloc = Allocation.from_slurm(env)
    assert [n.name for n in alloc.nodes] == ["cn001", "cn002", "cn003"]
    assert [n.cores for n in alloc.nodes] == [32, 32, 16]
    assert all(n.gpus == 4 and n.memory_mb == 64000 and n.host == n.name for n in alloc.nodes)


def test_from_slurm_errors_are_clear():
    with pytest.raises(AllocationError, match="not run inside a SLURM job"):
        Allocation.from_slurm({})
    with pytest.raises(AllocationError, match="lists 2 nodes"):
        Allocation.from_slurm({"SLURM_JOB_NODELIST": "a[1-3]", "SLURM_JOB_CPUS_PER_NODE": "4,4"})
    with pytest.raises(AllocationError, match="unbalanced"):
        Allocation.from_slurm({"SLURM_JOB_NODELIST": "a[1-3", "SLURM_JOB_CPUS_PER_NODE": "4"})
