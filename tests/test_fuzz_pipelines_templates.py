"""YAML pipeline mistakes that ran without a word.

Before:
- a Python format field on a parameter ('{x[0]}', '{x.real}', '{x:.3f}', '{x!r}') was passed on literally: the task
  got the text "{x[0]}", and '{x:>99999999}' would have asked for a 100 MB string had it been filled;
- a spec whose every stage is 'when: on-demand', with no rule to submit one, ran nothing and exited 0.
A shell's own braces ('${x:-d}', '{a..c}', awk's '{print $1}') and '{{x:.3f}}' stay literal, as before.
"""

from __future__ import annotations

import pytest

from steerflow import SpecError
from steerflow.pipelines import spec


def load(folder, text):
    (folder / "tsteps.py").write_text("def one(**kw):\n    return kw\n")
    path = folder / "p.yaml"
    path.write_text(text)
    return spec.load(path)


@pytest.mark.parametrize("field", ["{x[0]}", "{x.real}", "{x:.3f}", "{x!r}", "v{x:>99999999}", "a-{x.__class__}-b"])
def test_a_format_field_on_a_parameter_is_a_spec_error_naming_it(tmp_path, field):
    text = f"stages:\n  - name: a\n    function: 'tsteps:one'\n    kwargs: {{v: '{field}'}}\n    foreach: {{x: [1]}}\n"
    with pytest.raises(SpecError, match=r"p\.yaml:4: stages\[0\]\.kwargs\.v: .*fills a placeholder only whole"):
        load(tmp_path, text)


def test_shell_braces_and_doubled_braces_stay_literal(tmp_path):
    text = ("stages:\n  - name: a\n    executable: ['bash', '-c', 'echo {a..c} {x} ${x:-d} {{x:.3f}}', \"awk '{print $1}'\"]\n"
            "    foreach: {x: [1]}\n")
    assert [s.name for s in load(tmp_path, text).stages] == ["a"]


def test_only_on_demand_stages_and_no_rule_is_a_spec_error(tmp_path):
    text = "stages:\n  - name: a\n    function: 'tsteps:one'\n    when: on-demand\n    params: [x]\n"
    with pytest.raises(SpecError, match=r"p\.yaml:4: .*every stage is 'when: on-demand' and no rule submits any"):
        load(tmp_path, text)
