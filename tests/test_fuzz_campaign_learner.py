"""An ActiveLearner in a campaign with odd simulation results and odd features.

Before: a simulation that returned None, a string or an array (not one number) stopped the campaign with an
AgentError from the learner's handler, and every resume of it stopped again at the same replayed result; features
holding an infinity made every training fail, so the learner never had a model.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import steerflow as sf
from steerflow import learn

CANDIDATES = list(range(40))
X = np.c_[np.arange(40.0), np.cos(np.arange(40.0))]


def returns_none(c):
    return None if c % 4 == 0 else float(c % 7)


def returns_text(c):
    return "no convergence" if c % 4 == 0 else float(c % 7)


def returns_vector(c):
    return np.array([1.0, 2.0]) if c % 4 == 0 else float(c % 7)


def returns_number(c):
    return float(c % 7)


def run(directory, simulate, features=X, resume=None):
    camp = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=3), resume=resume,
                       pools={"simulate": 2, "train": 1, "infer": 1}, progress=False)
    learner = camp.add_agent(learn.ActiveLearner(CANDIDATES, features, simulate, budget=24, slots=2, retrain_after=4,
                                                 min_train=4, name="al", seed=0))
    return camp.run(), learner


@pytest.mark.parametrize("simulate", [returns_none, returns_text, returns_vector])
def test_a_result_that_is_no_number_is_no_label_and_the_campaign_goes_on_also_on_resume(tmp_path, simulate, capfd):
    summary, learner = run(tmp_path / "c", simulate)
    assert summary["stop_reason"].startswith("idle") and summary["states"].get("failed", 0) == 0, summary
    assert learner.not_finite >= 1 and learner.models >= 1 and len(learner.values) >= 12
    assert "which is no training label" in capfd.readouterr().err
    again, relearned = run(tmp_path / "c", simulate, resume=True)  # the replay meets the same results
    assert again["stop_reason"].startswith("idle") and relearned.values == learner.values


def test_features_with_infinities_still_train_a_model(tmp_path, capfd):
    features = X.copy()
    features[::2, 1] = math.inf  # every other row: each training set holds some
    features[1::4, 0] = -math.inf
    summary, learner = run(tmp_path / "c", returns_number, features=features)
    assert learner.models >= 1 and not getattr(learner, "failed_trainings", 0), summary  # every fit failed before
    assert "training failed" not in capfd.readouterr().err


def test_a_forest_fits_and_predicts_rows_with_infinities_and_nan():
    x = np.array([[1.0, 0.0], [math.inf, 1.0], [2.0, -math.inf], [3.0, math.nan], [4.0, 2.0], [5.0, 1e300]])
    model = learn.Forest(n_estimators=8, seed=0).fit(x, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    mean, std = model.predict(x)
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std))


def test_candidates_named_with_commas_are_read_back_whole_from_the_journal(tmp_path):
    """The journal joins a task's tags with commas: the candidate "C1,C2" was read back as "C1"."""
    names = ["C1,C2", "50%", "100%2C", "plain", 7, -3, "a,,b,"]
    camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False)
    for name in names:
        camp.submit(sf.Function(abs, args=(-1,), pool="simulate", tags=(learn.candidate_tag(name), "other")))
    camp.run()
    trace = learn.Trace.from_journal(tmp_path / "c", pool="simulate")
    assert sorted(map(str, (e.candidate for e in trace.evaluations))) == sorted(map(str, names))
    assert {e.candidate for e in trace.evaluations} >= {7, -3}  # integers stay integers
