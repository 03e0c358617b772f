"""Campaign(...) with odd arguments: a campaign that runs, or one full-sentence error before the directory holds a
journal; never an AttributeError from the scheduler or runtime, never a campaign in the current directory."""

from __future__ import annotations

import contextlib
import math
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import steerflow as sf
from steerflow.errors import SteerflowError

pytestmark = pytest.mark.usefixtures("no_leftover_processes")

ONE_CORE = sf.Allocation.declare(nodes=1, cores=1)
ODD = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                st.text(max_size=12), st.binary(max_size=4), st.lists(st.integers(), max_size=2),
                st.just(math.inf), st.just(object()))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"directory": ""}, ValueError, "directory is empty"),
    ({"directory": "  "}, ValueError, "directory is empty"),
    ({"directory": None}, TypeError, "directory must be a path"),
    ({"directory": 7}, TypeError, "directory must be a path"),
    ({"directory": "a\0b"}, ValueError, "NUL byte"),
    ({"allocation": "local"}, TypeError, "allocation must be an Allocation"),
    ({"allocation": 4}, TypeError, "allocation must be an Allocation"),
    ({"engine": 42}, TypeError, "engine must be 'local', 'dask'"),
    ({"pools": [("a", 1)]}, TypeError, "pools must be a dict"),
    ({"pools": {1: 2}}, ValueError, "is not a pool name"),
    ({"pools": {"": 1}}, ValueError, "is not a pool name"),
    ({"lost_retries": -1}, ValueError, "lost_retries must be an integer >= 0"),
    ({"lost_retries": "2"}, ValueError, "lost_retries must be an integer >= 0"),
    ({"lost_retries": float("nan")}, ValueError, "lost_retries must be an integer >= 0"),
])
def test_a_wrong_argument_is_named_before_anything_is_written(tmp_path, monkeypatch, kwargs, error, message):
    monkeypatch.chdir(tmp_path)  # an empty directory name must not become this one
    kwargs = {"directory": tmp_path / "c", "allocation": ONE_CORE, **kwargs}
    with pytest.raises(error, match=message):
        sf.Campaign(kwargs.pop("directory"), progress=False, **kwargs)
    assert not list(tmp_path.rglob("journal.db"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["directory", "allocation", "engine", "pools", "lost_retries", "on_agent_error"]),
       value=st.one_of(ODD, st.dictionaries(ODD.filter(lambda v: isinstance(v, (str, int, float))), ODD, max_size=2)))
def test_fuzz_campaign_arguments(tmp_path, field, value):
    with contextlib.chdir(tmp_path):  # a relative directory (a fuzzed name) lands here
        _one_campaign(tmp_path / "c", field, value)


def _one_campaign(directory: Path, field: str, value: object) -> None:
    kwargs = {"allocation": ONE_CORE, field: value}
    target = kwargs.pop("directory", directory)
    if (Path.cwd() / "journal.db").exists() or directory.exists():
        shutil.rmtree(directory, ignore_errors=True)
        (Path.cwd() / "journal.db").unlink(missing_ok=True)
    try:
        camp = sf.Campaign(target, progress=False, **kwargs)
    except (TypeError, ValueError, SteerflowError) as exc:
        text = str(exc)
        assert text.rstrip().endswith((".", ")", "?")), text  # a sentence, not a bare repr
        assert not (directory / "journal.db").exists()
        event(f"{field}: {type(exc).__name__}")
        return
    event(f"{field}: runs")
    try:
        assert Path(camp.directory) != Path.cwd()
        camp.submit(sf.Function(abs, args=(-1,)))
        assert camp.run(stop=sf.stop.wall("60s"))["results_seen"] == 1
    finally:
        camp.close()
        shutil.rmtree(camp.directory, ignore_errors=True)  # the next example may name it again
