"""Turn YAML events into plain data, one event at a time, treating the text as untrusted.

We do not use PyYAML's composer: it recurses once per nesting level, shares aliased nodes (so walking them
expands a "billion laughs" file into billions of values) and lets an alias point at its own anchor. Here the
nesting depth is capped, every value an alias copies in is counted against a small budget, a recursive alias is
refused, tags are refused, and every value keeps the position it was written at.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import yaml

from connector.errors import Finding

Loc = tuple[str | int, ...]
Pos = tuple[int, int]

MAX_DEPTH = 64  # a rule file is about five levels deep
MAX_ALIAS_VALUES = 10_000  # values copied in by aliases (*name), over the whole file

# libyaml's parser when PyYAML was built with it (the wheels are): about twenty times faster on a large file.
_PARSER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STANDARD_TAG = "tag:yaml.org,2002:"
_POSITION, _STYLE = "position", "style"


class Stop(Exception):
    """A problem after which the rest of the file cannot be read sensibly."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


@dataclass
class _Anchor:
    value: Any
    loc: Loc
    log: tuple[int, int]  # the slice of Composer.log written while the anchored value was read
    values: int  # how many values it holds, aliases inside it included


@dataclass
class _Frame:
    value: dict[str, Any] | list[Any]
    loc: Loc
    anchor: str | None
    log_start: int
    values_start: int
    record: bool  # False inside the value of a duplicate key: read, then dropped
    key: str | None = None  # a mapping's key that waits for its value
    key_pos: Pos = (1, 1)
    skip_value: bool = False


