"""Running a YAML pipeline: the `Pipeline` built from a validated spec, which submits its stages and follows them.

`steerflow.pipelines.spec` reads and validates a spec (`load`, `PipelineSpec`); this module is the run-time
side. `prepare` creates the campaign through its public API, registers the spec's rules and
submits the stages that run at the start; the `Pipeline` it returns holds each stage's futures,
submits more tasks of a stage (on-demand stages, resubmissions) and raises ``stage-done`` when
every submitted task of a stage has finished. `run` also runs the campaign (`steerflow.pipelines.spec.run_file`
loads a file and calls it). `PipelineSpec.prepare`, `.build` and `steerflow.pipelines.spec.Pipeline` lead here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from . import rules as rules_mod
from .. import launch
from .. import stop as stop_mod
from ..agents import Result, SteeringError, on_result
from ..campaign import Campaign
from ..errors import SpecError, TaskSpecError
from ..futures import TaskFuture
from .spec import PLACEHOLDER, PipelineSpec, Stage, on_path, short
from .yamlpos import dotted
from ..task import Executable, Function, TaskSpec


def prepare(spec: PipelineSpec, directory: str | os.PathLike[str] | None = None, resume: bool | None = None,
            progress: bool | None = None) -> Pipeline:
    """Build the campaign and return the `Pipeline` (campaign, each stage's futures) around it."""
    on_path(spec.file.parent)
    # (only None means "the spec's own": an empty or wrong directory is Campaign's error, not the spec's place)
    target = directory if directory is not None else spec.directory or os.path.join("runs", spec.file.stem)
    with launch.pipeline_source(spec.file):  # `steerflow resume DIR` runs this spec file again
        # every stage's pool is declared (no quota unless the spec gives one): an undeclared one would be a typo
        pools = {**{stage.options.get("pool", stage.name): None for stage in spec.stages}, **spec.pools}
        campaign = Campaign(target, allocation=spec.allocation, pools=pools, resume=resume,
                            progress=progress, engine=spec.engine)
    try:
        pipeline = Pipeline(spec, campaign)
        campaign.add_agent(pipeline)  # first: it counts a result before any rule sees it
        for name, params in spec.rules:
            rule = rules_mod.create(name, params)
            if isinstance(rule, rules_mod.Rule):
                rule.attach(pipeline)
            campaign.add_agent(rule)
            pipeline.rules.append(rule)
        for name in spec.order:
            if not spec.stage(name).on_demand:  # type: ignore[union-attr]
                try:
                    pipeline.submit_stage(name)
                except TaskSpecError as exc:  # e.g. more cores than the allocation has
                    stage = spec.stage(name)
                    path = ("stages", stage.index, exc.field)  # type: ignore[union-attr]
                    raise SpecError(f"{spec.file}:{spec._lines.get(path) or spec._lines.get(path[:2], 1)}: "
                                    f"{dotted(path)}: stage {name!r}: {exc}") from None
    except BaseException:
        campaign.close()
        raise
    return pipeline


def run(spec: PipelineSpec, directory: str | os.PathLike[str] | None = None, resume: bool | None = None,
        progress: bool | None = None) -> dict[str, Any]:
    """Build and run a loaded spec until its stop condition or until idle; return the campaign's summary.

    The summary gains ``stages``: per stage, the number of tasks and their final states.
    """
    pipeline = spec.prepare(directory, resume=resume, progress=progress)
    summary = pipeline.campaign.run(stop=stop_condition(spec))
    summary["stages"] = pipeline.summary()
    return summary


def stop_condition(spec: PipelineSpec) -> stop_mod.Condition | None:
    """A spec's ``stop`` entries, either of which ends the run (None: run until idle)."""
    conditions: list[stop_mod.Condition] = []
    if "tasks" in spec.stop:
        conditions.append(stop_mod.tasks(spec.stop["tasks"]))
    if "wall" in spec.stop:
        conditions.append(stop_mod.wall(spec.stop["wall"]))
    if not conditions:
        return None
    condition = conditions[0]
    for other in conditions[1:]:
        condition = condition | other
    return condition


def make_task(stage: Stage, params: dict[str, Any], after: tuple[TaskFuture, ...], inputs: dict[str, Any],
              **overrides: Any) -> TaskSpec:
    """The task description for one parameter set of a stage (`Stage.make`)."""
    options = {**stage.options, **overrides}
    options["tags"] = (stage.name, *options.get("tags", ()))
    options.setdefault("pool", stage.name)
    label = stage.name + ("[" + ",".join(f"{k}={short(v)}" for k, v in params.items()) + "]" if params else "")
    if stage.kind == "function":
        kwargs = {**_fill(stage.kwargs, params), **inputs}
        return Function(stage.target, _fill(stage.args, params), kwargs, after=after, name=label[:80], **options)
    if "env" in options:
        options["env"] = _fill(options["env"], params, text=True)
    return Executable(_fill(stage.target, params, text=True), after=after, name=label[:80], **options)


def _fill(value: Any, params: dict[str, Any], text: bool = False) -> Any:
    """Replace placeholders; a string that is exactly one placeholder keeps the value's type unless ``text``."""
    if isinstance(value, str):
        match = PLACEHOLDER.fullmatch(value)
        if match and match.group(1) and not text:
            return params[match.group(1)]
        return PLACEHOLDER.sub(lambda m: m.group(0)[0] if m.group(1) is None else str(params[m.group(1)]), value)
    if isinstance(value, list):
        return [_fill(v, params, text) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, params, text) for k, v in value.items()}
    return value


