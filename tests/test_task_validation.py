"""Inputs that used to pass validation and then broke the engine (or changed meaning): each is a TaskSpecError
naming the field, raised when the description is built, so nothing is queued."""

import math

import pytest

from steerflow import Executable, Function, TaskSpecError


@pytest.mark.parametrize("kwargs,field", [
    ({"argv": ["echo", "a\0b"]}, "argv"),
    ({"argv": ["echo"], "env": {"A": "x\0y"}}, "env"),
    ({"argv": ["echo"], "env": {"A\0": "x"}}, "env"),
    ({"argv": ["echo"], "env": {"A=B": "x"}}, "env"),
    ({"argv": ["echo"], "env": {"": "x"}}, "env"),
    ({"argv": ["echo"], "pre": ["echo \0"]}, "pre"),
    ({"argv": ["echo"], "post": ["true\0"]}, "post"),
    ({"argv": ["echo"], "cwd": "/tmp\0x"}, "cwd"),
    ({"argv": ["echo"], "name": "\0"}, "name"),
    ({"argv": ["echo"], "pool": "a\0"}, "pool"),
])
def test_nul_bytes_and_bad_env_keys_are_rejected(kwargs, field):
    argv = kwargs.pop("argv")
    with pytest.raises(TaskSpecError) as info:
        Executable(argv, **kwargs)
    assert info.value.field == field


@pytest.mark.parametrize("timeout", [math.inf, 1e300, 2**70, math.nan, -math.inf, 0, 400 * 86400])
@pytest.mark.parametrize("kind", ["function", "executable"])
def test_non_finite_or_absurd_timeouts_are_rejected(timeout, kind):
    with pytest.raises(TaskSpecError) as info:
        if kind == "function":
            Function(print, timeout=timeout)
        else:
            Executable(["true"], timeout=timeout)
    assert info.value.field == "timeout"


def test_reasonable_timeouts_still_pass():
    assert Function(print, timeout=30 * 86400).timeout == 30 * 86400
    assert Function(print, timeout=0.001).timeout == 0.001
    assert Function(print, timeout=None).timeout is None


@pytest.mark.parametrize("field,value", [
    ("cores", 2**40), ("retries", 10**30), ("priority", 10**30), ("memory_mb", 10**30), ("gpus", 2**63),
])
def test_counts_are_bounded(field, value):
    with pytest.raises(TaskSpecError) as info:
        Function(print, **{field: value})
    assert info.value.field == field
