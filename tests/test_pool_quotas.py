"""Pools that ask for more than the allocation has are told so (a warning naming pool and allocation)."""

from __future__ import annotations

import warnings

import pytest

import steerflow as sf


def test_a_pool_larger_than_the_allocation_warns(tmp_path):
    with pytest.warns(UserWarning, match=r"Pool 'simulate' asks for 6 cores, but the allocation has 2") as record:
        camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=2),
                           pools={"simulate": {"cores": 6}, "train": {"cores": 2}}, progress=False)
    assert record[0].filename == __file__  # it points at the line that asked
    with pytest.warns(UserWarning, match=r"Pool 'train' asks for 1 GPUs, but the allocation has 0"):
        camp.set_quota("train", cores=1, gpus=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        camp.set_quota("train", cores=2)  # within the allocation: silent
    camp.close()
