"""Validation of YAML pipeline specs: every mistake found in one pass, each a `SpecError` naming file, line and field.

`steerflow.pipelines.spec.load` hands a parsed document here and gets back a `PipelineSpec`; the checks live apart
from the spec's data model so that each module keeps one concern.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from . import rules as rules_mod
from .. import stop as stop_mod
from ..errors import AllocationError, SpecError, TaskSpecError
from ..resources import Allocation
from ..task import Executable, Function
from .spec import PLACEHOLDER, PipelineSpec, Stage, placeholders, on_path, short
from .yamlpos import Path_, Document

TOP_FIELDS = ("directory", "description", "allocation", "pools", "stages", "rules", "stop", "engine")
RULES_ALIASES = ("policies",)  # the key's earlier name; specs written with it keep working
STAGE_FIELDS = ("name", "function", "executable", "args", "kwargs", "foreach", "grid", "after", "inputs", "when",
                "params")
FUNCTION_OPTIONS = ("cores", "gpus")
EXECUTABLE_OPTIONS = ("env", "cwd", "pre", "post", "ranks", "cores_per_rank", "gpus_per_rank", "nodes", "launcher")
COMMON_OPTIONS = ("memory_mb", "priority", "timeout", "retries", "pool", "tags")
ALL_STAGE_FIELDS = STAGE_FIELDS + FUNCTION_OPTIONS + EXECUTABLE_OPTIONS + COMMON_OPTIONS
WHEN = ("start", "on-demand")
MAX_STAGE_TASKS = 100_000  # the tasks one stage fans out to at the start
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# a Python format field on a parameter ('{x.real}', '{x[0]}', '{x:.3f}', '{x!r}'), which steerflow does not fill
# (not after '$': a shell's '${x:-default}')
_FORMATTED = re.compile(r"(?<![{$])\{([A-Za-z_][A-Za-z0-9_]*)([.\[:!][^{}]*)\}")
_STAGE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _type(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(type(value), repr(value))


def _suggest(name: str, known: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def validate(doc: Document) -> PipelineSpec:
    """Check a parsed spec completely and build it; raise `SpecError` listing every mistake found."""
    return _Validator(doc).spec()


class _Validator:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.fail = doc.fail
        self.folder = Path(doc.file).resolve().parent
        self.errors: list[SpecError] = []  # every mistake found, so that one load reports them all

    def attempt(self, check: Any, *args: Any, default: Any = None) -> Any:
        """Run one independent check; a mistake is collected (and ``default`` returned) instead of ending the load."""
        try:
            return check(*args)
        except SpecError as exc:
            self.errors.append(exc)
            return default

    def spec(self) -> PipelineSpec:
        try:
            spec = self._spec()
        except SpecError as exc:  # a mistake the rest cannot be checked past: report it with those found so far
            self.errors.append(exc)
        if self.errors:
            raise SpecError("\n".join(str(e) for e in sorted(self.errors, key=_line_of)))
        return spec

    def _spec(self) -> PipelineSpec:
        data = self.doc.data
        if not isinstance(data, dict):
            self.fail((), f"a spec is a mapping with 'stages' (and optionally {', '.join(TOP_FIELDS[:2])}, "
                      f"{', '.join(TOP_FIELDS[2:5])}, stop); got {_type(data)}.")
        for key in data:
            self.attempt(self._unknown, (), {key: None}, TOP_FIELDS, "top-level field", RULES_ALIASES)
        if "stages" not in data:
            self.fail((), "the spec has no 'stages'; list at least one stage with a name and a function or "
                      "executable.")
        directory = data.get("directory")
        if directory is not None and (not isinstance(directory, str) or not directory):
            self.attempt(self.fail, ("directory",), f"expected a directory path (a string), got {directory!r}.")
        description = data.get("description", "")
        if not isinstance(description, str):
            self.attempt(self.fail, ("description",), f"expected text, got {_type(description)}.")
        raw = data["stages"]
        if not isinstance(raw, list) or not raw:
            self.fail(("stages",), f"expected a non-empty list of stages, got {_type(raw)}.")
        stages: list[Stage] = []
        for i, item in enumerate(raw):
            stage = self.attempt(self.stage, i, item, {s.name: s.index for s in stages})
            if stage is not None:
                stages.append(stage)
        allocation = self.attempt(self.allocation, data)
        engine = self.attempt(self.engine, data)
        stop = self.attempt(self.stop, data, default={})
        order: list[str] = []
        pools: dict[str, dict[str, int]] = {}
        if not self.errors:  # these checks look across stages: only once every stage is right
            names = [s.name for s in stages]
            for s in stages:
                self.attempt(self.dependencies, s, names, stages)
            order = self.attempt(self.order, stages, default=[]) if not self.errors else []
            pools = self.attempt(self.pools, data, stages, default={})
        spec = PipelineSpec(file=Path(self.doc.file), directory=directory, allocation=allocation, pools=pools,
                            stages=stages, rules=[], stop=stop, description=description, engine=engine, order=order,
                            _lines=self.doc.lines)
        if not self.errors:
            spec.rules = self.rules(data, spec)
        if not self.errors and stages and all(s.on_demand for s in stages) and not spec.rules:
            self.fail(("stages", 0, "when"), "every stage is 'when: on-demand' and no rule submits any, so nothing "
                      "would run; let a stage run at the start (leave 'when' out), "
                      "or add the rule that submits it (top-k-refine, acquire).")
        return spec

    # ---- helpers
    def _unknown(self, path: Path_, mapping: dict, known: tuple[str, ...], what: str,
                 accepted: tuple[str, ...] = ()) -> None:
        for key in mapping:
            if key not in known and key not in accepted:
                self.fail(path + (key,), f"unknown {what} {key!r}.{_suggest(key, known)} Known: {', '.join(known)}.")

    def _mapping(self, path: Path_, value: Any, what: str) -> dict:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping of {what}, got {_type(value)}.")
        return value

    # ---- top level
    def allocation(self, data: dict) -> Allocation | None:
        value = data.get("allocation")
        if value is None or value == "auto":
            return None
        if value == "detect":
            return Allocation.detect()
        if not isinstance(value, dict):
            self.fail(("allocation",), f"expected 'auto', 'detect' or a mapping like {{nodes: 1, cores: 2, gpus: 0}}, "
                      f"got {value!r}.")
        self._unknown(("allocation",), value, ("nodes", "cores", "gpus", "memory_mb"), "allocation field")
        for key, low in (("nodes", 1), ("cores", 1), ("gpus", 0), ("memory_mb", 0)):
            if key in value and (isinstance(value[key], bool) or not isinstance(value[key], int) or value[key] < low):
                self.fail(("allocation", key), f"expected an integer >= {low}, got {value[key]!r}.")
        try:
            return Allocation.declare(nodes=value.get("nodes", 1), cores=value.get("cores", 1),
                                      gpus=value.get("gpus", 0), memory_mb=value.get("memory_mb", 0))
        except AllocationError as exc:  # sizes past the bounds (a typo like cores: 10000000000)
            key = next((k for k in ("nodes", "cores", "gpus", "memory_mb") if str(exc).startswith(k)), None)
            self.fail(("allocation",) + ((key,) if key else ()), str(exc))

    def engine(self, data: dict) -> Any:
        value = data.get("engine")
        if value is None or value in ("local", "dask"):
            return value
        from ..engines import DASK_OPTIONS

        if not isinstance(value, dict) or list(value) != ["dask"] or not isinstance(value["dask"] or {}, dict):
            self.fail(("engine",), f"expected 'local', 'dask' or {{dask: {{scheduler: tcp://host:port}}}}, got {value!r}.")
        self._unknown(("engine", "dask"), value["dask"] or {}, DASK_OPTIONS, "Dask engine option")
        return value

    def pools(self, data: dict, stages: list[Stage]) -> dict[str, dict[str, int]]:
        pools = self._mapping(("pools",), data.get("pools", {}) or {}, "pool names to {cores: N, gpus: M}")
        used = {s.options.get("pool", s.name) for s in stages}
        for name, quota in pools.items():
            path = ("pools", name)
            if name not in used:
                self.fail(path, f"no stage uses the pool {name!r}.{_suggest(name, sorted(used))} A stage's pool is "
                          "its name unless it sets 'pool'.")
            self._mapping(path, quota, "cores and gpus")
            self._unknown(path, quota, ("cores", "gpus"), "quota field")
            for key, value in quota.items():
                if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                    self.fail(path + (key,), f"expected an integer >= 0 (or null: no cap), got {value!r}.")
        return pools

    def stop(self, data: dict) -> dict[str, Any]:
        value = self._mapping(("stop",), data.get("stop", {}) or {}, "conditions (tasks, wall)")
        self._unknown(("stop",), value, ("tasks", "wall"), "stop condition")
        tasks = value.get("tasks")
        if "tasks" in value and (isinstance(tasks, bool) or not isinstance(tasks, int) or tasks < 1):
            self.fail(("stop", "tasks"), f"expected a number of task results >= 1, got {tasks!r}.")
        if "wall" in value:
            try:
                if stop_mod.parse_duration(value["wall"]) <= 0:
                    raise ValueError("it must be positive")
            except (ValueError, TypeError, AttributeError) as exc:
                self.fail(("stop", "wall"), f"expected a duration like '90s', '15m' or '2h' (or seconds): {exc}")
        return dict(value)

    def rules(self, data: dict, spec: PipelineSpec) -> list[tuple[str, dict[str, Any]]]:
        given = [key for key in ("rules", *RULES_ALIASES) if key in data]
        if len(given) > 1:
            self.fail((given[1],), f"'{given[1]}' is the old name of 'rules'; merge the two lists under 'rules'.")
        key = given[0] if given else "rules"
        raw = data.get(key, []) or []
        if not isinstance(raw, list):
            self.fail((key,), f"expected a list of {{name: ..., params: {{...}}}}, got {_type(raw)}.")
        out = []
        for i, item in enumerate(raw):
            rule = self.attempt(self.rule, (key, i), item, spec)
            if rule is not None:
                out.append(rule)
        return out

    def rule(self, path: Path_, item: Any, spec: PipelineSpec) -> tuple[str, dict[str, Any]]:
        if isinstance(item, str):
            item = {"name": item}
        self._mapping(path, item, "name and params")
        self._unknown(path, item, ("name", "params"), "rule field")
        if "name" not in item:
            self.fail(path, f"a rule needs a name; known rules: {', '.join(rules_mod.names())}.")
        params = self._mapping(path + ("params",), item.get("params", {}) or {}, "parameter names to values")
        try:
            rules_mod.get(item["name"])
        except rules_mod.RuleError as exc:
            self.fail(path + ("name",), str(exc))
        try:
            rules_mod.create(item["name"], params).check(spec)
        except rules_mod.RuleError as exc:
            where = path + (("params", exc.param) if exc.param in params else ("params",) if params else ())
            self.fail(where, str(exc))
        return item["name"], dict(params)

    # ---- stages
    def stage(self, i: int, item: Any, earlier: dict[str, int]) -> Stage:
        path: Path_ = ("stages", i)
        if not isinstance(item, dict):
            self.fail(path, f"a stage is a mapping with a name and a function or executable, got {_type(item)}.")
        for key in item:  # each unknown field is its own mistake; the others are still checked
            self.attempt(self._unknown, path, {key: None}, ALL_STAGE_FIELDS, "stage field")
        name = item.get("name")
        if not isinstance(name, str) or not _STAGE_NAME.fullmatch(name):
            self.fail(path + ("name",) if "name" in item else path,
                      f"a stage needs a name of letters, digits, '_', '-' or '.', got {name!r}.")
        if name in earlier:
            self.fail(path + ("name",), f"stage {name!r} is already defined by stages[{earlier[name]}].")
        if ("function" in item) == ("executable" in item):
            both = "gives both 'function' and 'executable'" if "function" in item else "has neither"
            self.fail(path + (("executable",) if "function" in item else ()),
                      f"stage {name!r} {both}; give exactly one: 'function: module:callable' or "
                      "'executable: [program, arg, ...]'.")
        kind = "function" if "function" in item else "executable"
        a_kind = "a function" if kind == "function" else "an executable"
        wrong = EXECUTABLE_OPTIONS if kind == "function" else FUNCTION_OPTIONS
        for key in item:
            if key in wrong:
                hint = ("cores_per_rank/gpus_per_rank" if kind == "executable" else "a function stage's cores/gpus")
                other = "executable" if kind == "function" else "function"
                self.fail(path + (key,), f"{key!r} is an option of {other} stages; stage {name!r} runs {a_kind} "
                          f"(use {hint}).")
        when = item.get("when", "start")
        if when not in WHEN:
            self.fail(path + ("when",), f"expected one of {', '.join(WHEN)}, got {when!r}.")
        declared = self.names(path + ("params",), item.get("params", []))
        if declared and when != "on-demand":
            self.fail(path + ("params",), "only 'when: on-demand' stages declare params (whoever submits them gives "
                      "the values); use foreach or grid to fan out at the start.")
        foreach = self.fanout(path + ("foreach",), item.get("foreach", {}))
        grid = self.fanout(path + ("grid",), item.get("grid", {}))
        lengths = {k: len(v) for k, v in foreach.items()}
        if len(set(lengths.values())) > 1:
            first = next(iter(lengths))
            other = next(k for k, n in lengths.items() if n != lengths[first])
            self.fail(path + ("foreach", other), f"has {lengths[other]} values but foreach.{first} has "
                      f"{lengths[first]}; foreach zips its lists, so they need equal lengths (use grid for every "
                      "combination).")
        tasks = max(lengths.values(), default=1)
        for key, values in grid.items():
            tasks *= len(values)
            if tasks > MAX_STAGE_TASKS:
                self.fail(path + ("grid", key), f"stage {name!r} would fan out to more than {MAX_STAGE_TASKS:,} "
                          "tasks; split it, or submit that many from a Python campaign's agent in waves.")
        for key in set(foreach) & set(grid) | (set(declared) & (set(foreach) | set(grid))):
            self.fail(path + (("grid" if key in grid else "foreach"), key),
                      f"parameter {key!r} is defined twice; give each parameter in one of params, foreach, grid.")
        args = item.get("args", [])
        if not isinstance(args, list):
            self.fail(path + ("args",), f"expected a list of arguments, got {_type(args)}.")
        kwargs = self._mapping(path + ("kwargs",), item.get("kwargs", {}) or {}, "argument names to values")
        for key in kwargs:
            if not isinstance(key, str) or not _IDENT.fullmatch(key):
                self.fail(path + ("kwargs", key), f"{key!r} is not a valid keyword argument name.")
        if kind == "function":  # a wrong module:callable is reported beside the other mistakes of the stage
            target: Any = self.attempt(self.callable, path + ("function",), item["function"], default=print)
        else:
            if args or kwargs:
                self.fail(path + ("args" if args else "kwargs",), "an executable stage takes its arguments in "
                          "'executable' (a list, or a string split like a shell command).")
            target = self.argv(path + ("executable",), item["executable"])
        inputs = item.get("inputs", {})
        if isinstance(inputs, str):
            inputs = {"inputs": inputs}
        inputs = self._mapping(path + ("inputs",), inputs or {}, "keyword argument names to stage names "
                               "(or one stage name)")
        if inputs and kind == "executable":
            self.fail(path + ("inputs",), "an executable stage cannot receive inputs; make it a function stage, "
                      "or use 'after' to order it.")
        for kwarg in inputs:
            if kwarg in kwargs:
                self.fail(path + ("inputs",), f"keyword argument {kwarg!r} is given by both kwargs and inputs.")
        after = item.get("after", [])
        after = [after] if isinstance(after, str) else after
        if not isinstance(after, list) or any(not isinstance(a, str) for a in after):
            self.fail(path + ("after",), f"expected a list of stage names, got {after!r}.")
        known = set(declared) | set(foreach) | set(grid)
        templates = [("args", args), ("kwargs", kwargs), ("executable", item.get("executable")),
                     ("env", item.get("env"))]
        for key, value in templates:
            for where, param, text in formatted(value if key != "executable" else _as_list(value), path + (key,)):
                if param in known:  # (before: passed on literally, without a word)
                    self.fail(where if key != "executable" or isinstance(value, list) else path + (key,),
                              f"{text!r}: steerflow fills a placeholder only whole, as '{{{param}}}' (no attribute, "
                              "index, format spec or conversion); compute the value you need as a parameter of its "
                              "own, or write '{{' and '}}' for literal braces.")
            for where, param in placeholders(value if key != "executable" else _as_list(value), path + (key,)):
                if param not in known:
                    self.fail(where if key != "executable" or isinstance(value, list) else path + (key,),
                              f"placeholder '{{{param}}}' names no parameter of stage {name!r} (its parameters: "
                              f"{', '.join(sorted(known)) or 'none'}); define it in foreach, grid or params, or "
                              "write '{{' and '}}' for literal braces.")
        options = {k: item[k] for k in (*FUNCTION_OPTIONS, *EXECUTABLE_OPTIONS, *COMMON_OPTIONS) if k in item}
        options = self.options(path, name, kind, target, options)
        return Stage(i, name, kind, target, args, kwargs, foreach, grid, tuple(after), dict(inputs),
                     when == "on-demand", declared, options)

    def names(self, path: Path_, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or any(not isinstance(v, str) or not _IDENT.fullmatch(v) for v in value):
            self.fail(path, f"expected a list of parameter names (identifiers), got {value!r}.")
        return tuple(value)

    def fanout(self, path: Path_, value: Any) -> dict[str, list[Any]]:
        self._mapping(path, value or {}, "parameter names to lists of values")
        for key, values in (value or {}).items():
            if not isinstance(key, str) or not _IDENT.fullmatch(key):
                self.fail(path + (key,), f"{key!r} is not a valid parameter name (use letters, digits and '_').")
            if not isinstance(values, list):
                self.fail(path + (key,), f"expected a list, got {values!r}.")
            if not values:
                self.fail(path + (key,), "expected a non-empty list of values.")
        return dict(value or {})

    def callable(self, path: Path_, text: Any) -> Any:
        if not isinstance(text, str) or text.count(":") != 1:
            self.fail(path, f"expected 'module:callable' (like 'steps:simulate'), got {text!r}.")
        module_name, attr = text.split(":")
        if not all(_IDENT.fullmatch(p) for p in module_name.split(".")) or \
                not all(_IDENT.fullmatch(p) for p in attr.split(".")):
            self.fail(path, f"expected 'module:callable' with dotted names on both sides, got {text!r}.")
        try:
            obj = _import(module_name, self.folder)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
                self.fail(path, f"module {module_name!r} was not found; put {module_name.split('.')[0]}.py next to "
                          f"the spec (in {self.folder}) or install it.")
            self.fail(path, f"importing module {module_name!r} failed: {exc}.")
        except Exception as exc:  # noqa: BLE001 - the user's module raised while importing
            self.fail(path, f"importing module {module_name!r} raised {type(exc).__name__}: {exc}")
        for part in attr.split("."):
            if not hasattr(obj, part):
                public = [n for n in dir(obj) if not n.startswith("_")]
                self.fail(path, f"{getattr(obj, '__name__', obj)!r} has no attribute {part!r}.{_suggest(part, public)}")
            obj = getattr(obj, part)
        if not callable(obj):
            self.fail(path, f"{text!r} is {type(obj).__name__} {short(obj)}, not callable; name a function.")
        return obj

    def argv(self, path: Path_, value: Any) -> list[str]:
        if isinstance(value, str):
            try:
                value = shlex.split(value)
            except ValueError as exc:
                self.fail(path, f"cannot split the command {value!r}: {exc}.")
        if not isinstance(value, list) or not value:
            self.fail(path, f"expected a command: a list [program, arg, ...] or a string, got {_type(value)}.")
        for i, arg in enumerate(value):
            if isinstance(arg, (dict, list)) or arg is None:
                self.fail(path + (i,), f"a command's arguments are strings or numbers, got {arg!r}.")
        return [str(a) for a in value]

    def options(self, path: Path_, name: str, kind: str, target: Any, options: dict[str, Any]) -> dict[str, Any]:
        if "timeout" in options and isinstance(options["timeout"], str):
            try:
                options["timeout"] = stop_mod.parse_duration(options["timeout"])
            except ValueError as exc:
                self.fail(path + ("timeout",), str(exc))
        if isinstance(options.get("tags"), str):
            options["tags"] = [options["tags"]]
        if "tags" in options and not isinstance(options["tags"], list):
            self.fail(path + ("tags",), f"expected a list of tags, got {options['tags']!r}.")
        if isinstance(options.get("cwd"), str):
            options["cwd"] = str(self.folder / options["cwd"])
        if isinstance(options.get("env"), dict):
            options["env"] = {k: str(v) if isinstance(v, (int, float)) else v for k, v in options["env"].items()}
        try:  # build one task now so bad options fail at load, with the line of the field
            if kind == "function":
                Function(target, **options)
            else:
                probe = target if not PLACEHOLDER.search(target[0]) else [sys.executable]
                Executable(probe, **options)
        except TaskSpecError as exc:
            field_ = exc.field if exc.field in options else ("executable" if exc.field == "argv" else None)
            self.fail(path + ((field_,) if field_ else ()), f"stage {name!r}: {exc}")
        return options

    def dependencies(self, stage: Stage, names: list[str], stages: list[Stage]) -> None:
        path: Path_ = ("stages", stage.index)
        for key, deps in (("after", stage.after), ("inputs", tuple(stage.inputs.values()))):
            for dep in deps:
                if dep not in names:
                    self.fail(path + (key,), f"there is no stage {dep!r}.{_suggest(dep, names)} Stages: "
                              f"{', '.join(names)}.")
                if stages[names.index(dep)].on_demand and not stage.on_demand:
                    self.fail(path + (key,), f"stage {stage.name!r} runs at the start, so it cannot wait for the "
                              f"on-demand stage {dep!r}, whose tasks do not exist yet.")

    def order(self, stages: list[Stage]) -> list[str]:
        by_name = {s.name: s for s in stages}
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        order: list[str] = []

        def visit(name: str, trail: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = trail[trail.index(name):] + [name]
                first = by_name[cycle[0]]
                key = "after" if cycle[1] in first.after else "inputs"
                self.fail(("stages", first.index, key), f"dependency cycle: {' -> '.join(cycle)}; a stage cannot "
                          "wait for itself.")
            state[name] = 1
            for dep in by_name[name].depends_on:
                visit(dep, trail + [name])
            state[name] = 2
            order.append(name)

        for s in stages:
            visit(s.name, [])
        return order


def _line_of(error: SpecError) -> int:
    """The line number in ``file:LINE: ...`` (errors are reported in the order of the file)."""
    parts = str(error).split(":", 2)
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else 0


def formatted(value: Any, path: tuple) -> Any:
    """(path, parameter, text) of each Python format field on a parameter in a template (see ``_FORMATTED``)."""
    if isinstance(value, str):
        for match in _FORMATTED.finditer(value):
            yield path, match.group(1), match.group(0)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from formatted(v, path + (i,))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from formatted(v, path + (k,))


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _import(module_name: str, folder: Path) -> Any:
    """Import a module, preferring the spec's folder (a same-named module loaded from elsewhere is reloaded)."""
    on_path(folder)
    importlib.invalidate_caches()
    top = module_name.split(".")[0]
    loaded = sys.modules.get(top)
    local = (folder / f"{top}.py").exists() or (folder / top / "__init__.py").exists()
    where = getattr(loaded, "__file__", None) or ""
    if loaded is not None and local and not os.path.abspath(where).startswith(str(folder.resolve()) + os.sep):
        for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
            del sys.modules[name]
    return importlib.import_module(module_name)
