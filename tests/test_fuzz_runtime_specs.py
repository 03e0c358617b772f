"""Task descriptions changed after they were made, at the runtime's boundary (Hypothesis).

A description's fields are plain attributes, checked when it is made. One changed afterwards (``spec.timeout =
"3"``, ``spec.cores = 0``, ``spec.argv = [1, 2]``) stopped the runtime's loop, and every task with it. The
property: whatever a field holds, submit refuses it or the task ends (done or failed) within a bound, and the
runtime goes on running tasks.
"""
from __future__ import annotations

import math
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import steerflow as sf

BOUND = 60

ODD = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5), st.binary(max_size=3),
    st.lists(st.one_of(st.integers(-3, 3), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.one_of(st.integers(), st.text(max_size=3)), max_size=2),
    st.sampled_from([0, 1, 2, -1, 0.5, 1.0, math.nan, math.inf, "", "\0", "a=b", ["true"], ["true", "\0"], {}]),
)
FUNCTION_FIELDS = ["timeout", "cores", "gpus", "retries", "priority", "memory_mb", "pool", "name", "tags", "after",
                   "args", "kwargs", "fn"]
PROGRAM_FIELDS = ["timeout", "retries", "priority", "memory_mb", "pool", "argv", "env", "cwd", "_cores_per_rank",
                  "_gpus_per_rank", "_ranks", "_nodes"]


def one() -> int:
    return 1


@pytest.fixture(scope="module")
def rt(tmp_path_factory):
    runtime = sf.Runtime(sf.Allocation.declare(nodes=1, cores=2), run_dir=tmp_path_factory.mktemp("fuzz-specs"))
    yield runtime
    runtime.shutdown(kill=True)


def _submit_and_check(rt: sf.Runtime, spec: sf.Function | sf.Executable) -> None:
    try:
        future = rt.submit(spec)
    except (sf.TaskSpecError, TypeError, ValueError, AttributeError):
        pass  # refused at submit, naming the field (or Python's own error for a field that is not a sequence)
    else:
        try:
            future.result(timeout=BOUND)
        except sf.RuntimeBroken:
            raise
        except (Exception, sf.TimedOut) as exc:  # noqa: BLE001 - it may fail: alone
            assert not isinstance(exc, TimeoutError) or isinstance(exc, sf.TaskTimeout), f"it never ended: {exc}"
    assert rt.failure is None, f"the runtime's loop failed: {rt.failure!r}"
    assert rt.submit(one).result(timeout=BOUND) == 1


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FUNCTION_FIELDS), value=ODD)
def test_a_function_changed_after_it_was_made_never_stops_the_runtime(rt, field, value):
    spec = sf.Function(one, timeout=30)
    setattr(spec, field, value)
    _submit_and_check(rt, spec)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(PROGRAM_FIELDS), value=ODD)
def test_a_program_changed_after_it_was_made_never_stops_the_runtime(rt, field, value):
    spec = sf.Executable(["true"], timeout=30)
    setattr(spec, field, value)
    _submit_and_check(rt, spec)


def test_the_known_cases(rt):
    for field, value in [("timeout", "3"), ("timeout", math.nan), ("cores", 0), ("cores", 1.5), ("priority", "x"),
                         ("pool", None)]:
        spec = sf.Function(one)
        setattr(spec, field, value)
        with pytest.raises(sf.TaskSpecError, match=field):
            rt.submit(spec)
    spec = sf.Executable(["true"])
    spec.argv = [1, 2]
    with pytest.raises(sf.TaskSpecError, match="argv"):
        rt.submit(spec)
    t0 = time.monotonic()
    assert rt.submit(one).result(timeout=BOUND) == 1 and time.monotonic() - t0 < BOUND
