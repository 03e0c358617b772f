"""A function's journaled description without arguments is pickled once per function and label, and stays exact."""

from __future__ import annotations

from steerflow import blobs, serialize
from steerflow.task import Function


def noop():
    return None


class Unhashable:
    __hash__ = None  # type: ignore[assignment]

    def __call__(self):
        return None


def test_bare_descriptions_are_reused_and_exact(tmp_path):
    store = blobs.Store(tmp_path)
    first = blobs.spec_blob(store, Function(noop))
    assert blobs.spec_blob(store, Function(noop)) is first  # pickled once
    assert serialize.loads(first) == {"fn": "noop", "function": f"{__name__}:noop", "args": (), "kwargs": {}}
    named = serialize.loads(blobs.spec_blob(store, Function(noop, name="other")))
    assert named["fn"] == "other"  # another label: its own description
    assert serialize.loads(blobs.spec_blob(store, Function(noop, (3,))))["args"] == (3,)
    assert serialize.loads(blobs.spec_blob(store, Function(Unhashable())))["fn"] == "Unhashable"
    store.close()
