"""A resumed script that submits far fewer tasks than the journal holds: a few warnings, then one line, not one each.

Before: a campaign of 200 tasks resumed by a script submitting 3 printed 197 warnings ("The journal delivered task N's
result, but this run has not submitted it"), one per task.
"""

from __future__ import annotations

import warnings

import steerflow as sf


def same(x):
    return x


def run(directory, n, resume):
    camp = sf.Campaign(directory, progress=False, resume=resume, allocation=sf.Allocation.declare(nodes=1, cores=2))
    seen = []
    camp.on_result()(lambda r, ctx: seen.append(r.value))
    for i in range(n):
        camp.submit(sf.Function(same, args=(i,)))
    summary = camp.run()
    camp.close()
    return summary, sorted(seen)


def test_a_resume_submitting_far_fewer_tasks_warns_a_few_times_then_once(tmp_path):
    run(tmp_path / "c", 120, False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary, seen = run(tmp_path / "c", 3, True)
    said = [str(w.message) for w in caught if "journal" in str(w.message).lower()]
    assert seen == [0, 1, 2] and summary["stop_reason"].startswith("idle")
    assert len(said) == 4 and "without a warning each" in said[-1], said  # was 117
