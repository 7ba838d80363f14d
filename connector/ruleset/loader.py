"""Read a rule file into plain data while remembering where every value stands (file:line:col).

PyYAML's composer gives us nodes with positions; we turn them into dicts and lists ourselves so that a
duplicate key (which PyYAML would silently let win) is an error, and so that every later check can point
at the exact line an admin has to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from connector.errors import Finding, RuleError

Loc = tuple[str | int, ...]


@dataclass
class Located:
    """A rule file's data, with the position of each key path."""

    path: str
    data: Any
    text: str
    positions: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    # Where a scalar's text begins inside the file, and how it was written, so that an error at column N of
    # a condition maps back onto the file.
    styles: dict[Loc, str | None] = field(default_factory=dict)

    def where(self, loc: Loc) -> tuple[int, int]:
        """The position of `loc`, or of its nearest located parent."""
        while loc:
            if loc in self.positions:
                return self.positions[loc]
            loc = loc[:-1]
        return (1, 1)

    def finding(self, loc: Loc, message: str, *, severity: str = "error", offset: int | None = None) -> Finding:
        line, col = self.where(loc)
        if offset is not None:
            line, col = self.positions.get((*loc, "__value__"), (line, col))
            line, col = self._inside(loc, line, col, offset)
        return Finding(self.path, line, col, message, severity)

    def _inside(self, loc: Loc, line: int, col: int, offset: int) -> tuple[int, int]:
        """Map a character offset within a scalar's value onto the file, for plain, quoted and block scalars."""
        style = self.styles.get(loc)
        value = _get(self.data, loc)
        if not isinstance(value, str):
            return line, col
        before = value[:offset]
        if style in ("|", ">"):
            # Block scalars start on the next line; folded ones join lines with spaces, so count by lines of
            # the source rather than of the value.
            src_lines = self.text.splitlines()[line:]
            consumed = 0
            for i, src in enumerate(src_lines):
                stripped = src.strip()
                if consumed + len(stripped) >= offset:
                    indent = len(src) - len(src.lstrip())
                    return line + 1 + i, indent + 1 + (offset - consumed)
                consumed += len(stripped) + 1
            return line, col
        if "\n" not in before:
            return line, col + offset + (1 if style in ("'", '"') else 0)
        return line + before.count("\n"), len(before.rsplit("\n", 1)[1]) + 1


def _get(data: Any, loc: Loc) -> Any:
    for key in loc:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def load_text(text: str, path: str) -> Located:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise RuleError([Finding(path, line, col, f"not valid YAML: {exc.problem or exc}")]) from None
    located = Located(path=path, data=None, text=text)
    findings: list[Finding] = []
    if root is None:
        raise RuleError([Finding(path, 1, 1, "the rule file is empty")])
    located.data = _convert(root, (), located, findings, yaml.SafeLoader(""))
    if findings:
        raise RuleError(findings)
    return located


def load_file(path: Path) -> Located:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RuleError([Finding(str(path), 1, 1, "rule file not found")]) from None
    except UnicodeDecodeError as exc:
        raise RuleError([Finding(str(path), 1, 1, f"not UTF-8 text: {exc}")]) from None
    return load_text(text, str(path))


def _convert(node: yaml.Node, loc: Loc, located: Located, findings: list[Finding], ctor: yaml.SafeLoader) -> Any:
    located.positions[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if not isinstance(key_node, yaml.ScalarNode):
                findings.append(
                    Finding(located.path, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                            "a key must be plain text")
                )
                continue
            if key in out:
                findings.append(
                    Finding(located.path, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                            f"duplicate key '{key}': it is already defined at line {located.positions[(*loc, key)][0]}")
                )
                continue
            child = (*loc, key)
            out[key] = _convert(value_node, child, located, findings, ctor)
            # A key's position is where the key is written: that is where an admin looks.
            located.positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            located.positions[(*child, "__value__")] = (
                value_node.start_mark.line + 1, value_node.start_mark.column + 1
            )
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*loc, i), located, findings, ctor) for i, item in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    located.styles[loc] = node.style
    return ctor.construct_object(node)
