"""An `ActiveLearner` whose model is the user's own class, and misbehaves: every case ends the campaign normally,
says once what went wrong, and resumes.

Before:
- a model class defined in the campaign script (``__main__``) trained, but the registry stored it by reference, so
  every inference task failed ("Can't get attribute 'Model' on <module 'steerflow.engines.worker'>"), and so did
  `learn.load` in another process;
- a failed ranking (that one, or a predict that raised) was silent: the run went on in random order;
- a predict returning a scalar, text, a 2-D array or a negative std stopped the campaign from the learner's handler,
  and every resume of it again at the replayed ranking;
- a fit returning None (fitting in place) registered None as the model.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import steerflow as sf
from steerflow import learn


class Model:
    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode

    def fit(self, x, y):
        self.level = float(np.mean(y))
        return None if self.mode == "fit_returns_none" else self

    def predict(self, x):
        n = len(x)
        answers = {"scalar": (0.0, 1.0), "text": ("a", "b"), "two_d": (np.zeros((n, 2)), np.ones((n, 2))),
                   "negative_std": (np.zeros(n), -np.ones(n)), "too_long": (np.zeros(n + 3), np.ones(n + 3)),
                   "one_array": np.zeros(n)}
        if self.mode == "raises":
            raise ValueError("predict broke")
        return answers.get(self.mode, (np.full(n, self.level), np.ones(n)))


def simulate(i):
    return float((i * 7919) % 101)


def run_learner(directory, mode, resume=False):
    x = np.random.default_rng(0).normal(size=(40, 3))
    camp = sf.Campaign(directory, progress=False, resume=resume, allocation=sf.Allocation.declare(nodes=1, cores=3),
                       pools={"simulate": {"cores": 1}, "train": {"cores": 1}, "infer": {"cores": 1}})
    learner = learn.ActiveLearner(list(range(40)), x, simulate, budget=12, model=Model(mode), slots=1,
                                  retrain_after=4, min_train=4)
    camp.add_agent(learner)
    summary = camp.run(stop=sf.stop.wall(120))
    camp.close()
    return learner, summary


@pytest.mark.parametrize("mode", ["scalar", "text", "two_d", "negative_std", "too_long", "one_array", "raises"])
def test_a_model_answering_nonsense_fails_its_ranking_with_a_sentence_and_the_campaign_goes_on(tmp_path, mode,
                                                                                                capfd):
    learner, summary = run_learner(tmp_path / "c", mode)
    assert learner.simulations == 12 and summary["stop_reason"].startswith("idle"), summary
    assert learner.models >= 1 and learner.failed_rankings >= 1
    err = capfd.readouterr().err
    assert err.count("ranking the pool with the new model failed") == 1, err
    if mode != "raises":
        assert "Model.predict(x) returned" in err, err
    again, summary = run_learner(tmp_path / "c", mode, resume=True)  # the resume replays it, and ends too
    assert again.simulations == 12 and summary["stop_reason"].startswith("idle"), summary


def test_a_fit_returning_none_registers_the_fitted_model(tmp_path):
    learner, _ = run_learner(tmp_path / "c", "fit_returns_none")
    assert learner.models >= 1 and learner.failed_rankings == 0
    model = learn.load(tmp_path / "c", "learner")
    assert isinstance(model, Model) and hasattr(model, "level")


SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import steerflow as sf
    from steerflow import learn

    class Mean:  # the user's own model, in the campaign script
        def fit(self, x, y):
            self.level = float(np.mean(y))
            return self

        def predict(self, x):
            return np.full(len(x), self.level), np.ones(len(x))

    def simulate(i):
        return float(i % 7)

    camp = sf.Campaign(sys.argv[1], progress=False, allocation=sf.Allocation.declare(nodes=1, cores=3),
                       pools={"simulate": {"cores": 1}, "train": {"cores": 1}, "infer": {"cores": 1}})
    learner = learn.ActiveLearner(list(range(30)), np.eye(30), simulate, budget=10, model=Mean(), retrain_after=4,
                                  min_train=4)
    camp.add_agent(learner)
    summary = camp.run()
    print("END", summary["states"], learner.models, learner.failed_rankings)
""")


def test_a_model_class_of_the_campaign_script_ranks_in_inference_tasks_and_loads_elsewhere(tmp_path):
    script = tmp_path / "camp.py"
    script.write_text(SCRIPT)
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "c")], capture_output=True, text=True,
                         timeout=180, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert out.returncode == 0, out.stderr[-3000:]
    states, models, failed = out.stdout.split("END ")[1].rsplit(" ", 2)
    assert "failed" not in states and int(models) >= 1 and int(failed) == 0, (out.stdout, out.stderr[-2000:])
    model = learn.load(tmp_path / "c", "learner")  # in this process, where the script's class is not defined
    assert type(model).__name__ == "Mean" and model.predict(np.zeros((2, 30)))[0].shape == (2,)


@pytest.mark.parametrize("mode", ["scalar", "text", "two_d", "negative_std", "one_array", "raises"])
def test_a_surrogate_whose_model_fails_calls_the_real_function_and_says_so_once(mode, capfd):
    calls = []

    def expensive(x):
        calls.append(x)
        return 2.0 * x

    surrogate = learn.Surrogate(expensive, error_bound=10.0, min_points=2, retrain_every=0, audit_fraction=0.0,
                                domain_points=0)
    for x in (1.0, 2.0, 3.0):
        surrogate.observe((x,), {}, 2.0 * x)
    surrogate.set_model(Model(mode))
    assert [surrogate(x) for x in (1.5, 2.5, 3.5)] == [3.0, 5.0, 7.0]  # was: the model's error, raised here
    assert calls == [1.5, 2.5, 3.5] and surrogate.stats.fallbacks.get("model") == 3
    err = capfd.readouterr().err
    assert err.count("its model's prediction failed") == 1, err


def test_surrogate_observe_keeps_points_outside_the_data_so_far():
    surrogate = learn.Surrogate(lambda x: 2.0 * x, error_bound=1.0, min_points=2)
    for x in (1.0, 2.0, 3.0, -5.0):
        surrogate.observe((x,), {}, 2.0 * x)
    assert surrogate.stats.points == 4  # was 1: each later point was outside the data so far, and dropped


def test_loading_a_damaged_model_version_says_so(tmp_path):
    run_learner(tmp_path / "c", "ok")
    version = learn.ModelRegistry(tmp_path / "c").latest("learner")
    with open(version.path, "r+b") as f:
        f.truncate(50)
    with pytest.raises(ValueError, match=r"Version \d+ of model 'learner' is damaged.*version=N"):
        learn.load(tmp_path / "c", "learner")  # was: pickle's UnpicklingError "pickle data was truncated"


def test_a_trace_of_a_pool_the_campaign_never_used_names_its_pools(tmp_path):
    run_learner(tmp_path / "c", "ok")
    with pytest.raises(ValueError, match=r"pool='simulat'\): .* has no task in that pool; its pools: infer, simulate, "
                                         r"train"):
        learn.Trace.from_journal(tmp_path / "c", pool="simulat")  # was: a trace without simulations, silently
    assert len(learn.Trace.from_journal(tmp_path / "c", pool="simulate").evaluations) == 12
