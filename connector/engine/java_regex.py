"""The engine's regular expressions (RE2 syntax, as DuckDB runs them) as Java patterns that match the same text.

Spark runs `RLIKE` and `regexp_replace` with java.util.regex, which reads a few RE2 constructs differently:

- `\\s` is [\\t\\n\\f\\r ] in RE2, and includes the vertical tab in Java: spelled out as RE2's class;
- `$` is the end of the text in RE2, and also the place before a final line break in Java: becomes `\\z`;
- `.` is any character but \\n in RE2, and also excludes \\r, \\u0085, \\u2028 and \\u2029 in Java: becomes [^\\n];
- case-insensitive matching is Unicode-aware in RE2 and ASCII-only in Java's `(?i)`: it becomes `(?iu)`.

Anything else whose meaning could differ (word boundaries, Unicode classes, inline groups other than `(?:`,
nested classes or class intersections, POSIX classes) is refused with a DialectError rather than guessed.
"""

from __future__ import annotations

from connector.errors import DialectError

_WHITESPACE = "\\t\\n\\f\\r "  # RE2's \s
_SAME_ESCAPES = set("dDwWtnfr")  # the same class or character in both
_CASE_INSENSITIVE = "(?iu)"


def translate(pattern: str, *, case_insensitive: bool = False) -> str:
    """`pattern` (RE2) as a Java pattern with the same matches."""
    out: list[str] = [_CASE_INSENSITIVE] if case_insensitive else []
    in_class = False
    first = False  # at a class's first member, where ']' is a member rather than the end
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 >= len(pattern):
                raise DialectError(f"the pattern {pattern!r} ends with a lone backslash")
            out.append(_escape(pattern, pattern[i + 1], in_class=in_class))
            first = False
            i += 2
            continue
        if in_class:
            if c == "[" or (c == "&" and pattern[i + 1 : i + 2] == "&"):
                raise DialectError(f"the pattern {pattern!r} nests a class or intersects classes: Java reads it apart")
            in_class = c != "]" or first
            out.append("\\]" if c == "]" and first else c)  # Java ends the class at a first ']'; RE2 keeps it
            first = False
        elif c == "[":
            in_class = first = True
            out.append(c)
            if pattern[i + 1 : i + 2] == "^":
                out.append("^")
                i += 1
        elif c == "$":
            out.append("\\z")
        elif c == ".":
            out.append("[^\\n]")
        elif c == "(" and pattern[i + 1 : i + 2] == "?" and pattern[i + 2 : i + 3] != ":":
            raise DialectError(f"the pattern {pattern!r} has an inline group or flag other than (?:")
        else:
            out.append(c)
        i += 1
    if in_class:
        raise DialectError(f"the pattern {pattern!r} leaves a class open")
    return "".join(out)


def _escape(pattern: str, e: str, *, in_class: bool) -> str:
    if e == "s":
        return _WHITESPACE if in_class else f"[{_WHITESPACE}]"
    if e == "S" and not in_class:
        return f"[^{_WHITESPACE}]"
    if e in _SAME_ESCAPES or not e.isalnum():
        return "\\" + e
    raise DialectError(f"the pattern {pattern!r} uses \\{e}, which Java's regular expressions read differently")
