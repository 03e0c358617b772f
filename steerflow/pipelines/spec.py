"""YAML pipeline specs: simple campaigns written as stages, fan-outs, dependencies and named rules.

A spec is validated completely when it loads (`load`), and every error is a `SpecError` whose
message names the file, the 1-based line and the field (``pipeline.yaml:7: stages[0].foreach.x:
…``). Building it (`PipelineSpec.build`) creates an ordinary `Campaign` through its public API,
registers the rules and submits the stages that run at the start, and `run_file` also runs it;
that run-time side (the `Pipeline`) is `steerflow.pipelines.pipeline`::

    directory: runs/pipeline                 # campaign directory (`steerflow run --dir` overrides it)
    allocation: {nodes: 1, cores: 2}         # optional; default: this machine, or the SLURM job
    engine: local                            # optional: local, dask, or {dask: {scheduler: tcp://…}}
                                             # ({dask: {jobqueue: {system: slurm, nodes: 4, …}}} for pilots)
    pools: {simulate: {cores: 2}}            # optional quotas; a stage's pool is its name by default
    stages:
      - name: simulate
        function: "steps:simulate"           # module:callable (the spec's folder is on sys.path) ...
        # executable: [python, -c, "print({x})"]   # ... or a program; strings are split like a shell
        args: ["{x}"]                        # "{x}" alone keeps x's type; inside text it is formatted
        kwargs: {scale: 2}
        foreach: {x: [1, 2, 3]}              # zipped lists (equal lengths) ...
        grid: {a: [1, 2]}                    # ... times the cartesian product of these
        cores: 1                             # task options: cores, gpus, ranks, timeout ("90s"), …
      - name: summarise
        function: "steps:summarise"
        after: [simulate]                    # waits for every task of these stages
        inputs: simulate                     # kwarg `inputs`: that stage's results, in fan-out order
      - name: refine
        function: "steps:refine"
        when: on-demand                      # submitted by a rule, with the parameters it declares
        params: [x, result]
        args: ["{x}", "{result}"]
    rules:
      - {name: stop-when, params: {stage: simulate, above: 8}}
    stop: {tasks: 100, wall: "1h"}           # either ends the run

Placeholders are ``{name}`` with an identifier inside; ``{{`` and ``}}`` write literal braces.
Relative paths: ``directory`` is relative to the current directory (as in a Python campaign),
``cwd`` of an executable stage to the spec's folder.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import stop as stop_mod
from ..campaign import Campaign
from ..futures import TaskFuture
from ..resources import Allocation
from ..task import TaskSpec
from .yamlpos import Path_, Document

# The run-time side, steerflow.pipelines.pipeline, imports this module at its top; this module imports it in the
# functions that hand over to it (and `__getattr__` below keeps `steerflow.pipelines.spec.Pipeline` working).
if TYPE_CHECKING:
    from .pipeline import Pipeline

PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


# ---- the validated spec ------------------------------------------------------------------------

@dataclass
class Stage:
    """One validated stage: what it runs, over which parameters, after what, with which task options."""

    index: int
    name: str
    kind: str  # "function" | "executable"
    target: Any  # the callable, or the argv template (list of strings)
    args: list[Any]
    kwargs: dict[str, Any]
    foreach: dict[str, list[Any]]
    grid: dict[str, list[Any]]
    after: tuple[str, ...]
    inputs: dict[str, str]  # kwarg -> stage whose results it receives
    on_demand: bool
    declared: tuple[str, ...]  # parameters an on-demand stage is given by whoever submits it
    options: dict[str, Any]

    @property
    def param_names(self) -> tuple[str, ...]:
        return (*self.declared, *self.foreach, *self.grid)

    @property
    def depends_on(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.after, *self.inputs.values())))

    def combos(self, given: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The parameters of each task, in fan-out order: zipped foreach lists × the grid's product."""
        zipped = [dict(zip(self.foreach, values)) for values in zip(*self.foreach.values())] or [{}]
        product = [dict(zip(self.grid, values)) for values in itertools.product(*self.grid.values())] or [{}]
        base = {name: (given or {})[name] for name in self.declared if name in (given or {})}
        return [{**base, **z, **g} for z in zipped for g in product]

    def make(self, params: dict[str, Any], after: tuple[TaskFuture, ...], inputs: dict[str, Any],
             **overrides: Any) -> TaskSpec:
        """The task description for one parameter set (see `steerflow.pipelines.pipeline.make_task`)."""
        from .pipeline import make_task

        return make_task(self, params, after, inputs, **overrides)


def short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 16 else text[:13] + "..."


def placeholders(value: Any, path: Path_) -> Iterator[tuple[Path_, str]]:
    if isinstance(value, str):
        for match in PLACEHOLDER.finditer(value):
            if match.group(1):
                yield path, match.group(1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from placeholders(v, path + (i,))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from placeholders(v, path + (k,))


@dataclass
class PipelineSpec:
    """A loaded, validated spec. `build` turns it into a campaign; `run_file` also runs it."""

    file: Path
    directory: str | None
    allocation: Allocation | None
    pools: dict[str, dict[str, int]]
    stages: list[Stage]
    rules: list[tuple[str, dict[str, Any]]]
    stop: dict[str, Any]
    description: str = ""
    engine: Any = None  # None (STEERFLOW_ENGINE or local), "local", "dask" or {"dask": {...}}
    order: list[str] = field(default_factory=list)  # stages in an order that respects dependencies

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)

    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def stop_condition(self) -> stop_mod.Condition | None:
        """The spec's ``stop`` entries, either of which ends the run (None: run until idle)."""
        from .pipeline import stop_condition

        return stop_condition(self)

    def prepare(self, directory: str | os.PathLike[str] | None = None, resume: bool | None = None,
                progress: bool | None = None) -> Pipeline:
        """Build the campaign and return the `Pipeline` (campaign, each stage's futures) around it."""
        from .pipeline import prepare

        return prepare(self, directory, resume, progress)

    def build(self, directory: str | os.PathLike[str] | None = None, resume: bool | None = None,
              progress: bool | None = None) -> Campaign:
        """Create the campaign, register the rules and submit the stages that run at the start."""
        return self.prepare(directory, resume, progress).campaign

    _lines: dict[Path_, int] = field(default_factory=dict, repr=False)


def on_path(folder: Path) -> None:
    """Put the spec's folder first on sys.path (workers started later inherit it as PYTHONPATH)."""
    entry = str(folder.resolve())
    if entry in sys.path:
        sys.path.remove(entry)
    sys.path.insert(0, entry)


# ---- public entry points ---------------------------------------------------------------------------

def load(path: str | os.PathLike[str]) -> PipelineSpec:
    """Read and validate a YAML pipeline spec; raise `SpecError` (file, line, field) on any mistake."""
    from .validate import validate  # validate imports this module's data model

    return validate(Document(Path(path)))


def run_file(path: str | os.PathLike[str], directory: str | os.PathLike[str] | None = None,
             resume: bool | None = None, progress: bool | None = None) -> dict[str, Any]:
    """Load, build and run a spec until its stop condition or until idle; return the campaign's summary.

    The summary gains ``stages``: per stage, the number of tasks and their final states.
    """
    from .pipeline import run

    return run(load(path), directory, resume=resume, progress=progress)


def __getattr__(name: str) -> Any:
    """`Pipeline` lives in `steerflow.pipelines.pipeline` (which imports this module); it stays reachable from here."""
    if name == "Pipeline":
        from .pipeline import Pipeline

        return Pipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

