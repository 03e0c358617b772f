"""YAML pipelines: hostile and random specs end in a SpecError naming the line and field, quickly and in bounded
memory, or load as valid; never a raw Python error, a RecursionError or a hang."""

from __future__ import annotations

import math
import string
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steerflow import Allocation, SpecError
from steerflow.errors import AllocationError
from steerflow.pipelines import spec

STEPS = "def square(x, scale=1):\n    return x * x * scale\n"
BASE = {
    "allocation": {"nodes": 1, "cores": 2},
    "stages": [
        {"name": "sq", "function": "fzsteps:square", "args": ["{x}"], "foreach": {"x": [1, 2, 3]}, "cores": 1},
        {"name": "echo", "executable": ["echo", "{x}"], "foreach": {"x": [1]}, "after": ["sq"]},
    ],
    "stop": {"tasks": 10, "wall": "1h"},
}


def load_text(folder: Path, text: str):
    if not (folder / "fzsteps.py").exists():
        (folder / "fzsteps.py").write_text(STEPS)
    path = folder / "pipeline.yaml"
    path.write_text(text)
    return spec.load(path)


def fails_quickly(folder: Path, text: str, match: str) -> SpecError:
    start = time.monotonic()
    with pytest.raises(SpecError, match=match) as info:
        load_text(folder, text)
    assert time.monotonic() - start < 10, "it should fail at once, not after expanding the input"
    return info.value


def test_the_base_spec_is_valid(tmp_path):
    assert [s.name for s in load_text(tmp_path, yaml.safe_dump(BASE)).stages] == ["sq", "echo"]


def test_recursive_alias(tmp_path):
    text = "stages: &s\n  - name: a\n    function: fzsteps:square\n    args: *s\n"
    fails_quickly(tmp_path, text, r"pipeline.yaml:\d+: stages\[0\].args: is a recursive alias")


def test_twenty_thousand_deep_nesting(tmp_path):
    fails_quickly(tmp_path, "stages: " + "[" * 20_000 + "]" * 20_000 + "\n", "nest")  # libyaml stops it at 1000
    fails_quickly(tmp_path, "stages:\n" + "".join(" " * i + "- \n" for i in range(0, 4000, 2)),
                  "nested more than 64 levels")


def test_alias_bomb(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}]"
              for i in range(1, 10)]
    lines += ["stages: [{name: a, function: 'fzsteps:square', args: *a9}]"]
    fails_quickly(tmp_path, "\n".join(lines) + "\n", "expands to more than 200,000 values")


@pytest.mark.parametrize("wall", [".nan", ".inf", "-.inf", "0", "-5"])
def test_stop_wall_must_be_a_finite_positive_duration(tmp_path, wall):
    doc = {k: v for k, v in BASE.items() if k != "stop"}
    err = fails_quickly(tmp_path, yaml.safe_dump(doc) + f"stop: {{wall: {wall}}}\n", r"stop\.wall: expected a duration")
    assert "pipeline.yaml:" in str(err)


@pytest.mark.parametrize("timeout", [".inf", ".nan", "1e300", str(2**70)])
def test_stage_timeout_must_be_finite(tmp_path, timeout):
    base = yaml.safe_dump(BASE).replace("cores: 1\n", f"cores: 1\n  timeout: {timeout}\n", 1)
    fails_quickly(tmp_path, base, r"stages\[0\].timeout")


@pytest.mark.parametrize("field,value", [("cores", "10000000000"), ("cores", "1.0e10"), ("nodes", str(10**9)),
                                         ("gpus", str(10**6))])
def test_allocation_sizes_are_bounded(tmp_path, field, value):
    text = yaml.safe_dump({**BASE, "allocation": {}}).replace("allocation: {}", f"allocation: {{{field}: {value}}}")
    fails_quickly(tmp_path, text, rf"allocation\.{field}")


