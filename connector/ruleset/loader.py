"""Read a rule file into plain data while remembering where every value stands (file:line:col).

We turn YAML events into dicts and lists ourselves (see `_compose`) so that a duplicate key (which PyYAML would
silently let win) is an error, so that every later check can point at the exact line an admin has to fix, and
because a rule file is untrusted input: its size, characters, tags, nesting and aliases are all bounded, and
whatever is wrong is a RuleError with file:line:col, never a crash or a hang.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from connector import files
from connector.errors import Finding, RuleError
from connector.ruleset import _compose

Loc = _compose.Loc

MAX_BYTES = files.MIB  # a rule file, or a rule test file; the shipped ladder.yaml is under 10 KiB


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
    """Read a rule file's text. Rule files are untrusted input: anything odd is a RuleError with a position."""
    if len(text) > MAX_BYTES:
        raise RuleError(
            [
                Finding(
                    path,
                    1,
                    1,
                    f"the rule file is larger than {files.size(MAX_BYTES)}: split it, or remove what it does not need",
                )
            ]
        )
    bad = _compose.find_control(text)
    if bad is not None:
        line, col = files.line_col(text, bad)
        raise RuleError(
            [
                Finding(
                    path,
                    line,
                    col,
                    f"the file holds {_compose.describe_control(text[bad])}: rule files are plain text; remove it",
                )
            ]
        )
    composer = _compose.Composer(path)
    try:
        data = composer.compose(text)
    except _compose.Stop as stop:
        raise RuleError([*composer.findings, stop.finding]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise RuleError(
            [*composer.findings, Finding(path, line, col, f"not valid YAML: {exc.problem or exc}")]
        ) from None
    except yaml.YAMLError as exc:
        raise RuleError([*composer.findings, Finding(path, 1, 1, f"not valid YAML: {exc}")]) from None
    if composer.findings:
        raise RuleError(composer.findings)
    if data is None:
        raise RuleError([Finding(path, 1, 1, "the rule file is empty")])
    return Located(path=path, data=data, text=text, positions=composer.positions, styles=composer.styles)


def load_file(path: Path) -> Located:
    """Read a rule file from disk: a regular file of at most MAX_BYTES of UTF-8 text."""
    try:
        text = files.read_text(path, MAX_BYTES, what="rule file")
    except files.Unreadable as exc:
        raise RuleError([Finding(str(path), exc.line, exc.col, exc.message)]) from None
    return load_text(text, str(path))
