"""Word lists of a rule file, compiled to one regular expression that DuckDB and Spark run alike.

Reps write what a conversation was for in the subject and the notes ("to hear about their plans", "asked about
renewal worries"), so a substring test misreads them both ways: '%present%' is in "presentation" and in "a
present", '%needs%' in "Price increase needs discussion". A word list matches whole words and a small, explicit
set of inflections instead:

- matching is case-insensitive: the pattern spells each letter as both cases ([hH][eE]..., [üÜ]), so the text is
  matched as written; a letter whose cases do not map one to one ('ß', the dotless i, 'İ') matches only as
  written. Folding the text first costs about nine times the match (translate() over
  a million subjects, 1 CPU-s against 0.1), and a case-insensitive flag would fold other letters too, differently
  in RE2 and Java (the Kelvin sign K matches k in one, not the other). Any character but a-z, A-Z and
  0-9 is a boundary, accented letters too (so "union" is found in "réunion");
- an entry matches only between word boundaries (start or end of the text, or any character that is not a
  letter a-z or a digit), so "present" never matches inside "presentation";
- an entry of several words ("check in", "open agenda") matches them with any run of spaces or punctuation
  between them ("check-in", "check in", "Check  In");
- each word of an entry, when it is three or more letters, also matches its regular inflections: +s, +es,
  +ed, +d, +ing, +er, +ers; a final e is dropped before -ing/-ed/-er ("share": sharing, shared); a final
  consonant-y becomes -ies/-ied ("reply": replies, replied); a short word ending consonant-vowel-consonant also
  doubles its last letter ("plan": planned, planning). Irregular forms are listed as entries of their own
  ("heard" comes with "hear" by +d; "understood" must be listed);
- an entry ending in '*' matches any word that starts with it ("introduc*": introduce, introduction);
- the word '...' in an entry stands for a name: one to four words of any kind ("call with ...": "Call with
  Maria", "Call with Dr. Ana Lopez"), so a subject that only says who it was with reads as what it wraps.

The pattern uses only what RE2 (DuckDB's regexp_matches) and java.util.regex (Spark's RLIKE) read the same way
(plain classes, non-capturing groups, ^ and $), so both engines decide every activity the same.
"""

from __future__ import annotations

import functools
import re

MAX_ENTRIES = 400  # words in one list
MAX_ENTRY = 60  # characters in one entry
SEPARATOR = "\n"  # between the fields a condition reads together: a boundary, and never inside an entry's gap

_BOUNDARY_BEFORE = "(?:^|[^a-z0-9])"
_BOUNDARY_AFTER = "(?:[^a-z0-9]|$)"
_GAP = "[^a-z0-9\\n]+"
_SPECIAL = set("\\.^$|?*+()[]{}")
NAME = "..."  # a word of an entry that stands for a name
_NAME = "[a-z0-9]+(?:[^a-z0-9\\n]+[a-z0-9]+){0,3}"
_VOWELS = set("aeiou")
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_FOLD = str.maketrans(_UPPER, _UPPER.lower())


class WordError(ValueError):
    """An entry that cannot be a word to look for."""


def check_entry(entry: str) -> str:
    """The entry as it is matched (lower case, single spaces), or WordError saying why it cannot be one."""
    text = " ".join(entry.translate(_FOLD).split())
    if not text or text == "*":
        raise WordError("an empty entry matches everything; remove it")
    if len(text) > MAX_ENTRY:
        raise WordError(f"'{entry[:20]}…' is {len(text)} characters long; an entry is a word or a short phrase")
    if all(w == NAME for w in text.split(" ")):
        raise WordError(f"'{entry}' is only a name placeholder: it would match any text")
    if "*" in text[:-1]:
        raise WordError(f"'{entry}': '*' may only end an entry (a prefix such as 'introduc*')")
    if not any(ch.isalnum() for ch in text):
        raise WordError(f"'{entry}' has no letter or digit to look for")
    return text


def pattern(entries: list[str], *, whole: bool = False) -> str:
    """One pattern that finds any of the entries as whole words, with the inflections the module describes.
    `whole`: the text must be one entry and nothing else but spaces and punctuation ("Call", "call.", " Meeting")."""
    alternatives = "|".join(sorted({_entry(check_entry(e)) for e in entries}))
    if whole:
        return _any_case(f"^[^a-z0-9]*(?:{alternatives})[^a-z0-9]*$")
    return _any_case(f"{_BOUNDARY_BEFORE}(?:{alternatives}){_BOUNDARY_AFTER}")


@functools.lru_cache(maxsize=1024)  # a rule file's word lists are turned into patterns at every load, again and again
def _any_case(lower: str) -> str:
    """The pattern made to match text as written: a letter outside a class matches either of its cases, and a
    class's range a-z takes A-Z too. Escaped characters (never letters here) are kept as they are."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(lower):
        ch = lower[i]
        if ch == "\\":
            out.append(lower[i : i + 2])
            i += 2
            continue
        if in_class and lower.startswith("a-z", i):
            out.append("a-zA-Z")
            i += 3
            continue
        if in_class:
            in_class = ch != "]"
            out.append(ch)
        elif ch == "[":
            in_class = True
            out.append(ch)
        else:
            out.append(_cases(ch))
        i += 1
    return "".join(out)


def _cases(ch: str) -> str:
    """A letter as a class of its two cases, when it has exactly one of each that map to each other ('e' and 'E',
    'ü' and 'Ü'). Letters whose case does not round-trip ('İ', the dotless i, 'ß', long s, the Kelvin sign) match
    only as written: Python, RE2 and Java agree on an explicit class, never on how they fold those."""
    lo, up = ch.lower(), ch.upper()
    if lo == up or len(lo) != 1 or len(up) != 1 or lo.upper() != up or up.lower() != lo:
        return ch
    return f"[{lo}{up}]"


def _escape(text: str) -> str:
    return "".join("\\" + ch if ch in _SPECIAL else ch for ch in text)


def _entry(text: str) -> str:
    prefix = text.endswith("*")
    words = text.rstrip("*").split(" ")
    head = [_NAME if w == NAME else _inflected(w) for w in words[:-1]]
    last = words[-1]
    tail = _escape(last) + "[a-z0-9]*" if prefix else _inflected(last)
    if last == NAME:
        tail = _NAME
    return _GAP.join([*head, tail])


def _inflected(word: str) -> str:
    """The word and its regular inflections, as one group."""
    if len(word) < 3 or not word.isascii() or not word.isalpha():
        return _escape(word)
    stems = [word + "(?:s|es|ed|d|ing|er|ers)?"]
    if word.endswith("e"):
        stems.append(word[:-1] + "(?:ing|ed|er|ers)")
    if word.endswith("y") and word[-2] not in _VOWELS:
        stems.append(word[:-1] + "(?:ies|ied|ying)")
    if len(word) <= 5 and word[-1] not in _VOWELS | {"w", "x", "y"} and word[-2] in _VOWELS and word[-3] not in _VOWELS:
        stems.append(word + word[-1] + "(?:ed|ing|er|ers)")
    return "(?:" + "|".join(stems) + ")"


def matches(entries: list[str], text: str, *, whole: bool = False) -> bool:
    """What the engines decide for one text: for tests and `explain`, with Python's re, which reads the pattern
    as RE2 does."""
    return re.search(pattern(entries, whole=whole), text) is not None