@dataclass
class Composer:
    """Reads one document; `positions` and `styles` are filled as in `Located`."""

    path: str
    positions: dict[Loc, Pos] = field(default_factory=dict)
    styles: dict[Loc, str | None] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    # Every position and style written, in order, so an alias can copy those of its anchor under a new path.
    log: list[tuple[str, Loc, Any]] = field(default_factory=list)
    values: int = 0
    alias_values: int = 0
    _anchors: dict[str, _Anchor] = field(default_factory=dict)
    _stack: list[_Frame] = field(default_factory=list)
    _root: Any = None
    _scalars: yaml.SafeLoader = field(default_factory=lambda: yaml.SafeLoader(""))

    def compose(self, text: str) -> Any:
        documents = 0
        handlers: dict[type[yaml.Event], Callable[[Any], None]] = {
            yaml.ScalarEvent: self._scalar,
            yaml.AliasEvent: self._alias,
            yaml.MappingStartEvent: self._start,
            yaml.SequenceStartEvent: self._start,
            yaml.MappingEndEvent: self._end,
            yaml.SequenceEndEvent: self._end,
        }
        for event in yaml.parse(text, Loader=_PARSER):
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    self._stop(
                        event.start_mark,
                        "a rule file holds one YAML document, and a second one starts "
                        "here (at '---'): move it to a file of its own",
                    )
            handler = handlers.get(type(event))
            if handler is not None:
                handler(event)
        return self._root

    # -- events -----------------------------------------------------------------------------------------------

    def _scalar(self, event: yaml.ScalarEvent) -> None:
        parent = self._stack[-1] if self._stack else None
        if parent is not None and isinstance(parent.value, dict) and parent.key is None:
            self._key(parent, event)
            return
        log_start = len(self.log)
        loc, record = self._place(event)
        self._check_tag(event)
        value = self._construct(event)
        if record:
            self._write(_STYLE, loc, event.style or None)  # libyaml says '' for plain
        self.values += 1
        self._remember(event.anchor, value, loc, log_start, 1)
        self._deliver(value)

    def _alias(self, event: yaml.AliasEvent) -> None:
        name = str(event.anchor)
        if any(frame.anchor == name for frame in self._stack):
            self._stop(
                event.start_mark,
                f"the alias *{name} stands inside the value anchored as &{name}, so it "
                "would contain itself: write the value out instead",
            )
        anchor = self._anchors.get(name)
        if anchor is None:
            self._stop(event.start_mark, f"the alias *{name} has no anchor &{name} before it")
        parent = self._stack[-1] if self._stack else None
        if parent is not None and isinstance(parent.value, dict) and parent.key is None:
            self._stop(event.start_mark, "a key must be plain text, not an alias")
        self.alias_values += anchor.values
        if self.alias_values > MAX_ALIAS_VALUES:
            self._stop(
                event.start_mark,
                f"aliases (*name) copy in more than {MAX_ALIAS_VALUES:,} values in "
                "all: a rule file needs few of them; write the values out",
            )
        loc, record = self._place(event)
        if record:
            # The alias itself stands where it is written; what it copies keeps the positions of the anchor's text.
            start, end = anchor.log
            prefix = len(anchor.loc)
            for what, old, item in self.log[start:end]:
                if what == _POSITION and old == anchor.loc:
                    continue
                self._write(what, (*loc, *old[prefix:]), item)
        self.values += anchor.values
        self._deliver(anchor.value)

    def _start(self, event: yaml.MappingStartEvent | yaml.SequenceStartEvent) -> None:
        parent = self._stack[-1] if self._stack else None
        if parent is not None and isinstance(parent.value, dict) and parent.key is None:
            self._stop(event.start_mark, "a key must be plain text, not a list or a mapping")
        if len(self._stack) >= MAX_DEPTH:
            self._stop(event.start_mark, f"nested more than {MAX_DEPTH} levels deep: a rule file needs about five")
        log_start = len(self.log)
        loc, record = self._place(event)
        self._check_tag(event)
        self.values += 1
        value: dict[str, Any] | list[Any] = {} if isinstance(event, yaml.MappingStartEvent) else []
        self._stack.append(_Frame(value, loc, event.anchor, log_start, self.values - 1, record))

    def _end(self, _event: yaml.MappingEndEvent | yaml.SequenceEndEvent) -> None:
        frame = self._stack.pop()
        self._remember(frame.anchor, frame.value, frame.loc, frame.log_start, self.values - frame.values_start)
        self._deliver(frame.value)

    # -- helpers ----------------------------------------------------------------------------------------------

    def _key(self, parent: _Frame, event: yaml.ScalarEvent) -> None:
        self._check_tag(event)
        key = str(event.value)
        self._check_text(key, event.start_mark)
        pos = _pos(event.start_mark)
        parent.key, parent.key_pos = key, pos
        assert isinstance(parent.value, dict)
        if key in parent.value and parent.record:
            first = self.positions[(*parent.loc, key)][0]
            self.findings.append(self._finding(pos, f"duplicate key '{key}': it is already defined at line {first}"))
            parent.skip_value = True

    def _place(self, event: yaml.Event) -> tuple[Loc, bool]:
        """The path of the value this event starts, and whether to keep it; records where it stands."""
        if not self._stack:
            self._write(_POSITION, (), _pos(event.start_mark))
            return (), True
        parent = self._stack[-1]
        if isinstance(parent.value, list):
            loc: Loc = (*parent.loc, len(parent.value))
            if parent.record:
                self._write(_POSITION, loc, _pos(event.start_mark))
            return loc, parent.record
        assert parent.key is not None
        loc = (*parent.loc, parent.key)
        record = parent.record and not parent.skip_value
        if record:
            # A key's position is where the key is written: that is where an admin looks.
            self._write(_POSITION, loc, parent.key_pos)
            self._write(_POSITION, (*loc, "__value__"), _pos(event.start_mark))
        return loc, record

    def _deliver(self, value: Any) -> None:
        if not self._stack:
            self._root = value
            return
        parent = self._stack[-1]
        if isinstance(parent.value, list):
            parent.value.append(value)
            return
        assert parent.key is not None
        if not parent.skip_value:
            parent.value[parent.key] = value
        parent.key, parent.skip_value = None, False

    def _remember(self, name: str | None, value: Any, loc: Loc, log_start: int, values: int) -> None:
        if name is not None:
            self._anchors[name] = _Anchor(value, loc, (log_start, len(self.log)), values)

    def _write(self, what: str, loc: Loc, item: Any) -> None:
        if what == _POSITION:
            self.positions[loc] = item
        else:
            self.styles[loc] = item
        self.log.append((what, loc, item))

    def _construct(self, event: yaml.ScalarEvent) -> Any:
        """A plain scalar as YAML reads it (number, true/false, date, empty); a quoted one as text."""
        implicit = event.implicit if event.tag is None else (False, False)
        tag: str = self._scalars.resolve(yaml.ScalarNode, event.value, implicit)  # type: ignore[no-untyped-call]
        node = yaml.ScalarNode(tag, event.value, style=event.style)
        try:
            value = self._scalars.construct_object(node)
        except (ValueError, OverflowError, yaml.YAMLError):
            kind = node.tag.removeprefix(_STANDARD_TAG)
            what = {"timestamp": "a date", "int": "a whole number", "float": "a number"}.get(kind, kind)
            self.findings.append(
                self._finding(
                    _pos(event.start_mark),
                    f"'{_clip(event.value)}' reads as {what} but is not a valid one; quote it if it is text",
                )
            )
            return event.value
        if isinstance(value, str):
            self._check_text(value, event.start_mark)
        return value

    def _check_tag(self, event: yaml.ScalarEvent | yaml.MappingStartEvent | yaml.SequenceStartEvent) -> None:
        if event.tag is not None:
            tag = str(event.tag)
            shown = "!!" + tag.removeprefix(_STANDARD_TAG) if tag.startswith(_STANDARD_TAG) else tag
            self.findings.append(
                self._finding(
                    _pos(event.start_mark),
                    f"YAML tags such as '{_clip(shown)}' are not allowed in a rule file: remove the tag and write "
                    "the plain value",
                )
            )

    def _check_text(self, value: str, mark: Any) -> None:
        """Escapes in double quotes ("\\0", "\\x1b") can make control characters the file itself does not show."""
        bad = find_control(value)
        if bad is not None:
            self.findings.append(
                self._finding(
                    _pos(mark),
                    f"this text holds {describe_control(value[bad])}: remove it "
                    "(escapes such as \\0 or \\x1b count too)",
                )
            )

    def _finding(self, pos: Pos, message: str) -> Finding:
        return Finding(self.path, pos[0], pos[1], message)

    def _stop(self, mark: Any, message: str) -> NoReturn:
        raise Stop(self._finding(_pos(mark), message))


