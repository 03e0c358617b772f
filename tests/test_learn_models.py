"""Models with an uncertainty: the forest's spread grows away from the data; GP; the optional torch ensemble."""

from __future__ import annotations

import numpy as np
import pytest

from steerflow.learn import Forest, GaussianProcess, TorchEnsemble, make_model

pytest.importorskip("sklearn")


def data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1)) * 0.5  # the data covers [0, 0.5] only
    return x, np.sin(6 * x[:, 0])


@pytest.mark.parametrize("model", [Forest(n_estimators=30), Forest(kind="extra", n_estimators=30),
                                   GaussianProcess(restarts=0)])
def test_uncertainty_is_larger_away_from_the_data(model):
    x, y = data()
    model.fit(x, y)
    inside = np.linspace(0.05, 0.45, 20).reshape(-1, 1)
    outside = np.linspace(0.9, 1.0, 20).reshape(-1, 1)
    mean_in, std_in = model.predict(inside)
    _, std_out = model.predict(outside)
    assert np.abs(mean_in - np.sin(6 * inside[:, 0])).mean() < 0.15
    assert std_out.mean() > std_in.mean() and np.all(std_in > 0)


def test_make_model_by_name_template_or_factory_and_clear_errors():
    assert isinstance(make_model("forest"), Forest) and make_model("extra").kind == "extra"
    template = Forest(n_estimators=7)
    copy = make_model(template)
    assert copy is not template and copy.n_estimators == 7
    assert isinstance(make_model(lambda: GaussianProcess()), GaussianProcess)
    with pytest.raises(ValueError, match="choose one of"):
        make_model("nope")
    with pytest.raises(RuntimeError, match="fit"):
        Forest().predict([[0.0]])


def test_torch_ensemble_is_optional():
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install torch"):
            TorchEnsemble().fit(*data())
        return
    x, y = data()
    mean, std = TorchEnsemble(members=3, epochs=100).fit(x, y).predict(x)
    assert mean.shape == std.shape == (len(x),)
