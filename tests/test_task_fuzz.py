"""Random and mutated task descriptions: each is valid (and means exactly what was given) or a TaskSpecError
that names the field; never a raw TypeError/AttributeError/ValueError, never silently reinterpreted."""

import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steerflow import Executable, Function, TaskSpecError
from steerflow.task import EXECUTABLE_FIELDS, FUNCTION_FIELDS


def fn(*args, **kwargs):
    return args, kwargs


class Weird:
    def __repr__(self):
        raise RuntimeError("a repr that fails")


@pytest.mark.parametrize("make,field", [
    (lambda: Function(fn, args=5), "args"),
    (lambda: Function(fn, args="abc"), "args"),
    (lambda: Function(fn, args=b"abc"), "args"),
    (lambda: Function(fn, args={"a": 1}), "args"),
    (lambda: Function(fn, tags=1.5), "tags"),
    (lambda: Function(fn, tags="abc"), "tags"),
    (lambda: Function(fn, tags=[1]), "tags"),
    (lambda: Function(fn, kwargs="ab"), "kwargs"),
    (lambda: Function(fn, kwargs=0), "kwargs"),
    (lambda: Function(fn, kwargs=[("a", 1)]), "kwargs"),
    (lambda: Function(fn, kwargs={1: 2}), "kwargs"),
    (lambda: Function(fn, name="\0"), "name"),
    (lambda: Function(fn, name=5), "name"),
    (lambda: Function(fn, name=""), "name"),
    (lambda: Function(fn, after=7), "after"),
    (lambda: Function(fn, pool=None), "pool"),
    (lambda: Executable(["true"], env=3), "env"),
    (lambda: Executable(["true"], env=[("A", "b")]), "env"),
    (lambda: Executable(["true"], cwd=5), "cwd"),
    (lambda: Executable(["true"], pre=2), "pre"),
    (lambda: Executable(["true"], pre="echo hi"), "pre"),
    (lambda: Executable(["true"], post=[3]), "post"),
    (lambda: Executable(5), "argv"),
    (lambda: Executable([]), "argv"),
    (lambda: Executable(["true", 3]), "argv"),
])
def test_each_bad_value_names_its_field(make, field):
    with pytest.raises(TaskSpecError) as info:
        make()
    assert info.value.field == field
    assert f"'{field}'" in str(info.value)


def test_a_value_whose_repr_fails_still_gets_a_message():
    with pytest.raises(TaskSpecError, match="'tags' = <Weird object>"):
        Function(fn, tags=Weird())
    with pytest.raises(TaskSpecError, match="'cores' = .* must be at most"):
        Function(fn, cores=10**5000)


def test_valid_values_keep_their_meaning():
    f = Function(fn, args=["abc"], kwargs={"k": 0}, tags=["abc"], name="n")
    assert f.args == ("abc",) and f.kwargs == {"k": 0} and f.tags == ("abc",) and f.name == "n"
    assert Function(fn, tags={"b", "a"}).tags == ("a", "b")
    assert Executable("true").argv == ["true"]  # one program name, not its letters


# ---- fuzz ------------------------------------------------------------------------------------


def _values():
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.integers(min_value=2**60, max_value=2**200),
        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8), st.binary(max_size=4),
        st.sampled_from(["true", "\0", "a=b", "", "default", "/tmp", "mpirun", "none", "srun", ".inf"]),
        st.just(fn), st.just(os.curdir),
    )
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.tuples(inner), st.dictionaries(st.text(max_size=3), inner, max_size=3),
        st.frozensets(st.integers(), max_size=2)), max_leaves=6)


def _check(make, fields, kwargs):
    try:
        spec = make(**kwargs)
    except TaskSpecError as exc:
        assert exc.field in fields or exc.field in kwargs, exc
        assert str(exc).startswith(f"Task field '{exc.field}'")
        return
    # valid: it means what was given, nothing was reinterpreted
    for name in ("args", "tags", "after", "pre", "post"):
        if name in kwargs and getattr(spec, name, None) is not None:
            given = kwargs[name]
            assert isinstance(given, (list, tuple, set, frozenset)), (name, given)
            assert len(getattr(spec, name)) == len(given)
    if "kwargs" in kwargs and kwargs["kwargs"] is not None:
        assert spec.kwargs == dict(kwargs["kwargs"])
    if "env" in kwargs and kwargs["env"] is not None:
        assert spec.env == dict(kwargs["env"])
    if spec.timeout is not None:
        assert math.isfinite(spec.timeout) and spec.timeout > 0
    if "name" in kwargs:
        assert kwargs["name"] is None or spec.name == kwargs["name"]
    repr(spec)
    spec.label()


_FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_fn_keys = st.sampled_from([f for f in FUNCTION_FIELDS if f != "fn"] + ["argv", "corez"])
_ex_keys = st.sampled_from([f for f in EXECUTABLE_FIELDS if f != "argv"] + ["cores", "args"])


@_FUZZ
@given(st.dictionaries(_fn_keys, _values(), max_size=4))
def test_fuzz_function_specs(kwargs):
    _check(lambda **kw: Function(fn, **kw), FUNCTION_FIELDS, kwargs)


@_FUZZ
@given(st.one_of(_values(), st.just(["true"]), st.lists(st.sampled_from(["true", "-x", "\0"]), max_size=3)),
       st.dictionaries(_ex_keys, _values(), max_size=4))
def test_fuzz_executable_specs(argv, kwargs):
    _check(lambda **kw: Executable(argv, **kw), EXECUTABLE_FIELDS, kwargs)
