"""A changed text as an admin reads it in a dry run: the words that change marked, the words that stay elided.

Two reasons that differ in one clause, cut at the same prefix, look like a no-op ("Friend: A real conversation…
-> Friend: A real conversation…"). Word by word (difflib), the change is the part shown: `[-old words-]` and
`{+new words+}` (git's word-diff marks, which survive a terminal, a log file and a mail), with a few words of
context either side and `…` for the rest.
"""

from __future__ import annotations

import difflib
import re

CONTEXT = 3  # unchanged words kept either side of a change
EMPTY = "(empty)"


def _words(text: str) -> list[str]:
    return re.findall(r"\S+", text)


def _elide(words: list[str], *, first: bool, last: bool) -> list[str]:
    """An unchanged run: its edges next to a change, `…` for its middle."""
    keep_head = 0 if first else CONTEXT
    keep_tail = 0 if last else CONTEXT
    if len(words) <= keep_head + keep_tail + 1:
        return words
    return [*words[:keep_head], "…", *words[len(words) - keep_tail :]]


def word_diff(old: object, new: object) -> str:
    """`old -> new` for values that are not texts or where one side is empty; else the word-level diff of the
    two texts, unchanged runs elided."""
    if not isinstance(old, str) or not isinstance(new, str) or not old or not new:
        return f"{_plain(old)} -> {_plain(new)}"
    a, b = _words(old), _words(new)
    ops = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
    out: list[str] = []
    for i, (tag, i1, i2, j1, j2) in enumerate(ops):
        if tag == "equal":
            out += _elide(a[i1:i2], first=i == 0, last=i == len(ops) - 1)
            continue
        if i2 > i1:
            out.append("[-" + " ".join(a[i1:i2]) + "-]")
        if j2 > j1:
            out.append("{+" + " ".join(b[j1:j2]) + "+}")
    if len(ops) == 1 and ops[0][0] == "equal":  # the same words, other spacing
        return "(whitespace only)"
    return " ".join(out)


def _plain(value: object, width: int = 70) -> str:
    text = EMPTY if value is None or value == "" else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"
