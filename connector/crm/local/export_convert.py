"""Converting an export's raw strings in DuckDB: Salesforce Ids (15 -> 18 characters), checkboxes, dates,
date-times with their UTC offset and whole numbers, each with the message saying what is wrong with a bad value."""

from __future__ import annotations

from typing import Any

from connector import ids
from connector.crm.local import schema

# Key prefixes: a record in Contact.csv must be a Contact, and so on (TaskRelation's prefix is not checked).
_KEY_PREFIX = {
    "User": ids.USER,
    "Account": ids.ACCOUNT,
    "Contact": ids.CONTACT,
    "Task": ids.TASK,
    "Event": ids.EVENT,
    "EmailMessage": ids.EMAIL_MESSAGE,
    "EventRelation": ids.EVENT_RELATION,
    "Opportunity": ids.OPPORTUNITY,
    "OpportunityContactRole": ids.OPPORTUNITY_CONTACT_ROLE,
}

# Salesforce date-time: date, optional time (T or space), optional 'Z' or numeric UTC offset
# (+0000, +02:00, -05). Groups: date, time, offset.
_TS_PATTERN = (
    r"^(\d{4}-\d{2}-\d{2})"
    r"(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?))?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?$"
)
_ID15_PATTERN = "[a-zA-Z0-9]{15}"
_ID18_PATTERN = "[a-zA-Z0-9]{15}[A-Z0-5]{3}"


def create_macros(con: Any) -> None:
    p = _TS_PATTERN
    parts = f"regexp_extract(s, '{p}', ['d', 't', 'o'])"
    con.execute(
        """CREATE OR REPLACE TEMP MACRO _imp_offset_minutes(o) AS (
              CASE WHEN o IN ('', 'Z') THEN 0
                   ELSE (CASE WHEN o[1] = '-' THEN -1 ELSE 1 END)
                        * (CAST(o[2:3] AS INTEGER) * 60
                           + COALESCE(TRY_CAST(replace(o, ':', '')[4:5] AS INTEGER), 0))
              END)"""
    )
    # The first branch is the fast path for what the export writes (2024-01-15T10:30:00.000Z); DuckDB's own
    # cast is right for it because the offset is zero. Everything else goes through the pattern, and a
    # non-zero offset is applied by hand (a plain cast to TIMESTAMP would silently drop it).
    con.execute(
        f"""CREATE OR REPLACE TEMP MACRO _imp_ts(s) AS (
              CASE WHEN length(s) = 24 AND s[24] = 'Z' AND s[11] = 'T' AND s[20] = '.'
                     THEN TRY_CAST(s[1:23] AS TIMESTAMP)
                   WHEN regexp_full_match(s, '{p}') THEN
                     TRY_CAST({parts}.d || ' ' || COALESCE(NULLIF({parts}.t, ''), '00:00:00') AS TIMESTAMP)
                     - to_minutes(_imp_offset_minutes({parts}.o))
              END)"""
    )
    # 18 characters: the case-safe suffix must match (sf_suffix reads only the first 15); 15: append it.
    con.execute(
        f"""CREATE OR REPLACE TEMP MACRO _imp_id(s) AS (
              CASE WHEN regexp_full_match(s, '{_ID18_PATTERN}') AND sf_suffix(s) = s[16:18] THEN s
                   WHEN regexp_full_match(s, '{_ID15_PATTERN}') THEN s || sf_suffix(s)
              END)"""
    )


def _article(word: str) -> str:
    return "an" if word[:1].upper() in "AEIOU" else "a"


def _kind(obj: str, col: str) -> str:
    typ = schema.column_type(obj, col) or "VARCHAR"
    if col == "Id" or (typ == "VARCHAR" and col.endswith("Id")):
        return "ID"
    return typ


def _has_false_default(obj: str, col: str) -> bool:
    return any(c == col and "DEFAULT FALSE" in t.upper() for c, t in schema.TABLES[obj])


def convert(obj: str, col: str, raw: str, val: str) -> tuple[str, str]:
    """(SQL converting the raw string `raw`, SQL saying what is wrong given the converted value `val`, or NULL).

    The two run in separate query levels, so each value is converted once.
    """
    kind = _kind(obj, col)
    shown = f"""'"' || left({raw}, 60) || '"'"""
    if kind == "ID":
        conv = f"_imp_id({raw})"
        what = "is not a Salesforce Id"
    elif kind == "BOOLEAN":
        conv = (
            f"CASE lower(trim({raw})) WHEN 'true' THEN true WHEN '1' THEN true "
            "WHEN 'false' THEN false WHEN '0' THEN false END"
        )
        what = "is not a checkbox value (1, 0, true or false)"
    elif kind == "DATE":
        conv = (
            rf"CASE WHEN regexp_full_match({raw}, '\d{{4}}-\d{{2}}-\d{{2}}') "
            f"THEN TRY_CAST({raw} AS DATE) END"
        )
        what = "is not a date (YYYY-MM-DD)"
    elif kind == "TIMESTAMP":
        conv = f"_imp_ts({raw})"
        what = "is not a date-time (like 2024-01-15T10:30:00.000Z)"
    elif kind == "INTEGER":
        conv = (
            rf"CASE WHEN regexp_full_match({raw}, '\s*-?\d{{1,9}}(\.0*)?\s*') "
            f"THEN TRY_CAST(TRY_CAST({raw} AS DOUBLE) AS INTEGER) END"
        )
        what = "is not a whole number"
    else:
        return f"NULLIF({raw}, '')", "NULL"
    err = f"CASE WHEN {raw} <> '' AND {val} IS NULL THEN '{col} ' || {shown} || ' {what}' END"
    prefix = _KEY_PREFIX.get(obj)
    if col == "Id" and prefix is None:
        err = f"CASE WHEN {raw} = '' THEN 'no Id' WHEN {val} IS NULL THEN 'Id ' || {shown} || ' {what}' END"
    elif col == "Id":
        err = (
            f"CASE WHEN {raw} = '' THEN 'no Id' "
            f"WHEN {val} IS NULL THEN 'Id ' || {shown} || ' {what}' "
            f"WHEN NOT starts_with({val}, '{prefix}') THEN 'Id ' || {shown} || ' is not {_article(obj)} {obj} Id "
            f"(those start with {prefix})' END"
        )
    if _has_false_default(obj, col):
        conv = f"COALESCE({conv}, false)"
    return conv, err