def test_a_grid_that_fans_out_past_the_bound(tmp_path):
    stage = {"name": "g", "function": "fzsteps:square", "args": ["{a}"],
             "grid": {"a": list(range(100)), "b": list(range(100)), "c": list(range(100))}}
    fails_quickly(tmp_path, yaml.safe_dump({"stages": [stage]}), r"stages\[0\].grid.c: .*more than 100,000 tasks")


@pytest.mark.parametrize("kwargs", [{"cores": 10**9}, {"nodes": 10**9}, {"nodes": 10**5, "cores": 1000},
                                    {"gpus": 10**6}, {"cores": "2"}])
def test_declared_allocation_sizes_are_bounded(kwargs):
    start = time.monotonic()
    with pytest.raises(AllocationError):
        Allocation.declare(**kwargs)
    assert time.monotonic() - start < 5


def test_a_large_real_allocation_still_declares():
    assert Allocation.declare(nodes=10_000, cores=32, gpus=4).total_cores == 320_000


# ---- fuzz ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("yamlfuzz")


def _load_or_spec_error(folder: Path, text: str) -> None:
    try:
        loaded = load_text(folder, text)
    except SpecError as exc:
        assert "pipeline.yaml:" in str(exc)
        return
    for stage in loaded.stages:  # valid: every stage builds its tasks' descriptions
        assert stage.name
        if stage.options.get("timeout") is not None:
            assert math.isfinite(stage.options["timeout"])
    if loaded.stop.get("wall") is not None:
        from steerflow.stop import parse_duration

        assert math.isfinite(parse_duration(loaded.stop["wall"]))


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=2**40, max_value=2**80),
                     st.floats(), st.text(max_size=6),
                     st.sampled_from(["{x}", "fzsteps:square", "fzsteps:nope", "echo", "1h", "start", "on-demand",
                                      "sq", "echo", "\0", "{y}", "90s"]))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)), max_leaves=8)
_paths = st.sampled_from([
    ("allocation",), ("allocation", "cores"), ("allocation", "nodes"), ("allocation", "gpus"), ("pools",),
    ("stop",), ("stop", "wall"), ("stop", "tasks"), ("rules",), ("directory",), ("stages",),
    ("stages", 0), ("stages", 0, "args"), ("stages", 0, "foreach"), ("stages", 0, "foreach", "x"),
    ("stages", 0, "grid"), ("stages", 0, "cores"), ("stages", 0, "timeout"), ("stages", 0, "tags"),
    ("stages", 0, "kwargs"), ("stages", 0, "after"), ("stages", 0, "when"), ("stages", 0, "name"),
    ("stages", 0, "params"), ("stages", 0, "inputs"), ("stages", 1, "executable"), ("stages", 1, "env"),
    ("stages", 1, "cwd"), ("stages", 1, "pre"), ("stages", 1, "ranks"), ("stages", 1, "after"),
    ("stages", 0, "retries"), ("stages", 0, "priority"), ("stages", 0, "pool"), ("stages", 0, "function"),
])
_FUZZ = settings(max_examples=1000, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _mutate(doc, path, value):
    import copy

    doc = copy.deepcopy(doc)
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return doc


@_FUZZ
@given(st.lists(st.tuples(_paths, _values), min_size=1, max_size=3))
def test_fuzz_mutated_pipelines(folder, mutations):
    doc = BASE
    for path, value in mutations:
        try:
            doc = _mutate(doc, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed the place this one writes to
    try:
        text = yaml.safe_dump(doc, allow_unicode=True)
    except yaml.YAMLError:
        return
    _load_or_spec_error(folder, text)


@_FUZZ
@given(st.data())
def test_fuzz_mangled_yaml_text(folder, data):
    text = yaml.safe_dump(BASE)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 3))
        insert = data.draw(st.text(alphabet=string.printable + "&*!|>{}[]-:#%@`'\"\t", max_size=4))
        text = text[:at] + insert + text[at + cut:]
    _load_or_spec_error(folder, text)
