"""YAML loading that remembers each key's and item's line, so spec errors can name file:line:field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import yaml

from ..errors import SpecError

Path_ = tuple[Any, ...]  # a field's place in the document: ("stages", 0, "foreach", "x")


class Document:
    """The spec's data plus the 1-based line of every key and list item, for error messages."""

    def __init__(self, path: Path) -> None:
        self.file = str(path)
        self.lines: dict[Path_, int] = {(): 1}
        try:
            text = path.read_text()
        except OSError as exc:
            raise SpecError(f"{self.file}: cannot read the spec: {exc.strerror or exc}.") from None
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
            if root is None:
                raise SpecError(f"{self.file}:1: the spec is empty; it needs at least 'stages'.")
            self._walk(root, ())
            self.data = yaml.constructor.SafeConstructor().construct_document(root)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
            raise SpecError(f"{self.file}:{mark.line + 1 if mark else 1}: this is not valid YAML: {what}.") from None
        except yaml.YAMLError as exc:
            raise SpecError(f"{self.file}:1: this is not valid YAML: {exc}.") from None

    def _walk(self, node: yaml.Node, path: Path_) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else str(key.value)
                if name in seen and name != "<<":
                    self.fail(path + (name,), f"is given twice (second at line {key.start_mark.line + 1}); "
                              "keep one.", line=key.start_mark.line + 1)
                seen.add(name)
                self.lines[path + (name,)] = key.start_mark.line + 1
                self._walk(value, path + (name,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.lines[path + (i,)] = item.start_mark.line + 1
                self._walk(item, path + (i,))

    def line(self, path: Path_) -> int:
        path = tuple(path)
        while path not in self.lines:
            path = path[:-1]
        return self.lines[path]

    def fail(self, path: Path_, message: str, line: int | None = None) -> NoReturn:
        where = dotted(path)
        raise SpecError(f"{self.file}:{line or self.line(path)}: {where + ': ' if where else ''}{message}")


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
