"""The `acquire` steering rule: a YAML pipeline picks what to run next with an acquisition function by name."""

from __future__ import annotations

import textwrap

import pytest

from steerflow import stop
from steerflow.pipelines import rules, spec

pytest.importorskip("sklearn")

STEPS = '''
def objective(x):
    return (x[0] - 0.7) ** 2 + (x[1] - 0.2) ** 2
'''


def pipeline_file(tmp_path, acquisition: str, budget: int = 32) -> str:
    grid = [[i / 9, j / 9] for i in range(10) for j in range(10)]
    (tmp_path / "accsteps.py").write_text(STEPS)
    path = tmp_path / "pipeline.yaml"
    path.write_text(textwrap.dedent(f"""
        allocation: {{nodes: 1, cores: 2}}
        stages:
          - name: evaluate
            function: accsteps:objective
            args: ["{{x}}"]
            when: on-demand
            params: [x]
        rules:
          - name: acquire
            params: {{stage: evaluate, candidates: {grid}, acquisition: {acquisition}, budget: {budget}, batch: 4,
                      goal: min, options: {{}}}}
    """))
    return str(path)


@pytest.mark.parametrize("acquisition", ["ucb", "thompson"])
def test_acquire_rule_finds_the_minimum_of_a_grid_by_name(tmp_path, acquisition):
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        pipeline = spec.load(pipeline_file(tmp_path, acquisition)).prepare(tmp_path / "run", progress=False)
        rule = next(a for a in pipeline.rules if isinstance(a, rules.get("acquire")))
        pipeline.campaign.run(stop=stop.wall("120s"))
    finally:
        sys.path.remove(str(tmp_path))
    assert len(rule.submitted) == 32 and len(rule.values) == 32
    best, value = rule.best()
    assert value < 0.005  # the 100-point grid's minimum, 0.0049 at (0.667, 0.222); 32 random draws: 32 % chance
    assert "acquire" in rules.names()


def test_acquire_rule_errors_name_the_parameter():
    with pytest.raises(rules.RuleError, match="registered") as info:
        rules.create("acquire", {"stage": "s", "candidates": [1, 2], "acquisition": "nope"})
    assert info.value.param == "acquisition"
    with pytest.raises(rules.RuleError) as info:
        rules.create("acquire", {"stage": "s", "candidates": [[1, 2], [3]]})
    assert info.value.param == "candidates"
