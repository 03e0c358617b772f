"""A blob (a large task argument, stored once for provenance) written onto a full disk, or a checkpoint that cannot be
saved, leaves no partial file behind.

Before: the partial temporary file (`.DIGEST.pkl.tmpPID` in blobs/, up to the argument's size; `KEY.pkl.tmpPID` beside
a checkpoint) stayed for ever, holding the space the campaign's resume needed.
"""

from __future__ import annotations

import os

import pytest

from steerflow import blobs

from .small_disk import tmpfs


@pytest.fixture
def small_disk(tmp_path):
    with tmpfs(tmp_path / "disk", "512k") as disk:
        yield disk


def test_a_blob_that_does_not_fit_leaves_no_partial_file(small_disk):
    store = blobs.Store(small_disk)
    kept = store.put(os.urandom(100_000))  # fits
    store.put(os.urandom(2_000_000))  # does not
    store.close()
    assert isinstance(store.error, OSError)
    names = sorted(p.name for p in (small_disk / blobs.FOLDER).iterdir())
    assert names == [f"{kept.digest}.pkl"], names  # was: a .tmp file too



def test_a_checkpoint_that_cannot_be_saved_keeps_the_old_one_and_leaves_no_partial_file(tmp_path, monkeypatch):
    from steerflow import checkpoint

    target = tmp_path / "ckpt" / "task.pkl"
    monkeypatch.setenv("STEERFLOW_CHECKPOINT", str(target))
    checkpoint.save({"step": 1})
    with pytest.raises(Exception):
        checkpoint.save({"step": 2, "data": bytes(1_000_000), "live": lambda: None})  # pickles half, then fails
    assert checkpoint.load() == {"step": 1}
    assert sorted(p.name for p in target.parent.iterdir()) == ["task.pkl"]  # was: task.pkl.tmpPID, 1 MB, too
