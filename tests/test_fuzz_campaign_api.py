"""Wrong Python objects given to the public API: one sentence naming the argument (TypeError / ValueError), never an
AttributeError, IndexError or OverflowError from deep inside.

Found by calling each public function of learn/ and the campaign with None, numbers, NaN, strings, arrays of the
wrong shape, lists, dicts, objects and functions in place of each argument.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import steerflow as sf
from steerflow import learn
from steerflow.learn import acquisition

WRONG = [None, "x", -1, 0, 1.5, float("nan"), [], [[]], {}, object(), np.array([]), np.array([[1, 2]]),
         np.array([np.nan, 1.0]), True, 10**30, lambda: 1]
MEAN = np.array([1.0, 2.0, 3.0])
STD = np.array([0.1, 0.2, 0.3])


def fitted():
    return learn.Forest(n_estimators=4).fit([[1.0], [2.0], [3.0]], [1.0, 2.0, 3.0])


def refused(fn, *args, **kwargs) -> str:
    """The call raises TypeError or ValueError (or runs: some wrong-looking values are fine); its message."""
    try:
        fn(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        return str(exc)
    return ""


@pytest.mark.parametrize("value", WRONG, ids=[repr(v)[:20] for v in WRONG])
def test_learn_functions_say_what_is_wrong_with_an_argument(value):
    goal = learn.Goal.top({1: 1.0, 2: 2.0}, count=1, needed=1)
    refused(learn.select, "ucb", MEAN, STD, 2, features=value, diversity=0.3)  # was IndexError
    refused(learn.select, "ucb", MEAN, STD, 2, exclude=value)  # was IndexError (NaN, out of range)
    refused(learn.promote, value, 2)  # 2-D scores: was IndexError
    refused(acquisition.batch_spread, value, [0, 1])  # was IndexError
    refused(acquisition.batch_spread, np.eye(3), value)  # was IndexError / OverflowError
    refused(learn.propose, "ucb", value, [(0, 1)], 2)  # no predict: was AttributeError
    refused(learn.Goal.top, value, count=2, needed=1)  # was AttributeError 'items'
    refused(learn.Portfolio, value)  # was AttributeError 'items'
    refused(learn.effective_performance, value, goal, 2, [learn.RandomOrder()])  # was AttributeError 'solved'
    refused(learn.effective_performance, learn.Trace([], 0.0), goal, 2, value)  # was AttributeError
    refused(learn.surrogate_speedup, value)  # was AttributeError 'get'


def test_the_messages_name_the_argument():
    assert "features must be a 2-D array of 3 rows" in refused(learn.select, "ucb", MEAN, STD, 2,
                                                               features=np.eye(2), diversity=0.5)
    assert "exclude must be candidate indices, integers from 0 to 2; got 5." in refused(
        learn.select, "ucb", MEAN, STD, 2, exclude=[5])
    assert "mean must hold one prediction per candidate" in refused(learn.promote, np.eye(2), 1)
    assert "propose needs a fitted model with predict" in refused(learn.propose, "ucb", {}, [(0, 1)], 2)
    assert "Goal.top(values=...)" in refused(learn.Goal.top, [3.0, 1.0], count=1)
    assert "Portfolio(members=...)" in refused(learn.Portfolio, ["ucb"])
    assert "give the run's Trace" in refused(learn.effective_performance, "runs/x",
                                             learn.Goal.top({1: 1.0}, count=1), 1, [])
    assert "sf.stop.wall('1h')" in refused(_campaign_run, "1h")


def _campaign_run(stop):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        camp = sf.Campaign(tmp + "/c", allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False)
        try:
            camp.run(stop=stop)
        finally:
            camp.close()


@pytest.mark.parametrize("stop", ["1h", 5, True, [], lambda ctx: True])
def test_run_with_a_stop_that_is_no_condition_is_refused_before_the_campaign_starts(tmp_path, stop):
    camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False)
    future = camp.submit(abs, -2)
    with pytest.raises(TypeError, match="give a stop condition"):
        camp.run(stop=stop)  # was: AttributeError "'str' object has no attribute 'met'" from the steering loop
    assert camp.run(stop=sf.stop.tasks(1))["results_seen"] == 1 and future.result() == 2  # the campaign still runs


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 30), exclude=st.lists(st.one_of(st.integers(-50, 50), st.floats(allow_nan=True)), max_size=8),
       features=st.one_of(st.none(), st.integers(0, 4)), k=st.integers(-2, 40))
def test_select_picks_valid_distinct_indices_or_says_why(n, exclude, features, k):
    rng = np.random.default_rng(n)
    mean, std = rng.normal(size=n), rng.random(n)
    feats = None if features is None else rng.normal(size=(n, features))
    try:
        picked = learn.select("ucb", mean, std, k, exclude=exclude, features=feats,
                              diversity=0.0 if feats is None else 0.5)
    except ValueError as exc:  # a wrong index or feature shape: said, not an IndexError
        assert "exclude" in str(exc) or "features" in str(exc), exc
        return
    assert len(set(picked.tolist())) == len(picked) <= max(0, k)
    assert all(0 <= i < n and i not in exclude for i in picked)


def test_a_campaign_made_twice_in_one_process_says_so_not_another_driver(tmp_path):
    """A notebook cell run twice: the message said "Another driver (pid <this process>) ... steerflow cancel --stop"."""
    import os

    first = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False)
    try:
        with pytest.raises(sf.CampaignLocked, match="This process already has the campaign") as info:
            sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False, resume=True)
        assert info.value.pid == os.getpid() and "cancel" not in str(info.value)
    finally:
        first.close()
    again = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False, resume=True)
    again.close()  # once the first is closed, the directory is free


@pytest.mark.parametrize("metrics", ["mae=0.2", 0.2, [("mae", 0.2)], True, object()])
def test_registry_metrics_that_are_no_dict_are_refused_before_anything_is_written(tmp_path, metrics):
    camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False)
    try:
        registry = learn.ModelRegistry(camp)
        with pytest.raises(TypeError, match="give a model version's metrics as a dict"):  # was AttributeError
            registry.register("m", {"w": 1}, metrics=metrics)
        assert registry.versions("m") == []
    finally:
        camp.close()


@pytest.mark.parametrize("directory, error", [("", ValueError), ([], TypeError), (0, TypeError)])
def test_a_pipelines_directory_that_is_empty_or_no_path_is_refused_not_replaced_by_the_specs(tmp_path, monkeypatch,
                                                                                              directory, error):
    """prepare("") and prepare([]) ran the campaign in the spec's own directory (a falsy test)."""
    from pathlib import Path

    from steerflow.pipelines import spec

    monkeypatch.chdir(tmp_path)  # (where the spec's own runs/yaml-pipeline would be made)

    pipeline = spec.load(Path(__file__).resolve().parent.parent / "examples" / "02-yaml-pipeline" / "pipeline.yaml")
    with pytest.raises(error, match="directory"):
        pipeline.prepare(directory, progress=False)


def test_select_takes_the_done_indices_as_a_set():
    """`exclude=done` with a set of indices (the natural way to keep them) was a TypeError from numpy."""
    assert learn.select("ucb", np.arange(5.0), np.ones(5), 3, exclude={0, 4}).tolist() == [1, 2, 3]
    assert learn.select("greedy", np.arange(5.0), np.zeros(5), 2, goal="max", exclude=frozenset({4})).tolist() == [3, 2]
