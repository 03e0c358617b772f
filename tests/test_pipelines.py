"""YAML pipeline specs: fan-outs, executables, dependent stages, steering rules, and errors that name line and field."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest

from steerflow import Campaign, SpecError, stop
from steerflow.pipelines import rules, spec
from steerflow.agents import on_result

pytestmark = pytest.mark.usefixtures("no_leftover_processes")  # nothing it starts outlives a test

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "02-yaml-pipeline" / "pipeline.yaml"

STEPS = '''
import os, time

def square(x, scale=1):
    return x * x * scale

def pair(a, b):
    return [a, b]

def total(inputs):
    return sum(inputs)

def gather(inputs, extra, tag="t"):
    return {"inputs": inputs, "extra": extra, "tag": tag}

def value(x):
    time.sleep(30 if x == 99 else 0.01)
    return x

def flaky(x, marker_dir):
    marker = os.path.join(marker_dir, f"tried-{x}")
    if x == 2 and not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("the first attempt fails")
    return x

def score(x):
    return {"x": x, "loss": (x - 3) ** 2}

def refine(x, result, rank):
    return {"x": x, "rank": rank, "loss": result["loss"]}

NOT_CALLABLE = 3
'''

HEAD = "allocation: {nodes: 1, cores: 2}\n"


def write(tmp_path: Path, body: str, head: str = HEAD) -> Path:
    (tmp_path / "sfsteps.py").write_text(STEPS)
    path = tmp_path / "pipeline.yaml"
    path.write_text(head + textwrap.dedent(body))
    return path


def run(tmp_path: Path, body: str) -> tuple[spec.Pipeline, dict]:
    pipeline = spec.load(write(tmp_path, body)).prepare(tmp_path / "run", progress=False)
    summary = pipeline.campaign.run(stop=stop.wall("60s"))
    return pipeline, summary


def values(pipeline: spec.Pipeline, stage: str) -> list:
    return [f.result() for f in pipeline.futures[stage]]


# ---- running specs -------------------------------------------------------------------------------

def test_foreach_zips_and_grid_multiplies(tmp_path):
    pipeline, summary = run(tmp_path, """
        stages:
          - name: sq
            function: "sfsteps:square"
            args: ["{x}"]
            kwargs: {scale: "{s}"}
            foreach: {x: [1, 2, 3]}
            grid: {s: [1, 10]}
          - name: pairs
            function: sfsteps:pair
            kwargs: {a: "{a}", b: "b={b}"}     # inside text a placeholder is formatted
            foreach: {a: [1, 2], b: [x, y]}
    """)
    assert values(pipeline, "sq") == [1, 10, 4, 40, 9, 90]  # foreach outer, grid inner
    assert values(pipeline, "pairs") == [[1, "b=x"], [2, "b=y"]]
    assert summary["states"] == {"done": 8} and summary["stop_reason"].startswith("idle")
    assert pipeline.params_of(pipeline.futures["sq"][1]) == {"x": 1, "s": 10}
    assert pipeline.summary() == {"sq": {"tasks": 6, "done": 6}, "pairs": {"tasks": 2, "done": 2}}


def test_executable_stage_with_placeholders(tmp_path):
    exe = sys.executable
    pipeline, _ = run(tmp_path, f"""
        stages:
          - name: listed
            executable: ["{exe}", "-c", "print({{x}} * 2, {{{{'k': 1}}}})"]
            foreach: {{x: [3, 4]}}
          - name: shell_words
            executable: "{exe} -c 'import os; print(os.environ[\\"WHO\\"], {{n}})'"
            env: {{WHO: "n{{n}}"}}
            grid: {{n: [7]}}
    """)
    assert [r.stdout.strip() for r in values(pipeline, "listed")] == ["6 {'k': 1}", "8 {'k': 1}"]
    assert [r.stdout.strip() for r in values(pipeline, "shell_words")] == ["n7 7"]


def test_dependent_stage_receives_inputs_in_fanout_order(tmp_path):
    pipeline, _ = run(tmp_path, """
        stages:
          - name: summary
            function: sfsteps:gather
            inputs: {inputs: sq, extra: other}
            kwargs: {tag: done}
          - name: sq
            function: sfsteps:square
            args: ["{x}"]
            foreach: {x: [3, 1, 2]}
          - name: other
            function: sfsteps:total
            kwargs: {inputs: [1, 2]}
          - name: last
            function: sfsteps:total
            inputs: sq
            after: [summary]
    """)
    assert values(pipeline, "summary") == [{"inputs": [9, 1, 4], "extra": [3], "tag": "done"}]
    assert values(pipeline, "last") == [14]
    task = pipeline.campaign.runtime.task  # finished records live as long as their futures (held here)
    summary_started = task(pipeline.futures["summary"][0].task_id).started
    assert all(task(f.task_id).ended <= summary_started for f in pipeline.futures["sq"])


def test_stop_when_stops_the_campaign(tmp_path):
    t0 = time.monotonic()
    pipeline, summary = run(tmp_path, """
        stages:
          - name: sim
            function: sfsteps:value
            args: ["{x}"]
            foreach: {x: [1, 9, 99]}
        rules:
          - {name: stop-when, params: {stage: sim, above: 8}}
    """)
    assert time.monotonic() - t0 < 20  # the 30 s task was cancelled, not waited for
    assert summary["stop_reason"] == "stop-when: sim result 9 (task 2) is above 8"
    assert pipeline.rules[0].triggered.value == 9


def test_policies_is_accepted_as_the_old_name_of_rules(tmp_path):
    pipeline, summary = run(tmp_path, """
        stages:
          - name: sim
            function: sfsteps:value
            args: ["{x}"]
            foreach: {x: [1, 9, 99]}
        policies:
          - {name: stop-when, params: {stage: sim, above: 8}}
    """)
    assert summary["stop_reason"] == "stop-when: sim result 9 (task 2) is above 8"
    assert isinstance(pipeline.rules[0], rules.StopWhen)


def test_retry_failed_resubmits_with_the_same_arguments(tmp_path):
    pipeline, summary = run(tmp_path, f"""
        stages:
          - name: sim
            function: sfsteps:flaky
            kwargs: {{x: "{{x}}", marker_dir: "{tmp_path}"}}
            foreach: {{x: [1, 2, 3]}}
          - name: after_sim
            function: sfsteps:total
            kwargs: {{inputs: [1]}}
            after: [sim]
        rules:
          - name: retry-failed
            params: {{stage: sim, times: 2}}
    """)
    states = [f.state.value for f in pipeline.futures["sim"]]
    assert states == ["done", "failed", "done", "done"]  # the retry is a fourth task of the stage
    assert pipeline.futures["sim"][3].result() == 2
    assert pipeline.params_of(pipeline.futures["sim"][3]) == {"x": 2}
    assert pipeline.rules[0].retried == {pipeline.futures["sim"][1].task_id: 1}
    # a dependent stage waits on the first attempts' futures, so the failure reached it (use `retries:` there)
    assert pipeline.futures["after_sim"][0].state.value == "failed"
    assert summary["states"] == {"done": 3, "failed": 2}


def test_top_k_refine_submits_the_best_results(tmp_path):
    pipeline, _ = run(tmp_path, """
        stages:
          - name: scan
            function: sfsteps:score
            args: ["{x}"]
            foreach: {x: [0, 1, 2, 3, 4, 5, 6]}
          - name: refine
            function: sfsteps:refine
            when: on-demand
            params: [x, result, rank]
            kwargs: {x: "{x}", result: "{result}", rank: "{rank}"}
        rules:
          - name: top-k-refine
            params: {stage: scan, refine: refine, k: 3, key: loss, order: min}
    """)
    assert values(pipeline, "refine") == [{"x": 3, "rank": 1, "loss": 0}, {"x": 2, "rank": 2, "loss": 1},
                                          {"x": 4, "rank": 3, "loss": 1}]  # ties: submission order


def test_rebalance_moves_quota_when_a_stage_is_done(tmp_path):
    path = write(tmp_path, """
        pools: {first: {cores: 2}, second: {cores: 0}}
        stages:
          - name: first
            function: sfsteps:value
            args: ["{x}"]
            foreach: {x: [1, 2]}
          - name: second
            function: sfsteps:square
            args: [5]
        rules:
          - name: rebalance
            params: {stage: first, quotas: {first: {cores: 0}, second: {cores: 2}}}
    """)
    pipeline = spec.load(path).prepare(tmp_path / "run", progress=False)
    pipeline.campaign.run(stop=stop.wall("60s"))
    assert values(pipeline, "second") == [25]  # it could only run once the quota moved
    task = pipeline.campaign.runtime.task
    assert task(pipeline.futures["second"][0].task_id).started >= max(
        task(f.task_id).ended for f in pipeline.futures["first"])


def test_build_stop_condition_and_resume(tmp_path):
    path = write(tmp_path, f"""
        directory: {tmp_path / "from-spec"}
        stages:
          - name: sq
            function: sfsteps:square
            args: ["{{x}}"]
            foreach: {{x: [1, 2]}}
        stop: {{tasks: 10, wall: 1h30m}}
    """)
    loaded = spec.load(path)
    condition = loaded.stop_condition()
    assert isinstance(condition, stop.Condition)
    assert condition == stop.tasks(10) | stop.wall("1h30m")
    camp = loaded.build(progress=False)
    assert isinstance(camp, Campaign) and camp.directory == tmp_path / "from-spec"
    first = camp.run(stop=condition)
    assert first["states"] == {"done": 2}
    again = spec.run_file(path, resume=True, progress=False)  # nothing runs twice: results come from the journal
    assert again["resumed"] and again["stages"] == {"sq": {"tasks": 2, "done": 2}}


def test_the_example_runs(tmp_path):
    summary = spec.run_file(EXAMPLE, directory=tmp_path / "example", progress=False)
    assert summary["stages"]["scan"] == {"tasks": 18, "done": 18}
    assert summary["stages"]["summarise"] == {"tasks": 1, "done": 1}
    assert summary["stages"]["refine"] == {"tasks": 2, "done": 2}


# ---- the steering-rule registry ---------------------------------------------------------------------------

def test_rule_registry(tmp_path):
    assert {"stop-when", "retry-failed", "top-k-refine", "rebalance"} <= set(rules.names())
    assert all(rules.describe().values())
    with pytest.raises(rules.RuleError, match="Did you mean 'stop-when'") as info:
        rules.get("stop-wen")
    with pytest.raises(rules.RuleError, match="has no parameter 'abve'. Did you mean 'above'") as info:
        rules.create("stop-when", {"stage": "a", "abve": 1})
    assert info.value.param == "abve"

    seen = []

    @rules.register("test-collect")
    class Collect(rules.Rule):
        """Collect the values of one stage (a test rule)."""

        def __init__(self, stage: str) -> None:
            self.stage = stage

        @on_result()
        def grab(self, result, ctx):
            if self.stage in result.tags:
                seen.append(result.value)

    pipeline, _ = run(tmp_path, """
        stages:
          - {name: sq, function: "sfsteps:square", args: ["{x}"], foreach: {x: [2, 3]}}
        rules: [{name: test-collect, params: {stage: sq}}]
    """)
    assert sorted(seen) == [4, 9]


# ---- errors name the file, the line and the field -----------------------------------------------------

STAGE = "stages:\n  - name: a\n    function: sfsteps:square\n"  # lines 2-4 after HEAD

ERRORS = [
    ("stages:\n  - name: a\n    function: sfsteps:square\n    foreach: {x: 3}\n",
     "pipeline.yaml:5: stages[0].foreach.x: expected a list, got 3."),
    ("stagse: []\n", "pipeline.yaml:2: stagse: unknown top-level field 'stagse'. Did you mean 'stages'?"),
    (STAGE + "    core: 1\n", "pipeline.yaml:5: stages[0].core: unknown stage field 'core'. Did you mean 'cores'?"),
    ("stages:\n  - name: a\n    args: [1]\n", "pipeline.yaml:3: stages[0]: stage 'a' has neither; give exactly one"),
    (STAGE + "    executable: [echo]\n", "pipeline.yaml:5: stages[0].executable: stage 'a' gives both"),
    (STAGE + "    after: [b]\n  - name: bb\n    function: sfsteps:square\n",
     "pipeline.yaml:5: stages[0].after: there is no stage 'b'. Did you mean 'bb'?"),
    (STAGE + "    inputs: nope\n", "pipeline.yaml:5: stages[0].inputs: there is no stage 'nope'."),
    (STAGE + "    after: [c]\n  - name: b\n    function: sfsteps:square\n    after: [a]\n"
     "  - name: c\n    function: sfsteps:square\n    inputs: b\n",
     "pipeline.yaml:5: stages[0].after: dependency cycle: a -> c -> b -> a"),
    (STAGE + "    after: a\n", "pipeline.yaml:5: stages[0].after: dependency cycle: a -> a"),
    (STAGE + "    foreach:\n      x: [1, 2, 3]\n      y: [1, 2]\n",
     "pipeline.yaml:7: stages[0].foreach.y: has 2 values but foreach.x has 3"),
    (STAGE + "    args: [1, \"{y}\"]\n    foreach: {x: [1]}\n",
     "pipeline.yaml:5: stages[0].args[1]: placeholder '{y}' names no parameter of stage 'a' (its parameters: x)"),
    ("stages:\n  - name: a\n    executable: \"echo {z}\"\n",
     "pipeline.yaml:4: stages[0].executable: placeholder '{z}' names no parameter"),
    ("stages:\n  - name: a\n    function: no_such_module_xyz:f\n",
     "pipeline.yaml:4: stages[0].function: module 'no_such_module_xyz' was not found"),
    ("stages:\n  - name: a\n    function: sfsteps:sqaure\n",
     "pipeline.yaml:4: stages[0].function: 'sfsteps' has no attribute 'sqaure'. Did you mean 'square'?"),
    ("stages:\n  - name: a\n    function: sfsteps:NOT_CALLABLE\n",
     "pipeline.yaml:4: stages[0].function: 'sfsteps:NOT_CALLABLE' is int 3, not callable"),
    ("stages:\n  - name: a\n    function: sfsteps.square\n",
     "pipeline.yaml:4: stages[0].function: expected 'module:callable'"),
    (STAGE + "rules:\n  - name: stop-wen\n", "pipeline.yaml:6: rules[0].name: There is no rule named "
     "'stop-wen'. Did you mean 'stop-when'?"),
    (STAGE + "rules:\n  - name: stop-when\n    params:\n      stage: a\n      abve: 3\n",
     "pipeline.yaml:9: rules[0].params.abve: Rule 'stop-when' has no parameter 'abve'. Did you mean 'above'?"),
    (STAGE + "rules:\n  - name: stop-when\n    params: {stage: b, above: 3}\n",
     "pipeline.yaml:7: rules[0].params.stage: There is no stage named 'b'."),
    (STAGE + "rules:\n  - name: top-k-refine\n    params: {stage: a, refine: a}\n",
     "pipeline.yaml:7: rules[0].params.refine: Stage 'a' runs at the start; declare it with 'when: on-demand'"),
    (STAGE + "    cores: 0\n", "pipeline.yaml:5: stages[0].cores: stage 'a': Task field 'cores' = 0: must be at least 1."),
    (STAGE + "    cores: 4\n", "pipeline.yaml:5: stages[0].cores: stage 'a': Task field 'cores'"),  # at build
    (STAGE + "    timeout: soon\n", "pipeline.yaml:5: stages[0].timeout: Cannot read the duration 'soon'"),
    (STAGE + "    ranks: 2\n", "pipeline.yaml:5: stages[0].ranks: 'ranks' is an option of executable stages"),
    ("stages:\n  - name: a\n    executable: [no-such-program-xyz]\n",
     "pipeline.yaml:4: stages[0].executable: stage 'a': Task field 'argv' = 'no-such-program-xyz': was not found"),
    (STAGE + "  - name: a\n    function: sfsteps:square\n",
     "pipeline.yaml:5: stages[1].name: stage 'a' is already defined by stages[0]."),
    (STAGE + "    foreach: {x: [1]\n", "pipeline.yaml:6: this is not valid YAML: while parsing a flow mapping"),
    (STAGE + "    args: [1]\n    args: [2]\n", "pipeline.yaml:6: stages[0].args: is given twice"),
    (STAGE + "stop: {wall: forever}\n", "pipeline.yaml:5: stop.wall: expected a duration"),
    (STAGE + "pools: {b: {cores: 1}}\n", "pipeline.yaml:5: pools.b: no stage uses the pool 'b'"),
    ("stages:\n  - name: r\n    function: sfsteps:refine\n    when: on-demand\n    params: [x]\n"
     "    kwargs: {x: \"{x}\", result: \"{res}\"}\n",
     "pipeline.yaml:7: stages[0].kwargs.result: placeholder '{res}' names no parameter of stage 'r'"),
    (STAGE + "policies:\n  - name: stop-wen\n", "pipeline.yaml:6: policies[0].name: There is no rule named"),
    (STAGE + "rules: []\npolicies: []\n", "pipeline.yaml:6: policies: 'policies' is the old name of 'rules'"),
    ("", "pipeline.yaml:1: the spec is empty"),
]


@pytest.mark.parametrize("body,message", ERRORS, ids=[m.split(": ", 1)[1][:40] for _, m in ERRORS])
def test_spec_errors_name_line_and_field(tmp_path, body, message):
    path = write(tmp_path, body, head=HEAD if body else "")
    with pytest.raises(SpecError) as info:
        spec.load(path).build(tmp_path / "run", progress=False).close()
    assert str(info.value).startswith(str(path) + ":"), str(info.value)
    assert message in str(info.value), str(info.value)
    assert not (tmp_path / "run" / "driver.lock").exists() or _unlocked(tmp_path / "run")


def _unlocked(directory: Path) -> bool:
    """A failed build released the directory: another campaign can open it."""
    Campaign(directory, resume=True, progress=False).close()
    return True


def test_a_spec_with_several_mistakes_reports_all_of_them(tmp_path):
    path = write(tmp_path, """
        stages:
          - name: a
            function: sfsteps:sqaure
            corse: 1
            cores: 0
          - name: b
            function: sfsteps:square
            cores: 0
          - name: c
            executable: [no-such-program-xyz]
        stop: {wall: forever}
        colour: blue
    """)
    with pytest.raises(SpecError) as info:
        spec.load(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 7, lines
    assert [line.split(": ", 2)[1] for line in lines] == [
        "stages[0].function", "stages[0].corse", "stages[0].cores", "stages[1].cores", "stages[2].executable",
        "stop.wall", "colour"]
    assert all(line.startswith(f"{path}:") for line in lines)
