"""Validation at submit: each bad description names the field, the value and the limit; nothing is queued."""

import pytest

from steerflow import Allocation, Executable, Function, TaskSpecError


def test_unknown_field_is_named_with_a_suggestion():
    with pytest.raises(TaskSpecError, match="no field 'coress'.*Did you mean 'cores'") as info:
        Function(print, coress=2)
    assert info.value.field == "coress"


def test_non_callable_function():
    with pytest.raises(TaskSpecError, match="'fn'.*not callable"):
        Function(42)


@pytest.mark.parametrize("kwargs,field", [
    ({"ranks": 0}, "ranks"), ({"cores_per_rank": 0}, "cores_per_rank"), ({"gpus_per_rank": -1}, "gpus_per_rank"),
    ({"timeout": -1}, "timeout"), ({"retries": -2}, "retries"), ({"pool": ""}, "pool"),
    ({"launcher": "qsub"}, "launcher"), ({"ranks": 2, "nodes": 3}, "nodes"), ({"memory_mb": -5}, "memory_mb"),
])
def test_executable_field_checks(kwargs, field):
    with pytest.raises(TaskSpecError) as info:
        Executable(["true"], **kwargs)
    assert info.value.field == field
    assert repr(kwargs[field]) in str(info.value)


def test_missing_executable():
    with pytest.raises(TaskSpecError, match="not found on PATH"):
        Executable(["no-such-program-xyz"])
    with pytest.raises(TaskSpecError, match="not an executable file"):
        Executable(["/nonexistent/prog"])


def test_resources_checked_against_allocation(runtime):
    # runtime: 1 node x 2 cores, no GPUs
    with pytest.raises(TaskSpecError, match="exceeds the 2 cores") as info:
        runtime.submit(Function(print, cores=3))
    assert info.value.field == "cores" and info.value.limit == 2
    with pytest.raises(TaskSpecError, match="GPUs") as info:
        runtime.submit(Function(print, gpus=1))
    assert info.value.field == "gpus"
    with pytest.raises(TaskSpecError, match="whole allocation has 2") as info:
        runtime.submit(Executable(["true"], launcher="mpirun", ranks=3)) if _has_mpirun() else \
            runtime.submit(Executable(["true"], launcher="none", cores_per_rank=3))
    assert runtime.tasks() == []  # nothing was queued


def test_multi_node_limits(make_runtime):
    rt = make_runtime(allocation=Allocation.declare(nodes=2, cores=2, gpus=1))
    with pytest.raises(TaskSpecError, match="exceeds the 1 GPUs") as info:
        rt.submit(Executable(["true"], launcher="none", gpus_per_rank=2))
    assert info.value.field == "gpus_per_rank"
    if _has_mpirun():
        with pytest.raises(TaskSpecError, match="exceeds the 2 nodes"):
            rt.submit(Executable(["true"], ranks=3, nodes=3))


def test_arguments_to_submit_with_a_description_are_rejected(runtime):
    with pytest.raises(TaskSpecError, match="inside the task description"):
        runtime.submit(Function(print), 1)


def _has_mpirun():
    import shutil
    return shutil.which("mpirun") is not None
