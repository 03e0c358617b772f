"""A task's name, pool and tags are labels, journaled with each task (a name three times: its column, its
fingerprint, its description). Before: nothing bounded them, and 50 tasks named with 1 MB strings (say,
``name=str(array)``) made a 152 MB journal. Now a label past 1,000 characters is a TaskSpecError naming the field,
with the label cut in the message."""

from __future__ import annotations

import pytest

import steerflow as sf
from steerflow.errors import TaskSpecError
from steerflow.task import MAX_LABEL


@pytest.mark.parametrize("field", ["name", "pool", "tags"])
def test_a_label_past_the_bound_is_refused_in_a_short_sentence(field):
    value = "x" * 1_000_000
    options = {field: (value,) if field == "tags" else value}
    with pytest.raises(TaskSpecError, match=f"'{field}'.* is 1,000,000 characters long; .* at most 1,000") as info:
        sf.Function(len, args=("a",), **options)
    assert len(str(info.value)) < 400
    with pytest.raises(TaskSpecError):
        sf.Executable(["/bin/true"], **options)


def test_labels_up_to_the_bound_run_and_the_journal_stays_small(tmp_path):
    camp = sf.Campaign(tmp_path / "run", progress=False)
    for i in range(50):
        camp.submit(sf.Function(len, args=("a",), name=f"{i}".rjust(MAX_LABEL, "n"), tags=("t" * MAX_LABEL,)))
    assert camp.run()["states"] == {"done": 50}
    assert (tmp_path / "run" / "journal.db").stat().st_size < 2_000_000


def test_an_event_name_past_the_bound_is_the_agents_error(tmp_path):
    camp = sf.Campaign(tmp_path / "run", progress=False)
    said = []

    @camp.on_start
    def start(ctx):
        try:
            ctx.emit("e" * 100_000, 1)
        except sf.SteeringError as exc:
            said.append(str(exc))

    camp.run()
    assert said and "at most 1,000 characters, not 100,000" in said[0] and len(said[0]) < 300
