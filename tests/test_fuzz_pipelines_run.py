"""YAML pipelines that load, run: with odd values in their fan-out (huge and negative integers, NaN, unicode,
nested lists, values the function cannot take) and odd retries, priorities and timeouts, each ends within its
wall time with every task journaled once, in a final state, and readable by `steerflow status`; never a hang,
a traceback from the campaign layer, or a journal that stops. (test_pipelines_fuzz.py covers loading.)"""

from __future__ import annotations

import math
import os
import warnings

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steerflow import SpecError, rundirs
from steerflow.pipelines import pipeline, spec

pytestmark = pytest.mark.usefixtures("no_leftover_processes")

STEPS = "def square(x, scale=1):\n    return x * x * scale\n"
_values = st.one_of(st.integers(-2**70, 2**70), st.floats(), st.text(max_size=8), st.booleans(), st.none(),
                    st.lists(st.integers(), max_size=2))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(xs=st.lists(_values, min_size=1, max_size=3), retries=st.integers(0, 2),
       priority=st.integers(-2**53, 2**53), timeout=st.one_of(st.none(), st.floats(0.5, 30)),
       words=st.lists(st.text(max_size=6), min_size=1, max_size=2))
def test_fuzz_pipelines_run_to_an_end(tmp_path_factory, xs, retries, priority, timeout, words):
    folder = tmp_path_factory.mktemp("yamlrun")
    (folder / "fzsteps.py").write_text(STEPS)
    stage = {"name": "sq", "function": "fzsteps:square", "args": ["{x}"], "foreach": {"x": xs}, "cores": 1,
             "retries": retries, "priority": priority}
    if timeout is not None:
        stage["timeout"] = f"{timeout}s"
    doc = {"allocation": {"nodes": 1, "cores": 2},
           "stages": [stage, {"name": "echo", "executable": ["echo", *words], "after": ["sq"]}],
           "stop": {"wall": "60s"}}
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    try:
        loaded = spec.load(path)
    except SpecError as exc:
        assert "pipeline.yaml:" in str(exc)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            summary = pipeline.run(loaded, directory=folder / "run")
        except SpecError as exc:  # a value the stage cannot be built with: said at run time, with the line
            assert "pipeline.yaml" in str(exc) or "stage" in str(exc), exc
            return
    assert summary["stop_reason"].startswith("idle"), summary  # it ended by itself, well within the wall time
    status = rundirs.status(folder / "run")
    counts = {}
    for pool in status["pools"].values():
        for state, n in pool.items():
            counts[state] = counts.get(state, 0) + n
    assert set(counts) <= {"done", "failed"}, counts
    assert sum(counts.values()) == summary["tasks"] == len(xs) + 1
    square_ok = all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x * x) for x in xs)
    if square_ok:
        assert counts.get("done") == len(xs) + 1, counts
    assert not os.path.exists(folder / "run" / "driver.lock") or rundirs.status(folder / "run")
