"""YAML loading that remembers each key's and item's line, so spec errors can name file:line:field."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any, NoReturn

import yaml

from ..errors import SpecError

Path_ = tuple[Any, ...]  # a field's place in the document: ("stages", 0, "foreach", "x")

# Bounds on what a spec may be, so that no input hangs or exhausts the loader (an alias bomb, deep nesting).
MAX_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 64  # mappings and lists inside each other
MAX_VALUES = 200_000  # keys, items and scalars, counting every use of an alias
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it: ~15x faster


def _decode(file: str, data: bytes) -> str:
    """The spec's text: UTF-8 (a BOM allowed), or UTF-16 with its BOM, as YAML says; whatever the locale."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(f"{file}:{line}: the spec is not {encoding.split('-sig')[0].upper()} text (byte "
                        f"0x{data[exc.start]:02x} at column {column}); save it as UTF-8, the encoding YAML files "
                        "use.") from None


class Document:
    """The spec's data plus the 1-based line of every key and list item, for error messages."""

    def __init__(self, path: Path) -> None:
        self.file = str(path)
        self.lines: dict[Path_, int] = {(): 1}
        try:
            text = _decode(self.file, path.read_bytes())
        except OSError as exc:
            raise SpecError(f"{self.file}: cannot read the spec: {exc.strerror or exc}.") from None
        if len(text) > MAX_BYTES:
            raise SpecError(f"{self.file}:1: the spec is {len(text):,} characters long, more than the "
                            f"{MAX_BYTES:,} a pipeline spec may have; generate the values in a Python campaign instead.")
        try:
            _check_depth(self.file, text)
            root = yaml.compose(text, Loader=_LOADER)
            if root is None:
                raise SpecError(f"{self.file}:1: the spec is empty; it needs at least 'stages'.")
            self._walk(root)
            self.data = yaml.constructor.SafeConstructor().construct_document(root)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
            raise SpecError(f"{self.file}:{mark.line + 1 if mark else 1}: this is not valid YAML: {what}.") from None
        except yaml.YAMLError as exc:
            raise SpecError(f"{self.file}:1: this is not valid YAML: {exc}.") from None

    def _walk(self, root: yaml.Node) -> None:
        """Record every key's and item's line; refuse recursive aliases and specs that expand past the bounds.

        Iterative (no recursion limit to hit) and counting each use of an alias, so an alias bomb
        stops after MAX_VALUES values instead of expanding exponentially.
        """
        stack: list[tuple[yaml.Node, Path_, tuple[int, ...]]] = [(root, (), ())]
        count = 0
        while stack:
            node, path, above = stack.pop()
            count += 1
            if count > MAX_VALUES:
                self.fail(path, f"the spec expands to more than {MAX_VALUES:,} values (aliases counted each time "
                          "they are used); is an alias repeating itself? Generate large inputs in a Python campaign.",
                          line=node.start_mark.line + 1)
            if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
                continue
            if id(node) in above:
                self.fail(path, "is a recursive alias (it contains itself); a spec must be a tree.",
                          line=node.start_mark.line + 1)
            if len(path) > MAX_DEPTH:
                self.fail(path, f"is nested more than {MAX_DEPTH} levels deep.", line=node.start_mark.line + 1)
            inner = (*above, id(node))
            children: list[tuple[yaml.Node, Path_, tuple[int, ...]]] = []
            if isinstance(node, yaml.MappingNode):
                seen: set[str] = set()
                for key, value in node.value:
                    if not isinstance(key, yaml.ScalarNode):
                        self.fail(path, "a key must be a plain value (text or a number), not a list or mapping.",
                                  line=key.start_mark.line + 1)
                    name = key.value
                    if name in seen and name != "<<":
                        self.fail(path + (name,), f"is given twice (second at line {key.start_mark.line + 1}); "
                                  "keep one.", line=key.start_mark.line + 1)
                    seen.add(name)
                    self.lines[path + (name,)] = key.start_mark.line + 1
                    children.append((value, path + (name,), inner))
            else:
                for i, item in enumerate(node.value):
                    self.lines[path + (i,)] = item.start_mark.line + 1
                    children.append((item, path + (i,), inner))
            stack.extend(reversed(children))

    def line(self, path: Path_) -> int:
        path = tuple(path)
        while path not in self.lines:
            path = path[:-1]
        return self.lines[path]

    def fail(self, path: Path_, message: str, line: int | None = None) -> NoReturn:
        where = dotted(path)
        raise SpecError(f"{self.file}:{line or self.line(path)}: {where + ': ' if where else ''}{message}")


def _check_depth(file: str, text: str) -> None:
    """Refuse deep nesting from the event stream, before the (recursive) composer sees it."""
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else 1
                raise SpecError(f"{file}:{line}: the spec is nested more than {MAX_DEPTH} levels deep (lists and "
                                "mappings inside each other); flatten it.")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
