"""The model registry: versions on disk, newest or pinned, idempotent re-registration, load in one call."""

from __future__ import annotations

import pytest

from steerflow import learn
from steerflow.learn import ModelRegistry


def test_versions_pin_and_load_after_the_run(tmp_path):
    reg = ModelRegistry(tmp_path)
    v1 = reg.register("m", {"w": 1}, metrics={"mae": 0.5})
    v2 = reg.register("m", {"w": 2}, source=7)
    assert (v1.version, v2.version) == (1, 2)
    assert reg.register("m", {"w": 1}).version == 1  # same bytes: the existing version (a replay on resume)
    assert reg.register("m", {"w": 3}, source=7).version == 2  # same training task: the existing version
    assert reg.latest("m").version == 2 and learn.load(tmp_path, "m") == {"w": 2}
    reg.pin("m", 1)
    assert learn.load(tmp_path, "m") == {"w": 1} and learn.load(tmp_path, "m", version=2) == {"w": 2}
    reg.pin("m", None)
    assert reg.latest("m").version == 2 and reg.versions("m")[0].metrics == {"mae": 0.5}
    with pytest.raises(KeyError, match="versions there"):
        reg.load("m", version=9)
    with pytest.raises(ValueError, match="name"):
        reg.register("a/b", 1)