@dataclass
class _TaskInfo:
    stage: str
    params: dict[str, Any]
    after: tuple[TaskFuture, ...]


class Pipeline:
    """A built spec: its campaign, each stage's futures, and submission of more tasks of a stage.

    It is also the agent that counts finished tasks per stage and raises the ``stage-done`` event
    (payload: the stage's name) when every submitted task of a stage has finished.
    """

    handles_failures = False  # it only counts results; a failure is handled by a rule such as retry-failed

    def __init__(self, spec: PipelineSpec, campaign: Campaign) -> None:
        self.spec = spec
        self.campaign = campaign
        self.futures: dict[str, list[TaskFuture]] = {s.name: [] for s in spec.stages}
        self.rules: list[Any] = []
        self._info: dict[int, _TaskInfo] = {}
        self._finished: dict[str, int] = {s.name: 0 for s in spec.stages}

    def stage(self, name: str) -> Stage:
        stage = self.spec.stage(name)
        if stage is None:
            names = ", ".join(self.spec.stage_names())
            raise SteeringError(f"The pipeline has no stage {name!r}; its stages: {names}.")
        return stage

    def submit_stage(self, name: str, params: dict[str, Any] | None = None) -> list[TaskFuture]:
        """Submit a stage's tasks (its fan-out, with ``params`` for the parameters it declares)."""
        stage = self.stage(name)
        missing = [p for p in stage.declared if p not in (params or {})]
        if missing:
            raise SteeringError(f"Stage {name!r} needs the parameter(s) {', '.join(missing)} to be submitted.")
        after = tuple(f for dep in stage.after for f in self.futures[dep])
        inputs = {kwarg: list(self.futures[dep]) for kwarg, dep in stage.inputs.items()}
        submitted = []
        for combo in stage.combos(params):
            future = self.campaign.submit(make_task(stage, combo, after, inputs))
            self._record(stage.name, combo, after, future)
            submitted.append(future)
        return submitted

    def resubmit(self, result: Result, **overrides: Any) -> TaskFuture:
        """Submit a finished task of a stage again, with the same arguments (``overrides``: task options)."""
        info = self._info.get(result.key)
        if info is None:
            raise SteeringError(f"Task {result.key} is not a task of this pipeline's stages.")
        stage = self.stage(info.stage)
        options = {**stage.options, **overrides}
        options["tags"] = tuple(result.tags)
        options.setdefault("pool", stage.name)
        if stage.kind == "function":
            spec: TaskSpec = Function(stage.target, result.args, result.kwargs, after=info.after, name=result.name,
                                      **options)
        else:
            spec = Executable(list(result.args), after=info.after, name=result.name, **options)
        future = self.campaign.submit(spec)
        self._record(stage.name, info.params, info.after, future)
        return future

    def _record(self, stage: str, params: dict[str, Any], after: tuple[TaskFuture, ...], future: TaskFuture) -> None:
        self._info[future.task_id] = _TaskInfo(stage, params, after)
        self.futures[stage].append(future)

    def stage_of(self, task: Result | TaskFuture | int) -> str | None:
        info = self._info.get(_key(task))
        return info.stage if info else None

    def params_of(self, task: Result | TaskFuture | int) -> dict[str, Any]:
        info = self._info.get(_key(task))
        return dict(info.params) if info else {}

    def submitted(self, stage: str) -> int:
        return len(self.futures[stage])

    def finished(self, stage: str) -> int:
        return self._finished[stage]

    def complete(self, stage: str) -> bool:
        """Every task submitted so far for the stage has finished (and there is at least one)."""
        return 0 < self.submitted(stage) == self._finished[stage]

    @on_result()
    def _count(self, result: Result, ctx: Any) -> None:
        stage = self.stage_of(result)
        if stage is not None:
            self._finished[stage] += 1
            if self.complete(stage):
                ctx.emit(rules_mod.STAGE_DONE, stage)

    def summary(self) -> dict[str, dict[str, int]]:
        """Per stage: tasks submitted and their states."""
        out: dict[str, dict[str, int]] = {}
        for name, futures in self.futures.items():
            counts: dict[str, int] = {"tasks": len(futures)}
            for future in futures:
                state = future.state.value
                counts[state] = counts.get(state, 0) + 1
            out[name] = counts
        return out


def _key(task: Result | TaskFuture | int) -> int:
    return task.key if isinstance(task, Result) else task.task_id if isinstance(task, TaskFuture) else task
