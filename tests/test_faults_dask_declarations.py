"""A Dask worker's node declaration that is wrong is refused with a sentence, not taken in some other sense.

Found by declaring nodes the ways a user may get wrong (`--resources`, STEERFLOW_NODE_CPUS, STEERFLOW_NODE_GPU_IDS).
Before: `cores=1.5` became 1 core; STEERFLOW_NODE_GPU_IDS naming fewer GPUs than declared was replaced by GPUs
0..N-1 (tasks would get CUDA_VISIBLE_DEVICES of GPUs the node was never given); `5-3` was taken as no CPUs, so the
variable was ignored; `abc` gave a bare "invalid literal for int()"; a CPU or GPU named twice was taken. A refused
declaration makes the worker no node, and the driver names that worker and the reason (tests/test_faults_dask_nodes.py
checks that path end to end).
"""

from __future__ import annotations

import pytest

pytest.importorskip("distributed")

from steerflow.engines.dask_node import declare_node  # noqa: E402


@pytest.mark.parametrize("resources, env, says", [
    ({"cores": 1.5}, {}, r"declares cores=1.5 \(--resources\); declare a whole number"),
    ({"cores": 2, "gpus": 0.5}, {}, r"declares gpus=0.5"),
    ({"cores": 2, "gpus": 2}, {"STEERFLOW_NODE_GPU_IDS": "3"},
     r"declares 2 GPU\(s\) \(--resources gpus=...\) but STEERFLOW_NODE_GPU_IDS=3 names 1; name one id per GPU, or "
     r"declare 1"),
    ({"cores": 2, "gpus": 2}, {"STEERFLOW_NODE_GPU_IDS": "3,3"}, r"names a GPU twice"),
    ({"cores": 2}, {"STEERFLOW_NODE_CPUS": "abc"}, r"STEERFLOW_NODE_CPUS=abc is not a list of CPU ids"),
    ({"cores": 2}, {"STEERFLOW_NODE_CPUS": "1-0"}, r"STEERFLOW_NODE_CPUS=1-0 is not a list of CPU ids"),
    ({"cores": 2}, {"STEERFLOW_NODE_CPUS": "0-"}, r"STEERFLOW_NODE_CPUS=0- is not a list of CPU ids"),
    ({"cores": 2}, {"STEERFLOW_NODE_CPUS": "0,0"}, r"STEERFLOW_NODE_CPUS=0,0 names a CPU twice"),
])
def test_a_wrong_declaration_is_refused_with_what_to_change(resources, env, says):
    with pytest.raises(ValueError, match=says):
        declare_node(resources, env)


def test_right_declarations_are_taken_as_given():
    node = declare_node({"cores": 2, "gpus": 2}, {"STEERFLOW_NODE_GPU_IDS": "2, 3", "STEERFLOW_NODE_CPUS": "0"})
    assert (node["cores"], node["gpus"], node["gpu_ids"], node["cpu_ids"]) == (2, 2, ("2", "3"), (0, 0))
    node = declare_node({"cores": 2.0, "gpus": 2}, {})  # (Dask's resources are floats; GPUs declared, none found)
    assert (node["cores"], node["gpus"], node["gpu_ids"]) == (2, 2, ("0", "1"))
