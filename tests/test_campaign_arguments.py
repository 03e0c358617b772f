"""Mistakes in a Campaign's arguments: found before the directory holds a journal, so a fixed script just runs."""

from __future__ import annotations

import pytest

import steerflow as sf


@pytest.mark.parametrize("kwargs, message", [
    ({"pools": {"a": {"core": 1}}}, "unknown quota field"),
    ({"pools": {"a": {"cores": -1}}}, "a quota is an integer >= 0"),
    ({"pools": {"a": {"cores": "2"}}}, "a quota is an integer >= 0"),
    ({"pools": {"a": True}}, "give its quota as"),
    ({"engine": "nosuch"}, "Unknown engine 'nosuch'"),
    ({"on_agent_error": "ignore"}, "on_agent_error must be"),
])
def test_a_bad_argument_leaves_no_journal_behind(tmp_path, kwargs, message):
    directory = tmp_path / "c"
    with pytest.raises((ValueError, sf.SteeringError), match=message):
        sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False, **kwargs)
    assert not (directory / "journal.db").exists()
    fixed = sf.Campaign(directory, allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False)
    assert not fixed.resumed  # the same directory, as a new campaign: no `already holds a campaign journal`
    fixed.close()


def test_a_task_in_an_undeclared_pool_warns_once(tmp_path):
    camp = sf.Campaign(tmp_path / "c", allocation=sf.Allocation.declare(nodes=1, cores=1), progress=False,
                       pools={"simulate": 1})
    with pytest.warns(UserWarning, match="Pool 'simulat' is not among the campaign's pools"):
        camp.submit(sf.Function(abs, args=(-1,), pool="simulat"))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        camp.submit(sf.Function(abs, args=(-2,), pool="simulat"))  # said once is enough
        camp.submit(sf.Function(abs, args=(-3,)))  # the default pool is always there
        camp.set_quota("later", cores=1)
        camp.submit(sf.Function(abs, args=(-4,), pool="later"))  # declared at run time
    assert camp.run()["results_seen"] == 4
