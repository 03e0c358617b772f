"""The learning layer with degenerate data: one input the model cannot hold, bounds that are not numbers,
a spread that is negative. Each either works or says what is wrong, in a sentence; nothing is silently
poisoned for the rest of a run."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from steerflow import learn


def double(x):
    return 2.0 * x


@pytest.mark.parametrize("huge", [1e39, -1e39, 1e300])
def test_one_input_past_float32_does_not_stop_a_forest_surrogate_from_ever_retraining(huge):
    # trees split in float32: 1e39 was inf there, and each later fit of the forest failed on it
    s = learn.Surrogate(double, error_bound=0.1, min_points=5, retrain_every=5, model="forest")
    xs = [0.0, 0.1, 0.2, huge, *np.linspace(0.3, 1.0, 20)]
    for x in xs:
        s(float(x))
        assert s.wait_trained(60)
    assert s.stats.retrain_errors == 0
    assert s.model is not None and s.stats.retrains >= 3
    mean, std = s.model.predict([[0.5]])
    assert math.isfinite(mean[0]) and math.isfinite(std[0])


def test_a_forest_fits_and_predicts_features_past_float32():
    x = np.array([[0.0], [1.0], [2.0], [1e39]])
    model = learn.Forest(n_estimators=10).fit(x, [0.0, 1.0, 2.0, 3.0])
    mean, _ = model.predict([[1e39], [0.0]])
    assert np.all(np.isfinite(mean)) and mean[0] > mean[1]


def test_a_surrogate_that_cannot_retrain_says_so_once(capsys):
    def broken():
        raise ValueError("the model factory is broken")

    s = learn.Surrogate(double, error_bound=0.1, min_points=3, retrain_every=3, model=broken)
    for x in np.linspace(0, 1, 12):
        s(float(x))
        assert s.wait_trained(30)
    err = capsys.readouterr().err
    assert s.stats.retrain_errors >= 2
    assert err.count("could not retrain") == 1 and "the model factory is broken" in err


@pytest.mark.parametrize("bounds", [[(0, float("nan"))], [(float("nan"), 1)], [(0, float("inf"))],
                                    [(-float("inf"), 0)], [(1, 0)], [(0, 0)], [(0, 1, 2)]])
def test_propose_refuses_bounds_that_are_not_a_finite_box(bounds):
    model = learn.Forest(n_estimators=5).fit(np.random.default_rng(0).random((10, 1)), np.arange(10.0))
    with pytest.raises(ValueError, match="finite numbers with low < high"):
        learn.propose("ucb", model, bounds=bounds, k=2)


def test_select_refuses_a_negative_spread():
    with pytest.raises(ValueError, match=r"std must be a spread \(>= 0\)"):
        learn.select("thompson", np.arange(5.0), -np.ones(5), k=2)


@pytest.mark.parametrize("model", ["forest", "extra", "gp"])
def test_degenerate_training_sets_fit_or_say_why(model):
    x = np.random.default_rng(1).random((12, 2))
    mean, std = learn.make_model(model).fit(x, np.full(12, 3.0)).predict(x[:3])  # constant target
    assert np.allclose(mean, 3.0, atol=1e-6) and np.all(std > 0)
    mean, std = learn.make_model(model).fit(x[:1], [2.0]).predict(x[:2])  # one sample
    assert np.all(np.isfinite(mean)) and np.all(std > 0)
    with pytest.raises(ValueError, match="2-D"):
        learn.make_model(model).fit(np.ones((3, 2, 2)), [1.0, 2.0, 3.0])


def slow_square(x):
    import time

    time.sleep(0.05)
    return float("nan") if x % 2 == 0 else (x - 20.0) ** 2  # (one comes before the first model)


class BrokenModel:
    def fit(self, x, y):
        raise ValueError("this model cannot be fitted")

    def predict(self, x):
        raise AssertionError("never fitted")


def learner_campaign(tmp_path, model):
    import steerflow as sf

    camp = sf.Campaign(tmp_path / "run", progress=False,
                       pools={"simulate": {"cores": 1}, "train": {"cores": 1}, "infer": {"cores": 1}})
    cands = list(range(40))
    learner = camp.add_agent(learn.ActiveLearner(cands, np.array(cands, dtype=float).reshape(-1, 1), slow_square,
                                                 budget=24, slots=1, retrain_after=4, min_train=4, model=model))
    summary = camp.run(stop=sf.stop.wall("120s"))
    return learner, summary


def test_a_nan_simulation_is_no_label_and_the_learner_still_trains(tmp_path, capsys):
    # before: one NaN before the first model made every fit fail, and each failure resubmitted a training at once
    # (1,501 failed training tasks in 6 s here, no model ever)
    learner, summary = learner_campaign(tmp_path, "forest")
    assert summary["states"].get("failed", 0) == 0, summary
    assert learner.models >= 1 and learner.not_finite >= 1
    assert all(math.isfinite(v) for v in learner.values.values())
    assert capsys.readouterr().err.count("which is no training label") == 1


def test_a_model_that_never_fits_is_retried_per_batch_not_in_a_loop(tmp_path, capsys):
    learner, summary = learner_campaign(tmp_path, BrokenModel())
    failed = summary["states"].get("failed", 0)  # the training tasks
    assert 1 <= failed <= 24 // 4 + 1, summary
    assert learner.models == 0 and learner.simulations == 24 and learner.failed_trainings == failed
    assert capsys.readouterr().err.count("training failed (ValueError: this model cannot be fitted)") == 1


@pytest.mark.parametrize("name, says", [("model-\udcff", "not valid Unicode text"), ("m" * 300, "300 bytes long")])
def test_a_model_name_the_journal_or_the_disk_cannot_hold_is_refused_at_register(tmp_path, name, says):
    # before: a lone surrogate stopped the campaign's journal (JournalError, and again on every resume); 300
    # characters gave a bare OSError ENAMETOOLONG
    import steerflow as sf

    camp = sf.Campaign(tmp_path / "run", progress=False)
    registry = learn.ModelRegistry(camp)
    with pytest.raises(ValueError, match=says):
        registry.register(name, [1.0])
    assert registry.register("fine", [1.0], metrics={"mae": 0.2}).version == 1
    camp.close()


def test_metrics_that_are_not_numbers_are_refused_before_anything_is_written(tmp_path):
    registry = learn.ModelRegistry(tmp_path)
    with pytest.raises(ValueError, match="metrics are numbers"):
        registry.register("m", [1.0], metrics={"mae": "low"})
    assert registry.versions("m") == []


def test_batched_inference_never_leaves_a_request_waiting(tmp_path):
    # before: a row of another length failed np.stack in flush(), and every request gathered with it waited forever
    import steerflow as sf

    camp = sf.Campaign(tmp_path / "run", progress=False, pools={"infer": {"cores": 1}})
    registry = learn.ModelRegistry(camp)
    registry.register("m", learn.Forest(n_estimators=5).fit(np.random.default_rng(0).random((10, 3)), np.arange(10.)))
    infer = learn.BatchedInference(camp, registry, "m")
    first = infer.request([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="this row has 2 features, the rows gathered for version 1 of 'm' have 3"):
        infer.request([0.1, 0.2])
    infer.flush()
    camp.run()
    mean, std = first.result(timeout=30)
    assert math.isfinite(mean) and std > 0
    late = infer.request([0.4, 0.5, 0.6])  # the campaign has closed: its submit fails, and the request says so
    infer.flush()
    assert late.done(), "a request whose task could not be submitted must end, not wait"
    assert late.exception(timeout=0) is not None


def test_a_goal_or_heuristic_with_a_misspelt_direction_is_refused():
    # before: goal="lowest" was taken as "max", which turned the goal (or the baseline) upside down, silently
    values = {i: float(i) for i in range(10)}
    with pytest.raises(ValueError, match="say 'min'"):
        learn.Goal.top(values, count=2, goal="lowest")
    with pytest.raises(ValueError, match="say 'min'"):
        learn.Heuristic("h", scores=values, goal="lowest")
    with pytest.raises(ValueError, match="say 'min'"):
        learn.Portfolio({"u": "ucb"}, goal="lowest")


def test_the_effective_performance_text_of_a_run_without_simulations(tmp_path):
    # before: TypeError (a None formatted as a number): example 01 with --budget 0 ended that way, and so does a
    # report of a run stopped before its first simulation
    import steerflow as sf

    sf.Campaign(tmp_path / "run", progress=False).close()
    trace = learn.Trace.from_journal(tmp_path / "run", pool="simulate")
    goal = learn.Goal.top({i: float(i) for i in range(20)}, count=3, needed=2)
    text = learn.effective_performance(trace, goal, 20, [learn.RandomOrder()]).text()
    assert "did NOT reach it in 0 simulations" in text and "no ratio, since the run made 0 simulation(s)" in text


@pytest.mark.parametrize("option, says", [
    ({"budget": -1}, "budget=-1; give a whole number >= 0"),  # before: a run that did nothing
    ({"slots": 0}, "slots=0; give a whole number >= 1"),  # before: a run that did nothing
    ({"goal": "lowest"}, "goal='lowest'; say 'min'"),  # before: an AgentError after the first model
    ({"model": "nope"}, "Unknown model 'nope'"),  # before: every training task failed
    ({"name": "a/b"}, "Model name 'a/b'"),  # before: an AgentError at the first model
    ({"diversity": 2.0}, "diversity=2.0"),
    ({"simulate": 5}, "simulate=5 is not a function"),
    ({"features": np.zeros((5, 2, 2))}, "features must be a 2-D array"),
])
def test_an_active_learner_checks_its_arguments_when_built(option, says):
    args = {"features": np.arange(5.0).reshape(-1, 1), "simulate": abs, "budget": 3, **option}
    with pytest.raises((ValueError, TypeError), match=re.escape(says)):
        learn.ActiveLearner(list(range(5)), args.pop("features"), args.pop("simulate"), **args)


@pytest.mark.parametrize("option, says", [
    ({"min_points": float("nan")}, "min_points=nan"),  # before: taken, and no model was ever trained
    ({"window": 0}, "window=0"),  # before: taken, and the model never answered
    ({"min_points": "5"}, "min_points='5'"),  # before: a TypeError comparing str and int
    ({"domain_margin": float("nan")}, "domain_margin=nan"),
])
def test_a_surrogate_checks_its_arguments_when_built(option, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        learn.Surrogate(double, error_bound=0.1, **option)