def _pos(mark: Any) -> Pos:
    return (int(mark.line) + 1, int(mark.column) + 1)


def _clip(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# What a rule file may not hold: control characters other than tab and line breaks, DEL and the C1 controls (NEL
# included), the invisible controls that change how text reads (bidirectional marks, Unicode line separators),
# lone surrogates and the two non-characters YAML refuses.
_BIDI = "\u200e\u200f\u202a-\u202e\u2066-\u2069"
_LINE_SEPARATORS = "\u2028\u2029"
_NOT_ALLOWED = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}{_LINE_SEPARATORS}\ud800-\udfff\ufffe\uffff]")


def find_control(text: str) -> int | None:
    """The index of the first character a rule file may not hold, if any."""
    found = _NOT_ALLOWED.search(text)
    return found.start() if found else None


_NAMES = {0: "NUL", 0x1B: "ESC", 0x7F: "DEL", 0x85: "NEL", 0xFEFF: "BOM"}


def describe_control(ch: str) -> str:
    code = ord(ch)
    if re.fullmatch(f"[{_BIDI}]", ch):
        return f"an invisible text-direction control (U+{code:04X})"
    if ch in _LINE_SEPARATORS:
        return f"a Unicode line separator (U+{code:04X}); use an ordinary line break"
    name = _NAMES.get(code)
    return f"a control character (U+{code:04X}{', ' + name if name else ''})"
