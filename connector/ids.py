"""Salesforce record Ids: 15-character case-sensitive Ids and their 18-character case-safe form."""

from __future__ import annotations

import re

SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$")
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Key prefixes of the objects we touch (Salesforce "Standard Field Record ID Prefix Decoder").
CONTACT = "003"
LEAD = "00Q"
TASK = "00T"
EVENT = "00U"
USER = "005"
ACCOUNT = "001"
OPPORTUNITY = "006"
OPPORTUNITY_CONTACT_ROLE = "00K"
CASE = "500"
EMAIL_MESSAGE = "02s"
EVENT_RELATION = "0RE"
TASK_RELATION = "0RT"  # (unverified: not in the prefix decoder we read; never used to reject a record)


def checksum(id15: str) -> str:
    """The 3-character suffix: one character per 5-character chunk, encoding which letters are upper case."""
    out = []
    for chunk in range(3):
        bits = 0
        for j, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << j
        out.append(SUFFIX_ALPHABET[bits])
    return "".join(out)


def to18(record_id: str) -> str:
    """Case-safe 18-character form; an 18-character Id is returned as given."""
    if len(record_id) == 18:
        return record_id
    if len(record_id) != 15:
        raise ValueError(f"not a Salesforce Id: {record_id!r}")
    return record_id + checksum(record_id)


def case_restored(record_id: str) -> str:
    """An 18-character Id typed in another case (copied from a case-insensitive report, lower-cased by a shell
    script) in the case Salesforce gives it: its suffix says which of the first 15 characters are upper-case
    letters. Anything else is returned as given, to be refused or not found as it stands."""
    if len(record_id) != 18 or not record_id.isalnum() or not record_id.isascii():
        return record_id
    suffix = record_id[15:].upper()
    if any(c not in SUFFIX_ALPHABET for c in suffix):
        return record_id
    out = []
    for chunk, code in enumerate(suffix):
        bits = SUFFIX_ALPHABET.index(code)
        for j, ch in enumerate(record_id[chunk * 5 : chunk * 5 + 5]):
            upper = bool(bits >> j & 1)
            if upper and ch.isdigit():
                return record_id  # the suffix contradicts the Id: not one Salesforce gave
            out.append(ch.upper() if upper else ch.lower())
    return "".join(out) + suffix


def typed(record_id: str) -> str:
    """An Id as a user typed it, in the 18-character form the CRM keys records by: a 15-character Id gets its
    suffix, an 18-character one its case back (`case_restored`). ValueError for anything else."""
    text = record_id.strip()
    if len(text) == 18 and text.isascii() and text.isalnum():
        restored = case_restored(text)
        if not is_valid(restored):
            raise ValueError(
                f"'{record_id}' is not a Salesforce Id: its last three characters do not match the first 15 "
                "(a typo, or part of it lost)"
            )
        return restored
    if len(text) == 15 and text.isascii() and text.isalnum():
        return to18(text)
    raise ValueError(f"'{record_id}' is not a Salesforce Id (15 or 18 characters)")


def is_valid(record_id: str) -> bool:
    if not _ID_RE.match(record_id):
        return False
    return len(record_id) == 15 or checksum(record_id[:15]) == record_id[15:]


def make(prefix: str, n: int) -> str:
    """A deterministic 18-character Id for the n-th record of an object (demo data and tests)."""
    body = ""
    for _ in range(10):
        n, r = divmod(n, 36)
        body = _BASE36[r] + body
    return to18(f"{prefix}8d{body}")


def sql_macros() -> list[str]:
    """DuckDB macros `sf_id15(prefix, n)` and `sf_id(prefix, n)` giving the same Ids as `make` (bulk generation)."""
    digits = " || ".join(f"substr('{_BASE36}', CAST((n // {36**k}) % 36 AS INTEGER) + 1, 1)" for k in range(9, -1, -1))
    suffix = " || ".join(
        f"substr('{SUFFIX_ALPHABET}', "
        + " + ".join(
            f"(CASE WHEN substr(id15, {c * 5 + j + 1}, 1) BETWEEN 'A' AND 'Z' THEN {1 << j} ELSE 0 END)"
            for j in range(5)
        )
        + " + 1, 1)"
        for c in range(3)
    )
    return [
        f"CREATE OR REPLACE TEMP MACRO sf_id15(prefix, n) AS prefix || '8d' || {digits}",
        f"CREATE OR REPLACE TEMP MACRO sf_suffix(id15) AS {suffix}",
        "CREATE OR REPLACE TEMP MACRO sf_id(prefix, n) AS sf_id15(prefix, n) || sf_suffix(sf_id15(prefix, n))",
    ]
