"""The YAML layer: pipelines written as stages, fan-outs, dependencies and named steering rules.

`spec` reads and validates a YAML file (`load`), `pipeline` builds and runs it (`Pipeline`),
`rules` holds the named steering rules a spec switches on (``rules: [{name: stop-when, ...}]``),
and `yamlpos` remembers every key's line so that errors name file:line:field. Nothing below this
package imports it.
"""

from __future__ import annotations

from ..errors import SpecError
from .pipeline import Pipeline
from .spec import PipelineSpec, Stage, load, run_file

__all__ = ["Pipeline", "PipelineSpec", "SpecError", "Stage", "load", "run_file"]
